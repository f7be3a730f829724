// Trainer.predict and predictSoftly: the eval graph's outputs for the current weights, decided by the bundle's loss
// as Python's InferenceModel.predict decides, in batches, queued after the steps already called. (tests/test_js.py
// compares them with Python's for each kind of loss.)

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";
import { loadBatches } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const { x, y } = await loadBatches(async (name) => new Uint8Array(await readFile(join(FIXTURES, "batches", name))));
const CLASSES = 3;

/** numpy's argmax of each row of `units` values. */
const argmax = (values, units) =>
  Array.from({ length: values.length / units }, (_, row) => {
    const slice = Array.from(values.subarray(row * units, (row + 1) * units));
    return slice.indexOf(Math.max(...slice));
  });

test("predict gives the argmax of evaluate's logits, the same for any batch size", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  await trainer.fit(x, y, { epochs: 2, batchSize: 8, seed: 2 });
  const spread = Float32Array.from(x, (v, i) => (v - 0.5) * (i % 7) * 10); // inputs the model tells apart
  const { logits } = await trainer.evaluate(spread, y);
  const classes = await trainer.predict(spread);
  assert.ok(classes instanceof Int32Array);
  assert.deepEqual(Array.from(classes), argmax(logits, CLASSES));
  assert.equal(new Set(classes).size, CLASSES); // a check that could fail: every class is predicted
  for (const batchSize of [1, 7, 80, 5000]) assert.deepEqual(await trainer.predict(spread, { batchSize }), classes);
  const pixels = Uint8Array.from({ length: 2 * 16 }, (_, i) => (i * 53) % 256); // scaled by 1/255, as step scales them
  assert.deepEqual(await trainer.predict(pixels), await trainer.predict(Float32Array.from(pixels, (p) => Math.fround(p / 255))));
});

test("predictSoftly gives the softmax of the logits; predict's {probabilities: true} the same", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const { logits } = await trainer.evaluate(x, y);
  const probabilities = await trainer.predictSoftly(x, { batchSize: 16 });
  assert.ok(probabilities instanceof Float32Array);
  assert.equal(probabilities.length, x.length / 16 * CLASSES);
  for (let row = 0; row < probabilities.length / CLASSES; row++) {
    const z = Array.from(logits.subarray(row * CLASSES, (row + 1) * CLASSES));
    const e = z.map((v) => Math.exp(v));
    const total = e.reduce((a, b) => a + b);
    e.forEach((v, c) => assert.ok(Math.abs(probabilities[row * CLASSES + c] - v / total) < 1e-7));
  }
  assert.deepEqual(await trainer.predict(x, { probabilities: true }), probabilities);
});

test("predict is queued after the steps already called: it sees the weights they leave", async () => {
  const awaited = await Trainer.load(ort, BUNDLE);
  for (let k = 0; k < 4; k++) await awaited.step(x.subarray(k * 128, (k + 1) * 128), y.subarray(k * 8, (k + 1) * 8));
  const expected = await awaited.predictSoftly(x);
  const trainer = await Trainer.load(ort, BUNDLE);
  const before = await trainer.predictSoftly(x);
  const steps = [0, 1, 2, 3].map((k) => trainer.step(x.subarray(k * 128, (k + 1) * 128), y.subarray(k * 8, (k + 1) * 8)));
  const queued = trainer.predictSoftly(x);
  await Promise.all(steps);
  assert.deepEqual(await queued, expected);
  assert.notDeepEqual(before, expected);
});

test("a bundle of another loss decides as Python does: raw outputs, and predictSoftly refused, for mse", async () => {
  const json = JSON.parse(await readFile(join(BUNDLE, "bundle.json"), "utf8"));
  const source = {
    read: async (name) =>
      name === "bundle.json"
        ? new TextEncoder().encode(JSON.stringify({ ...json, loss: "mse" }))
        : new Uint8Array(await readFile(join(BUNDLE, name))),
  };
  const trainer = await Trainer.load(ort, source); // the same graphs: only the decision changes
  const outputs = await trainer.predict(x, { batchSize: 30 });
  assert.ok(outputs instanceof Float32Array);
  assert.deepEqual(outputs, (await trainer.evaluate(x, y)).logits);
  await assert.rejects(trainer.predictSoftly(x), {
    name: "Error",
    message: "predictSoftly needs a classification loss (softmax cross-entropy or binary cross-entropy). Received: " +
      "loss 'mse' (model 'sequential'); use predict() for regression outputs.",
  });
});

test("predict refuses bad x and options, naming the value, and rejects after release", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  await assert.rejects(trainer.predict(new Float32Array(15)), /^RangeError: x expects a multiple of 16 values: .*Received: 15 values$/);
  // two arrays for a model of one input are rows of examples: each must hold one example
  await assert.rejects(trainer.predict([x, x]), /^RangeError: x expects rows of 16 values \(one example of shape \[4,4,1\] each\). Received: x\[0\] of 1280 values$/);
  await assert.rejects(trainer.predict(x, { batchSize: 0 }), /predict expects batchSize to be a whole number >= 1. Received: 0/);
  await assert.rejects(trainer.predict(x, { probabilities: "yes" }), /predict expects probabilities to be true or false. Received: "yes"/);
  await assert.rejects(trainer.predict(x, { batch_size: 8 }), /predict takes the options batchSize, probabilities. Received: batch_size/);
  await trainer.release();
  await assert.rejects(trainer.predict(x), /this Trainer was released: load another with Trainer.load/);
});
