// Trainer under onnxruntime-node, against the state Python's portable engine reached on the same batches
// (fixtures/, written by fixtures/make_fixture.py).

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer, readInitializers, unpackState } from "../src/index.js";
import { loadBatches, runSteps } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const readIn = (folder) => async (name) => new Uint8Array(await readFile(join(FIXTURES, folder, name)));

const batches = await loadBatches(readIn("batches"));
const batch = (k) => {
  const { batchSize, features } = batches;
  return [
    batches.x.subarray(k * batchSize * features, (k + 1) * batchSize * features),
    batches.y.subarray(k * batchSize, (k + 1) * batchSize),
  ];
};

/** Largest absolute difference between two tensor maps over `names`. */
function maxDifference(a, b, names) {
  let worst = 0;
  for (const name of names) {
    const x = a.get(name);
    const y = b.get(name);
    assert.equal(x.length, y.length, name);
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(Number(x[i]) - Number(y[i])));
  }
  return worst;
}

test("ten steps give the weights and Adam state Python's engine reaches on the same batches", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  assert.equal(trainer.stepCount, 0);
  await runSteps(trainer, batches);
  assert.equal(trainer.stepCount, 10);
  const afterMeta = JSON.parse(await readFile(join(FIXTURES, "after", "bundle.json"), "utf8"));
  const python = unpackState(await readIn("after")("state.bin"), afterMeta.tensors);
  const state = trainer.getState().tensors;
  assert.ok(maxDifference(state, python, trainer.metadata.trainable) < 1e-5);
  const slots = trainer.metadata.optimizer_state.map((s) => s.name);
  assert.ok(maxDifference(state, python, slots) < 1e-4); // v is carried times 1000
  assert.equal(state.get("step")[0], 10n);
});

test("a state set on a new trainer continues exactly where getState was taken", async () => {
  const first = await Trainer.load(ort, BUNDLE);
  await runSteps(first, batches, 5);
  const saved = first.stateFromBytes(first.stateBytes()); // through the state.bin layout
  for (let k = 5; k < 10; k++) await first.step(...batch(k));
  const second = await Trainer.load(ort, BUNDLE);
  second.setState(saved);
  assert.equal(second.stepCount, 5);
  for (let k = 5; k < 10; k++) await second.step(...batch(k));
  assert.equal(maxDifference(first.getState().tensors, second.getState().tensors, [...first.getState().tensors.keys()]), 0);
});

test("setState refuses a state of another model and changes nothing", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const state = trainer.getState();
  state.tensors.set("dense_1.kernel", new Float32Array(3));
  assert.throws(() => trainer.setState(state), /dense_1.kernel expects 96 values \(shape \[16,6\]\); received 3/);
  state.tensors.delete("dense_1.kernel");
  assert.throws(() => trainer.setState(state), /the state has no tensor dense_1.kernel/);
  assert.equal(trainer.getWeights().get("dense_1.kernel").length, 96);
});

test("the exported model holds the trained weights and predicts as the eval graph does", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  await runSteps(trainer, batches, 3);
  const bytes = trainer.exportModel();
  const written = readInitializers(bytes);
  assert.equal(maxDifference(written, trainer.getWeights(), trainer.metadata.trainable), 0);
  const [x, y] = batch(0);
  const { logits } = await trainer.evaluate(x, y);
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor("float32", x, [8, 4, 4, 1]) });
  assert.ok(maxDifference(new Map([["l", out.logits.data]]), new Map([["l", logits]]), ["l"]) < 1e-6);
  const template = readInitializers(await readFile(join(BUNDLE, "model.onnx")));
  assert.ok(maxDifference(written, template, ["dense_1.kernel"]) > 0); // the weights did change
});

test("uint8 pixels are divided by 255 for input scale 1/255, as Python reads them", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const pixels = Uint8Array.from({ length: 8 * 16 }, (_, i) => (i * 37) % 256);
  const scaled = Float32Array.from(pixels, (p) => Math.fround(p / 255)); // as numpy divides by 255 for 1/255
  const labels = [0, 1, 2, 0, 1, 2, 0, 1];
  const a = await trainer.evaluate(pixels, labels);
  const b = await trainer.evaluate(scaled, labels);
  assert.deepEqual(Array.from(a.logits), Array.from(b.logits));
});

test("a non-finite loss leaves weights, state and step as they were", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  await trainer.step(...batch(0));
  const before = trainer.getState().tensors;
  const x = new Float32Array(batch(1)[0]);
  x.fill(3e38); // finite, as the trainer requires of x, but the logits overflow
  const { loss } = await trainer.step(x, batch(1)[1]);
  assert.ok(Number.isNaN(loss));
  assert.equal(trainer.stepCount, 1);
  assert.equal(maxDifference(before, trainer.getState().tensors, [...before.keys()]), 0);
});

test("a batch of the wrong size is refused with the sizes expected and received", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  assert.throws(() => trainer._batchFeeds(new Float32Array(15), [0]), /x expects a multiple of 16 values: one or more examples of shape \[4,4,1\] for input .input./);
  await assert.rejects(trainer.step(new Float32Array(32), [0]), /labels expects 2 values \(shape \[2\]\); received 1/);
  assert.throws(() => (trainer.learningRate = -1), /learningRate expects a finite number >= 0. Received: -1/);
});

test("steps called without awaiting the previous one run in call order, as awaited steps do", async () => {
  const awaited = await Trainer.load(ort, BUNDLE);
  const expected = (await runSteps(awaited, batches, 4)).losses;
  const trainer = await Trainer.load(ort, BUNDLE);
  const pending = [0, 1, 2, 3].map((k) => trainer.step(...batch(k)));
  assert.throws(() => trainer.setState(awaited.getState()), /setState while 4 step or evaluate calls are running: await them first/);
  const results = await Promise.all(pending);
  assert.deepEqual(results.map((r) => r.loss), expected);
  assert.equal(trainer.stepCount, 4);
  assert.equal(maxDifference(trainer.getState().tensors, awaited.getState().tensors, [...awaited.getState().tensors.keys()]), 0);
});

test("a learning rate that is negative, not finite or beyond float32's range is refused, naming the value", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const refused = (value, message) =>
    assert.throws(() => (trainer.learningRate = value), (e) => e instanceof RangeError && e.message === message);
  refused(1e40, "learningRate expects a number within float32's range (<= 3.4e38), which the train step computes in. Received: 1e+40");
  for (const value of [-1, NaN, Infinity]) refused(value, `learningRate expects a finite number >= 0. Received: ${value}`);
  assert.throws(() => (trainer.learningRate = "0.1"), /learningRate expects a finite number >= 0. Received: "0.1" \(a string\)/);
  assert.equal(trainer.learningRate, 0.001);
  trainer.learningRate = 0; // steps then leave the weights as they are
  assert.equal(trainer.learningRate, 0);
});

test("x and labels as array-like objects read as the arrays they stand for", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const [x, y] = batch(0);
  const expected = await trainer.evaluate(x, y);
  const arrayLike = (values) => ({ length: values.length, ...Array.from(values, Number) });
  assert.deepEqual(await trainer.evaluate(arrayLike(x), arrayLike(y)), expected);
  await assert.rejects(trainer.step(arrayLike(x.subarray(1)), y), /x expects a multiple of 16 values.*Received: 127 values/);
});
