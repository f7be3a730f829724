// Saving and restoring a trainer's state: stateBytes / stateFromBytes (any Uint8Array view, this model's bytes
// only, the learning rate carried) and setState's checks.

import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer, packState, readState, unpackState } from "../src/index.js";
import { loadBatches, runSteps } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const batches = await loadBatches(async (name) => new Uint8Array(await readFile(join(FIXTURES, "batches", name))));
const STATE_BIN = 1496; // bytes of the fixture's state.bin

/** A trainer after `steps` steps on the fixture's batches. */
async function trained(steps) {
  const trainer = await Trainer.load(ort, BUNDLE);
  await runSteps(trainer, batches, steps);
  return trainer;
}

const sameState = (a, b) => {
  for (const [name, values] of a.getState().tensors) assert.deepEqual(b.getState().tensors.get(name), values, name);
};

test("stateFromBytes reads a Node.js Buffer from readFileSync and a view at an offset", async () => {
  const first = await trained(3);
  const bytes = first.stateBytes();
  const file = join(await mkdtemp(join(tmpdir(), "onnxtrain-js-")), "state.bin");
  await writeFile(file, bytes);
  const garbage = Buffer.concat([Buffer.alloc(8, 0xff), Buffer.from(bytes)]).subarray(8); // byteOffset 8
  for (const view of [readFileSync(file), garbage]) {
    const second = await Trainer.load(ort, BUNDLE);
    second.setState(second.stateFromBytes(view));
    assert.equal(second.stepCount, 3);
    sameState(first, second);
  }
  assert.deepEqual(unpackState(garbage, first.metadata.tensors), first.getState().tensors);
});

test("stateFromBytes refuses bytes of another length or of another model, naming both", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const onnx = readFileSync(join(BUNDLE, "model.onnx"));
  assert.throws(() => trainer.stateFromBytes(onnx), /expects 1496 bytes .* or 1520 .*Received: 1511 bytes/);
  assert.throws(() => trainer.stateFromBytes(new Uint8Array(10)), /Received: 10 bytes/);
  assert.throws(() => trainer.stateFromBytes("state"), /expects a Uint8Array .*Received: "state"/);
  // A model of the same sizes but other names: the same length, another layout.
  const other = trainer.metadata.tensors.map((t) => ({ ...t, name: t.name.replace("dense_", "layer_") }));
  const renamed = new Map([...trainer.getState().tensors].map(([name, v]) => [name.replace("dense_", "layer_"), v]));
  const bytes = packState(renamed, other, 0.001);
  assert.equal(bytes.length, trainer.stateBytes().length);
  assert.throws(() => trainer.stateFromBytes(bytes), /expects the layout of this model .*Received: another model's state/);
});

test("stateBytes carries the learning rate after the tensors, which Python's layout reads as before", async () => {
  const first = await trained(2);
  first.learningRate = 0.005;
  const bytes = first.stateBytes();
  assert.equal(bytes.length, STATE_BIN + 24);
  const second = await Trainer.load(ort, BUNDLE);
  second.setState(second.stateFromBytes(bytes));
  assert.equal(second.learningRate, 0.005);
  const tensorsOnly = bytes.subarray(0, STATE_BIN); // a bundle's state.bin, or bytes of an older stateBytes
  assert.equal(readState(tensorsOnly, first.metadata.tensors).learningRate, undefined);
  sameState(first, second);
});

test("setState refuses weights that are not finite float32 and steps that are not whole, naming them", async () => {
  const trainer = await trained(1);
  const before = trainer.getState();
  const withValue = (name, index, value) => {
    const state = trainer.getState();
    const data = Float64Array.from(state.tensors.get(name));
    data[index] = value;
    state.tensors.set(name, data);
    return state;
  };
  assert.throws(() => trainer.setState(withValue("dense_1.kernel", 5, NaN)), /dense_1.kernel expects finite values.*Received: dense_1.kernel\[5\]=NaN/);
  assert.throws(() => trainer.setState(withValue("dense_2.bias", 0, 1e39)), /dense_2.bias expects finite values within float32's range.*dense_2.bias\[0\]=1e\+39/);
  const step = trainer.getState();
  step.tensors.set("step", Float32Array.of(1.5));
  assert.throws(() => trainer.setState(step), /expects the step tensor to be a whole number >= 0.*Received: 1.5/);
  assert.throws(() => trainer.setState({ ...before, step: -1 }), /expects state.step to be a whole number >= 0.*Received: -1/);
  assert.throws(() => trainer.setState({ ...before, learningRate: 1e40 }), /state.learningRate expects a number within float32's range.*Received: 1e\+40/);
  sameState(await trained(1), trainer); // nothing changed
});

test("setState honours state.step and refuses what is not a state", async () => {
  const trainer = await trained(3);
  trainer.setState({ ...trainer.getState(), step: 0 });
  assert.equal(trainer.stepCount, 0);
  assert.throws(() => trainer.setState(null), /setState expects a TrainerState .*Received: null/);
  const plain = { tensors: Object.fromEntries(trainer.getState().tensors) };
  assert.throws(() => trainer.setState(plain), /Received: state.tensors=an Object/);
});

test("setWeights sets parameters (some or all) and leaves the optimizer state, step and rate as they were", async () => {
  const source = await trained(3);
  const trainer = await trained(1);
  const before = trainer.getState();
  const weights = source.getWeights();
  trainer.setWeights({ "dense_1.kernel": weights.get("dense_1.kernel") });
  assert.deepEqual(trainer.getWeights().get("dense_1.kernel"), weights.get("dense_1.kernel"));
  assert.deepEqual(trainer.getWeights().get("dense_2.kernel"), before.tensors.get("dense_2.kernel"));
  trainer.setWeights(weights);
  assert.deepEqual(trainer.getWeights(), weights);
  for (const [name, values] of before.tensors) {
    if (name.startsWith("optimizer.") || name === "step") assert.deepEqual(trainer.getState().tensors.get(name), values, name);
  }
  assert.equal(trainer.stepCount, 1);
  const step = await trainer.step(batches.x.subarray(0, 8 * 16), batches.y.subarray(0, 8)); // it trains on
  assert.ok(Number.isFinite(step.loss));
  assert.throws(() => trainer.setWeights({ step: [0] }), /setWeights expects the model's parameters \(dense_1.kernel, .*\)\. Received: step \(step: optimizer state or the step, which setState sets/);
  assert.throws(() => trainer.setWeights(new Map([["dense_9.kernel", [1]]])), /Received: dense_9.kernel$/);
  assert.throws(() => trainer.setWeights({ "dense_2.bias": [1, 2] }), /setWeights: dense_2.bias expects 3 values \(shape \[3\]\); received 2/);
  assert.throws(() => trainer.setWeights({ "dense_2.bias": [1, NaN, 2] }), /setWeights: dense_2.bias expects finite values .*dense_2.bias\[1\]=NaN/);
  assert.throws(() => trainer.setWeights([1, 2]), /setWeights expects a Map \(or an object\) of parameter name -> values.*Received: an array of 2/);
});
