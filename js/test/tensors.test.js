// Tensors as x and labels (src/tensors.js): a tf.js-style tensor (dataSync, shape) or onnxruntime's own Tensor
// (data, dims, type) is read when its shape is [N, ...the example's shape] or [N, values per example], and refused
// otherwise, naming the shape and, for a channels-first one, how to fix it; an ort.Tensor's element type follows
// the typed-array rule (floats as they are, integers scaled or whole), other types are refused.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";
import { tensorValues } from "../src/tensors.js";
import { loadBatches } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const { x, y } = await loadBatches(async (name) => new Uint8Array(await readFile(join(FIXTURES, "batches", name))));
const N = 6;
const flat = x.subarray(0, N * 16); // input shape [4, 4, 1]
const labels = y.subarray(0, N);

const tfTensor = (data, shape, dtype) => ({ dataSync: () => data, shape, ...(dtype && { dtype }) });
const ortTensor = (data, dims) => new ort.Tensor("float32", data, dims);
const values = (count) => Float32Array.from({ length: count }, (_, i) => i + 1);

/** The message tensorValues refuses `tensor` with, or null where it reads it. */
function refusal(tensor, example, ...more) {
  try {
    tensorValues(tensor, example, "x", ...more);
    return null;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
}

test("a tensor of shape [N, ...the example's shape] or [N, values per example] is read as its values", () => {
  for (const make of [tfTensor, ortTensor]) {
    for (const [example, shapes] of [
      [[2, 2, 3], [[2, 2, 2, 3], [2, 12], [0, 2, 2, 3]]],
      [[4, 4, 1], [[2, 4, 4, 1], [2, 16]]],
      [[5], [[2, 5]]],
      [[], [[2], [2, 1]]], // class indices
    ]) {
      for (const shape of shapes) {
        const data = values(shape.reduce((n, d) => n * d, 1));
        assert.equal(tensorValues(make(data, shape), example, "x"), data, `${make.name} [${shape}] for [${example}]`);
      }
    }
  }
  // float targets of one unit take [N] too, as Python's losses take (N,)
  assert.deepEqual(tensorValues(tfTensor(values(3), [3]), [1], "labels", undefined, true), values(3));
});

test("a tensor of another shape is refused naming it, with the fix for a channels-first or a reshapable one", () => {
  const hwc = "x expects a tensor of shape [N, 2,2,3] (N examples of shape [2,2,3], or [N, 12]). Received: a tensor of shape";
  const channelsFirst =
    "the examples look channels-first, and the model reads channels last: move the channel axis last (a reshape would " +
    "scramble the images)";
  const cases = [
    // [tensor, example, the message]
    [tfTensor(values(24), [2, 3, 2, 2]), [2, 2, 3], `${hwc} [2,3,2,2]; ${channelsFirst}: for a tf.Tensor, x.transpose([0, 2, 3, 1])`],
    [ortTensor(values(24), [2, 3, 2, 2]), [2, 2, 3], `${hwc} [2,3,2,2]; ${channelsFirst}`],
    [tfTensor(values(24), [2, 4, 3]), [2, 2, 3], `${hwc} [2,4,3]; reshape it to [2,2,2,3] if its values are in that order`],
    [ortTensor(values(24), [2, 6, 2]), [2, 2, 3], `${hwc} [2,6,2]; reshape it to [2,2,2,3] if its values are in that order`],
    [tfTensor(values(24), [2, 12, 1]), [2, 2, 3], `${hwc} [2,12,1]; reshape it to [2,2,2,3] if its values are in that order`],
    [tfTensor(values(26), [2, 13]), [2, 2, 3], `${hwc} [2,13]`],
    [tfTensor(values(12), [2, 2, 3]), [2, 2, 3], `${hwc} [2,2,3]; for one example, add the batch axis: shape [1,2,2,3]`],
    [tfTensor(values(1), []), [2, 2, 3], `${hwc} []`],
    [tfTensor(values(12), [-1, 12]), [2, 2, 3], `${hwc} [-1,12]`],
    // one channel first holds the values in the model's order: a reshape is the fix (and [N, 4, 4] misses the axis)
    [ortTensor(values(32), [2, 1, 4, 4]), [4, 4, 1], "x expects a tensor of shape [N, 4,4,1] (N examples of shape [4,4,1], or [N, 16]). Received: a tensor of shape [2,1,4,4]; reshape it to [2,4,4,1] if its values are in that order"],
    [tfTensor(values(32), [2, 4, 4]), [4, 4, 1], /shape \[2,4,4\]; reshape it to \[2,4,4,1\] if its values are in that order$/],
    [tfTensor(values(3), [3]), [1], "x expects a tensor of shape [N, 1] (N examples of shape [1]). Received: a tensor of shape [3]; reshape it to [3,1] if its values are in that order"],
    [tfTensor(values(6), [6, 1, 1]), [], "x expects a tensor of shape [N] (or [N, 1]). Received: a tensor of shape [6,1,1]; reshape it to [6] if its values are in that order"],
  ];
  for (const [tensor, example, message] of cases) {
    const got = refusal(tensor, example);
    if (typeof message === "string") assert.equal(got, `RangeError: ${message}`);
    else assert.match(got, message);
  }
  // labels of one unit name [N] among the shapes they take
  assert.equal(
    refusal(tfTensor(values(6), [3, 2]), [1], undefined, true),
    "RangeError: x expects a tensor of shape [N, 1] (N examples of shape [1], or [N]). Received: a tensor of shape [3,2]",
  );
});

test("an ort.Tensor of a number type is read as the typed array it holds; other types and places are refused", () => {
  const types = {
    float32: Float32Array,
    float64: Float64Array,
    int8: Int8Array,
    uint8: Uint8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    int32: Int32Array,
    uint32: Uint32Array,
    int64: BigInt64Array,
    uint64: BigUint64Array,
  };
  for (const [type, Type] of Object.entries(types)) {
    const data = new Type(4);
    assert.equal(tensorValues(new ort.Tensor(type, data, [2, 2]), [2], "x"), data, type);
  }
  const typeRefusal = "TypeError: x expects a tensor of numbers (float32, float64 or an integer type). Received: a tensor of type";
  assert.equal(refusal(new ort.Tensor("bool", new Uint8Array(4), [2, 2]), [2]), `${typeRefusal} 'bool'; pass a mask as float32 (1 for true)`);
  assert.equal(refusal(new ort.Tensor("float16", new Uint16Array(4), [2, 2]), [2]), `${typeRefusal} 'float16'; convert it to float32 first`);
  assert.equal(refusal(new ort.Tensor("string", ["a", "b", "c", "d"], [2, 2]), [2]), `${typeRefusal} 'string'`);
  assert.equal(refusal(tfTensor(new Uint8Array(4), [2, 2], "bool"), [2]), `${typeRefusal} 'bool'; pass a mask as float32 (1 for true)`);
  const disposed = new ort.Tensor("float32", new Float32Array(4), [2, 2]);
  disposed.dispose();
  assert.equal(
    refusal(disposed, [2]),
    "TypeError: x expects a tensor whose data is on the CPU. Received: a disposed tensor (location 'none')",
  );
  const onGpu = { dims: [2, 2], type: "float32", location: "gpu-buffer", get data() { throw new Error("not on the CPU"); } };
  assert.equal(
    refusal(onGpu, [2]),
    "TypeError: x expects a tensor whose data is on the CPU. Received: a tensor on 'gpu-buffer'; download it first: " +
      "new ort.Tensor(t.type, await t.getData(), t.dims)",
  );
  // an object with an ort.Tensor's members whose data does not fill its dims
  assert.equal(
    refusal({ data: new Float32Array(3), dims: [2, 2], type: "float32" }, [2]),
    "RangeError: x expects data to give 4 values (dims [2,2]). Received: 3",
  );
});

test("an ort.Tensor is taken wherever a tensor is: x and labels of step, evaluate, fit and predict, rows", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const expected = await trainer.evaluate(flat, labels);
  const indices = BigInt64Array.from(labels);
  const cases = {
    "x [N, 4, 4, 1]": [ortTensor(flat, [N, 4, 4, 1]), labels],
    "x [N, 16]": [ortTensor(flat, [N, 16]), labels],
    "float64 x": [new ort.Tensor("float64", Float64Array.from(flat), [N, 16]), labels],
    "int64 labels [N]": [flat, new ort.Tensor("int64", indices, [N])],
    "int32 labels [N, 1]": [flat, new ort.Tensor("int32", Int32Array.from(labels, Number), [N, 1])],
    "rows of ort.Tensors": [Array.from({ length: N }, (_, i) => ortTensor(flat.slice(i * 16, (i + 1) * 16), [4, 4, 1])), labels],
    "a list of the one input": [[ortTensor(flat, [N, 16])], labels],
  };
  for (const [name, [xs, ys]] of Object.entries(cases)) {
    assert.deepEqual(await trainer.evaluate(xs, ys), expected, name);
  }
  // uint8 pixels in an ort.Tensor are scaled by the input scale, as a Uint8Array is
  const pixels = Uint8Array.from(flat, (v) => Math.round(v * 255));
  assert.deepEqual(await trainer.evaluate(new ort.Tensor("uint8", pixels, [N, 16]), labels), await trainer.evaluate(pixels, labels));
  assert.deepEqual(await trainer.predict(ortTensor(flat, [N, 4, 4, 1])), await trainer.predict(flat));
  assert.deepEqual(await trainer.predictSoftly(ortTensor(new Float32Array(0), [0, 16])), new Float32Array(0));
  const a = await Trainer.load(ort, BUNDLE);
  const b = await Trainer.load(ort, BUNDLE);
  const history = await a.fit(flat, labels, { batchSize: 4, seed: 1 });
  assert.deepEqual(await b.fit(ortTensor(flat, [N, 4, 4, 1]), new ort.Tensor("int64", indices, [N]), { batchSize: 4, seed: 1 }), history);
  assert.deepEqual(b.stateBytes(), a.stateBytes());
  // a wrong shape rejects before anything runs
  await assert.rejects(
    trainer.step(ortTensor(flat, [N, 1, 4, 4]), labels),
    /^RangeError: x expects a tensor of shape \[N, 4,4,1\] .*Received: a tensor of shape \[6,1,4,4\]; reshape it to \[6,4,4,1\]/,
  );
  await assert.rejects(trainer.step(flat, new ort.Tensor("float32", Float32Array.from(labels, Number), [N, 1, 1])), /^RangeError: labels expects a tensor of shape \[N\] \(or \[N, 1\]\)/);
  assert.equal(trainer.stepCount, 0);
});
