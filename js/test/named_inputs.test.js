// A model's inputs by name ({feats, meta} or a Map, as Python's fit takes a dict), inputs given in another order
// (named, with each input's size per example), and float targets given as integers (BigInt64Array, int64 tensors),
// which Python casts to float32. End to end against Python: tests/test_bundle_inputs.py.

import assert from "node:assert/strict";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { inputRows } from "../src/batches.js";
import { labelData } from "../src/inputs.js";

const TWO = {
  inputs: [
    { name: "feats", dtype: "float32", shape: [null, 6] },
    { name: "meta", dtype: "float32", shape: [null, 3] },
  ],
  input_scale: 1,
};
const feats = Float32Array.from({ length: 12 }, (_, i) => i / 12);
const meta = Float32Array.from({ length: 6 }, (_, i) => i / 6);
const valuesOf = (rows) => rows.inputs.map((r) => Array.from(r.data));

test("inputs by name, as an object or a Map, are read in the model's order", () => {
  const listed = inputRows([feats, meta], TWO);
  assert.equal(listed.count, 2);
  assert.deepEqual(valuesOf(inputRows({ meta, feats }, TWO)), valuesOf(listed));
  assert.deepEqual(valuesOf(inputRows(new Map([["meta", meta], ["feats", feats]]), TWO)), valuesOf(listed));
  assert.deepEqual(valuesOf(inputRows({ feats: [Array.from(feats.subarray(0, 6)), Array.from(feats.subarray(6))], meta }, TWO)), valuesOf(listed));
});

test("a name the model lacks, or a missing one, is refused naming both lists; messages name the input by key", () => {
  assert.throws(() => inputRows({ feats, metadata: meta }, TWO), {
    name: "TypeError",
    message: `x expects the model's inputs by name: "feats", "meta" (or an array in that order). Received: "feats", "metadata"; missing "meta"; the model has no input "metadata"`,
  });
  assert.throws(() => inputRows({}, TWO), /Received: no names; missing "feats", "meta"/);
  assert.throws(() => inputRows({ feats, meta: new Float32Array(5) }, TWO), /^RangeError: x.meta expects a multiple of 3 values/);
  assert.throws(() => inputRows({ feats, meta: Float32Array.of(0, 1, NaN, 0, 0, 0) }, TWO), /x.meta expects finite values. Received: x.meta\[0, 2\]=NaN/);
});

test("swapped inputs are named with each input's size per example and the order they fit", () => {
  assert.throws(() => inputRows([meta, feats], TWO), {
    name: "RangeError",
    message:
      "x expects as many examples in every input: 'feats' takes 6 values per example, 'meta' takes 3 values per " +
      "example. Received: x[0] holds 6 values (1 example of 'feats'), x[1] holds 12 values (4 examples of 'meta'); " +
      "they fit the order 'meta', 'feats' (2 examples each): were the inputs given in another order? Give them in " +
      "the model's order (feats, meta) or by name: {feats, meta}",
  });
  // whole examples of each, in other numbers: no other order fits
  assert.throws(() => inputRows([feats, meta.subarray(0, 3)], TWO), /^RangeError: x expects as many examples in every input\. Received: 2 and 1 \(x\[1\]\)$/);
  assert.throws(() => inputRows({ feats, meta: meta.subarray(0, 3) }, TWO), /Received: 2 and 1 \(x.meta\)$/);
  // a size that fits no input: the input's own message
  assert.throws(() => inputRows([feats, new Float32Array(4)], TWO), /^RangeError: x\[1\] expects a multiple of 3 values: .*'meta'/);
});

test("float targets given as integers (a BigInt64Array, an int64 tensor) are read as numbers, as Python casts them", () => {
  const spec = { name: "labels", dtype: "float32", shape: [null, 2] };
  const expected = labelData([1, 2, 3, 4], spec, 2, 2, "mse");
  assert.deepEqual(labelData(BigInt64Array.of(1n, 2n, 3n, 4n), spec, 2, 2, "mse"), expected);
  assert.deepEqual(labelData(new ort.Tensor("int64", BigInt64Array.of(1n, 2n, 3n, 4n), [2, 2]), spec, 2, 2, "mse"), expected);
  assert.deepEqual(labelData([1n, 2n, 3, 4], spec, 2, 2, "mse"), expected);
  assert.throws(() => labelData(BigInt64Array.of(0n, 2n), { ...spec, shape: [null, 1] }, 2, 1, "binary_crossentropy"), /for loss 'binary_crossentropy' expects targets in \[0, 1\]\. Received: labels.flat\[1\]=2$/);
  assert.throws(() => labelData(["1", 2, 3, 4], spec, 2, 2, "mse"), /labels expects numbers. Received: labels\[0, 0\]="1"/);
});
