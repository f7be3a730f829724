// The shapes TF.js users hand over: rows of examples (number[][], nested as the input's shape, typed-array rows) and
// tensor-like objects (dataSync, shape) read as the flat values they hold, checked row by row; one-hot labels for
// class indices named as such; predict of no examples; uint8 pixels a model of input scale 1 reads raw, warned of.

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
const FEATURES = 16; // input shape [4, 4, 1]
const N = 6;
const flat = x.subarray(0, N * FEATURES);
const labels = y.subarray(0, N);

/** Example i of the flat values as a plain array, or nested as [4, 4, 1]. */
const row = (i) => Array.from(flat.subarray(i * FEATURES, (i + 1) * FEATURES));
const nested = (i) => Array.from({ length: 4 }, (_, r) => Array.from({ length: 4 }, (_, c) => [row(i)[r * 4 + c]]));
const rows = (make) => Array.from({ length: N }, (_, i) => make(i));
const tensor = (data, shape) => ({ dataSync: () => data, shape });

/** A bundle read through {read(name)} with bundle.json changed by `change`. */
const changedBundle = (change) => ({
  read: async (name) => {
    const bytes = await readFile(join(BUNDLE, name));
    if (name !== "bundle.json") return bytes;
    const metadata = JSON.parse(bytes.toString());
    change(metadata);
    return new TextEncoder().encode(JSON.stringify(metadata));
  },
});

test("rows (flat or nested as the input's shape, typed or plain) and tensors give the flat values' results", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const expected = await trainer.evaluate(flat, labels);
  const sparse = Array.from(labels, Number);
  const cases = {
    "number[][]": [rows(row), labels],
    "nested [N, 4, 4, 1]": [rows(nested), labels],
    "Float32Array rows": [rows((i) => flat.slice(i * FEATURES, (i + 1) * FEATURES)), labels],
    "a list of the one input, itself rows": [[rows(row)], labels],
    "tensor [N, 4, 4, 1]": [tensor(flat, [N, 4, 4, 1]), labels],
    "tensor [N, 16]": [tensor(flat, [N, 16]), labels],
    "label rows [[0], [2]]": [flat, sparse.map((v) => [v])],
    "label tensor [N]": [flat, tensor(Int32Array.from(sparse), [N])],
    "label tensor [N, 1]": [flat, tensor(Int32Array.from(sparse), [N, 1])],
  };
  for (const [name, [xs, ys]] of Object.entries(cases)) {
    assert.deepEqual(await trainer.evaluate(xs, ys), expected, name);
  }
  // one array in a list: the input's values, or one example nested as its shape
  assert.deepEqual(await trainer.evaluate([nested(0)], [0]), await trainer.evaluate(row(0), [0]));
  // fit and predict read them as step does
  assert.deepEqual(await trainer.predict(rows(nested)), await trainer.predict(flat));
  const a = await Trainer.load(ort, BUNDLE);
  const b = await Trainer.load(ort, BUNDLE);
  const history = await a.fit(flat, labels, { batchSize: 4, seed: 1 });
  assert.deepEqual(await b.fit(tensor(flat, [N, 16]), sparse.map((v) => [v]), { batchSize: 4, seed: 1 }), history);
});

test("uint8 rows are pixels, scaled by the input scale as a flat Uint8Array is", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const pixels = Uint8Array.from(flat, (v) => Math.round(v * 255));
  const pixelRows = rows((i) => pixels.slice(i * FEATURES, (i + 1) * FEATURES));
  assert.deepEqual(await trainer.evaluate(pixelRows, labels), await trainer.evaluate(pixels, labels));
});

test("a row or tensor of another example size is refused naming the first bad row or the shape", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const short = rows(row);
  short[2] = short[2].slice(1);
  const refused = (xs, ys, pattern) => assert.rejects(trainer.step(xs, ys), pattern);
  await refused(short, labels, /^RangeError: x expects rows of 16 values \(one example of shape \[4,4,1\] each\)\. Received: x\[2\] of 15 values$/);
  const ragged = rows(nested);
  ragged[1][3].pop(); // [4, 4, 1] with one row of 3
  await refused(ragged, labels, /Received: x\[1\] of 15 values$/);
  await refused([row(0), 7], labels.subarray(0, 2), /^TypeError: x expects a typed array or an array of numbers, rows of examples .*Received: x\[1\]=7$/);
  await refused(tensor(flat, [N, 15]), labels, /^RangeError: x expects a tensor of shape \[N, 4,4,1\] .*or \[N, 16\]\)\. Received: a tensor of shape \[6,15\]$/);
  await refused(tensor(flat.subarray(1), [N, 16]), labels, /x expects dataSync\(\) to give 96 values \(shape \[6,16\]\)\. Received: 95/);
  // values that are not numbers are named at their position, as in flat arrays
  const text = rows(row);
  text[1][3] = "0.5";
  await refused(text, labels, /^TypeError: x expects numbers\. Received: x\[1, 0, 3, 0\]="0.5"$/);
  assert.equal(trainer.stepCount, 0);
});

test("one-hot labels for class indices: the message says so and to pass the argmax", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const oneHot = Array.from(labels, (v) => [0, 1, 2].map((c) => (c === Number(v) ? 1 : 0)));
  const hint = "3 values per example look like one-hot rows of 3 classes: loss 'softmax_cross_entropy_with_logits' " +
    "takes class indices, so pass the argmax of each row (for a tf.Tensor: labels.argMax(-1))";
  const refused = (ys, message) => assert.rejects(trainer.step(flat, ys), (e) => e instanceof RangeError && e.message === message);
  await refused(oneHot.flat(), `labels expects 6 values (shape [6]); received 18 (6 examples x 3); ${hint}`);
  await refused(oneHot, `labels expects rows of 1 values (one example of shape [] each). Received: labels[0] of 3 values; ${hint}`);
  await refused(
    tensor(Float32Array.from(oneHot.flat()), [N, 3]),
    `labels expects a tensor of shape [N, ] (N examples of shape []). Received: a tensor of shape [6,3]; ${hint}`,
  );
  // other sizes get no hint
  await assert.rejects(trainer.step(flat, [0, 1]), /^RangeError: labels expects 6 values \(shape \[6\]\); received 2$/);
});

test("predict of no examples gives an empty result, as Keras and TF.js do; step still refuses none", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  for (const empty of [new Float32Array(0), [], tensor(new Float32Array(0), [0, 4, 4, 1])]) {
    assert.deepEqual(await trainer.predict(empty), new Int32Array(0));
    assert.deepEqual(await trainer.predictSoftly(empty), new Float32Array(0));
  }
  await assert.rejects(trainer.step(new Float32Array(0), []), /x expects a multiple of 16 values: one or more examples/);
  await trainer.release();
  await assert.rejects(trainer.predict([]), /this Trainer was released/);
});

test("uint8 pixels for a float input of input scale 1 are read raw, and console.warn says so once per trainer", async () => {
  const warnings = [];
  const warn = console.warn;
  console.warn = (message) => void warnings.push(message);
  try {
    const pixels = Uint8Array.from(flat, (v) => Math.round(v * 255));
    const raw = await Trainer.load(ort, changedBundle((m) => (m.input_scale = 1)));
    const result = await raw.evaluate(pixels, labels);
    assert.deepEqual(result, await raw.evaluate(Float32Array.from(pixels), labels)); // raw 0-255, unscaled
    await raw.step(new Uint8ClampedArray(pixels), labels);
    await raw.predict(pixels);
    await raw.fit(pixels, labels, { batchSize: 3 });
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /^onnxtrain-js: x is a Uint8Array for the float input 'input', and the bundle's input_scale is 1, so the model reads the raw values \(0-255\)\. If it was trained on values in \[0, 1\], scale them: pass Float32Array\.from\(x, \(v\) => v \/ 255\)/,
    );
    const other = await Trainer.load(ort, changedBundle((m) => (m.input_scale = 1)));
    await other.predict(pixels); // once per trainer
    assert.equal(warnings.length, 2);
    const scaled = await Trainer.load(ort, BUNDLE); // input scale 1/255: pixels are divided, nothing to say
    await scaled.evaluate(pixels, labels);
    await other.evaluate(Float32Array.from(pixels), labels);
    assert.equal(warnings.length, 2);
  } finally {
    console.warn = warn;
  }
});
