// The shapes TF.js users hand over: rows of examples (number[][], nested as the input's shape, typed-array rows) and
// tensor-like objects (dataSync, shape) read as the flat values they hold, checked row by row and level by level
// (test/tensors.test.js has the tensor shapes); one-hot labels for class indices named as such; predict of no
// examples; uint8 pixels a model of input scale 1 reads raw, warned of.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";
import { rowValues } from "../src/rows.js";
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

test("a row nests as the example's shape level by level, or flat; another nesting is refused naming it", async () => {
  // one example of shape [2, 2, 3] (height, width, channels): its values 1..12 in that order, and the same image
  // nested in other ways
  const hwc = [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]];
  const values = hwc.flat(2);
  const asShape = (shape) => tensor(Float32Array.from(values), shape);
  const read = (rowsOf) => Array.from(rowValues(rowsOf, [2, 2, 3], "x"));
  const accepted = {
    "nested arrays [2][2][3]": [hwc, hwc],
    "flat rows": [values, values],
    "typed arrays as the last level": [hwc.map((r) => r.map((p) => Float32Array.from(p)))],
    "tensors of shape [2, 3] as the second level": [[0, 1].map((h) => tensor(Float32Array.from(values.slice(h * 6, h * 6 + 6)), [2, 3]))],
    "tensor rows of shape [2, 2, 3] and [12]": [asShape([2, 2, 3]), asShape([12])],
    "a typed-array row among nested ones": [hwc, Float32Array.from(values)],
  };
  for (const [name, rowsOf] of Object.entries(accepted)) {
    assert.deepEqual(read(rowsOf), Array(rowsOf.length).fill(values).flat(), name);
  }
  const chw = [0, 1, 2].map((c) => [0, 1].map((h) => [0, 1].map((w) => hwc[h][w][c])));
  const expects = "RangeError: x expects rows of 12 values (one example of shape [2,2,3] each), flat or nested as that shape. Received:";
  const channelsFirst =
    "the examples look channels-first, and the model reads channels last: move the channel axis last (a reshape would " +
    "scramble the images)";
  const refused = [
    [[hwc, chw], `${expects} x[1] nested as [3,2,2]; ${channelsFirst}`],
    [[asShape([3, 2, 2])], `${expects} x[0] nested as [3,2,2]; ${channelsFirst}`],
    [[[values.slice(0, 3), values.slice(3, 6), values.slice(6, 9), values.slice(9)]], `${expects} x[0] nested as [4,3]`],
    [[hwc, [values.slice(0, 6), values.slice(6)]], `${expects} x[1] nested as [2,6]`],
    [[values.map((v) => [v])], `${expects} x[0] nested as [12,1]`],
    [[asShape([1, 2, 2, 3])], `${expects} x[0] nested as [1,2,2,3]`],
    [[[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9, 10], [11, 12]]]], `${expects} x[0] nested unevenly`],
    [[[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, [11], 12]]]], `${expects} x[0] nested unevenly`],
  ];
  for (const [rowsOf, message] of refused) {
    assert.throws(() => read(rowsOf), (e) => `${e.name}: ${e.message}` === message, message);
  }
  // a row of as many values nested otherwise is refused by step too: [N][4][4] for the input [4, 4, 1]
  const trainer = await Trainer.load(ort, BUNDLE);
  const missingChannel = rows((i) => Array.from({ length: 4 }, (_, r) => row(i).slice(r * 4, r * 4 + 4)));
  await assert.rejects(
    trainer.step(missingChannel, labels),
    (e) =>
      e instanceof RangeError &&
      e.message === "x expects rows of 16 values (one example of shape [4,4,1] each), flat or nested as that shape. Received: x[0] nested as [4,4]",
  );
  // label rows too: one class index per example, [[0], [2]], not [[[0]], [[2]]]
  await assert.rejects(
    trainer.step(flat, Array.from(labels, (v) => [[Number(v)]])),
    /^RangeError: labels expects rows of 1 values \(one example of shape \[\] each\), flat or nested as that shape\. Received: labels\[0\] nested as \[1,1\]$/,
  );
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
    `labels expects a tensor of shape [N] (or [N, 1]). Received: a tensor of shape [6,3]; ${hint}`,
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
      /^onnxtrain-js: x is a Uint8Array \(pixels 0-255\) for the float input 'input', and the model's input_scale is 1, so the model reads the raw values \(0-255\)\. If it was trained on values in \[0, 1\], scale them: pass Float32Array\.from\(x, \(v\) => v \/ 255\)/,
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
