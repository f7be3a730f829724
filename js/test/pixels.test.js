// src/pixels.js, Python's onnxtrain/_integer_pixels.py rule: at input_scale 1/255 integer inputs outside [0, 255]
// are refused (typed arrays, typed rows nested at any level, tf.js and ort tensors), naming the first bad value and
// its position; at input_scale 1, Uint8Array, Uint8ClampedArray, Uint16Array and Int16Array images are warned of,
// other integer types are not; token ids and integer inputs are never checked.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";
import { checkIntegerPixels } from "../src/pixels.js";

const BUNDLE = fileURLToPath(new URL("./fixtures/bundle/", import.meta.url)); // input [4, 4, 1], input_scale 1/255
const N = 2;
const labels = [0, 1];
const SPEC = { name: "input", dtype: "float32", shape: [null, 4, 4, 1] };
const SHAPE = [N, 4, 4, 1];
/** N examples of pixels in [0, 127] (in every integer type), of `Type`, with `value` at flat index 21 (x[1, 1, 1, 0]). */
const pixels = (Type, value) => {
  const out = Type.from({ length: N * 16 }, (_, i) => (Type === BigInt64Array ? BigInt((i * 37) % 128) : (i * 37) % 128));
  if (value !== undefined) out[21] = value;
  return out;
};

/** A bundle with bundle.json changed by `change`. */
const changedBundle = (change) => ({
  read: async (name) => {
    const bytes = await readFile(join(BUNDLE, name));
    if (name !== "bundle.json") return bytes;
    const metadata = JSON.parse(bytes.toString());
    change(metadata);
    return new TextEncoder().encode(JSON.stringify(metadata));
  },
});

/** The warnings checkIntegerPixels gives for `values` at `scale`. */
const warningsOf = (values, scale, spec = SPEC) => {
  const warnings = [];
  checkIntegerPixels(values, spec, scale, "x", SHAPE, (_key, message) => warnings.push(message));
  return warnings;
};

test("at input_scale 1/255, 16-bit values outside [0, 255] are refused naming the first, its position and the fix", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  await assert.rejects(
    trainer.evaluate(pixels(Uint16Array, 1000), labels),
    {
      name: "RangeError",
      message:
        "x expects integer pixels in [0, 255]: the model's input_scale is 1/255 (it divides integer inputs by 255, as " +
        "it was trained on 8-bit pixels). Received: x[1, 1, 1, 0]=1000 (a Uint16Array). 16-bit pixels need 8 bits " +
        "first: pass Uint8Array.from(x, (v) => v >> 8), or float32 values Float32Array.from(x, (v) => v / 65535).",
    },
  );
  await assert.rejects(
    trainer.evaluate(pixels(Int16Array, -5), labels),
    {
      message:
        "x expects integer pixels in [0, 255]: the model's input_scale is 1/255 (it divides integer inputs by 255, as " +
        "it was trained on 8-bit pixels). Received: x[1, 1, 1, 0]=-5 (an Int16Array). Bring them to [0, 255] first " +
        "(16-bit pixels: v >> 8), or pass float32 values (a Float32Array), which are used as they are.",
    },
  );
  // every integer type but 8-bit pixels, in step, fit and predict alike
  const received = (value, Type) => new RegExp(`Received: x\\[1, 1, 1, 0\\]=${value} \\(an? ${Type.name}\\)`);
  for (const [Type, value] of [[Int8Array, -1], [Int32Array, 256], [Uint32Array, 300], [BigInt64Array, 256n], [BigUint64Array, 999n]]) {
    const x = Type === BigUint64Array ? BigUint64Array.from(pixels(BigInt64Array, value)) : pixels(Type, value);
    await assert.rejects(trainer.step(x, labels), received(value, Type), Type.name);
  }
  await assert.rejects(trainer.fit(pixels(Uint16Array, 256), labels, { batchSize: 1 }), received(256, Uint16Array));
  await assert.rejects(trainer.predict(pixels(Int16Array, -1)), received(-1, Int16Array));
});

test("at input_scale 1/255, tensors and typed rows (at any level of nesting) are checked as typed arrays are", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const bad = pixels(Uint16Array, 1000);
  const received = /Received: x\[1, 1, 1, 0\]=1000 \(a Uint16Array\)/;
  const rows = Array.from({ length: N }, (_, n) => bad.slice(n * 16, (n + 1) * 16));
  const nested = Array.from({ length: N }, (_, n) =>
    Array.from({ length: 4 }, (_, r) => Array.from({ length: 4 }, (_, c) => bad.slice(n * 16 + r * 4 + c, n * 16 + r * 4 + c + 1))),
  );
  const tfTensor = { dataSync: () => pixels(Int32Array, -5), shape: [N, 4, 4, 1], dtype: "int32" };
  await assert.rejects(trainer.evaluate(new ort.Tensor("uint16", bad, [N, 16]), labels), received);
  await assert.rejects(trainer.evaluate(rows, labels), received);
  await assert.rejects(trainer.evaluate(nested, labels), received);
  await assert.rejects(trainer.evaluate(tfTensor, labels), /Received: x\[1, 1, 1, 0\]=-5 \(an Int32Array\)/);
});

test("at input_scale 1/255, integers in [0, 255] of any type, typed rows and tensors give the Uint8Array's result", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const expected = await trainer.evaluate(pixels(Uint8Array), labels);
  const u8 = pixels(Uint8Array);
  const nested = Array.from({ length: N }, (_, n) =>
    Array.from({ length: 4 }, (_, r) => Array.from({ length: 4 }, (_, c) => u8.slice(n * 16 + r * 4 + c, n * 16 + r * 4 + c + 1))),
  );
  const cases = {
    Uint16Array: pixels(Uint16Array),
    Int16Array: pixels(Int16Array),
    Int32Array: pixels(Int32Array),
    BigInt64Array: pixels(BigInt64Array),
    "ort uint16 tensor": new ort.Tensor("uint16", pixels(Uint16Array), [N, 16]),
    "tf.js int32 tensor": { dataSync: () => pixels(Int32Array), shape: [N, 4, 4, 1], dtype: "int32" },
    "Uint8Array rows nested as [N][4][4][1]": nested, // were read unscaled before: typed leaves keep their type
  };
  for (const [name, x] of Object.entries(cases)) assert.deepEqual(await trainer.evaluate(x, labels), expected, name);
});

test("other input scales, float values, token ids and integer inputs are never range-checked", async () => {
  for (const scale of [1, 1 / 65535, 0.5]) assert.doesNotThrow(() => warningsOf(pixels(Uint16Array, 1000), scale), `${scale}`);
  assert.doesNotThrow(() => warningsOf(pixels(Float32Array, 1000), 1 / 255));
  const ids = { ...SPEC, token_ids: { input_dim: 2000, layer: "embedding" } };
  assert.deepEqual(warningsOf(pixels(Uint16Array, 1000), 1 / 255, ids), []);
  assert.deepEqual(warningsOf(pixels(Uint8Array), 1, ids), []); // token ids are not pixels at scale 1 either
  for (const dtype of ["int64", "int32"]) assert.deepEqual(warningsOf(pixels(Int32Array, -5), 1 / 255, { ...SPEC, dtype }), []);
  // through the trainer: an input read as token ids takes Int16Array ids above 255
  const trainer = await Trainer.load(ort, changedBundle((m) => (m.inputs[0].token_ids = { input_dim: 2000, layer: "embedding" })));
  assert.ok(Number.isFinite((await trainer.evaluate(pixels(Int16Array, 1000), labels)).loss));
});

test("at input_scale 1, 8- and 16-bit pixel arrays are warned of with their range and divisor; other integers are not", async () => {
  const uint16 = warningsOf(pixels(Uint16Array), 1);
  assert.deepEqual(uint16, [
    "onnxtrain-js: x is a Uint16Array (16-bit pixels 0-65535) for the float input 'input', and the model's input_scale " +
      "is 1, so the model reads the raw values (0-65535). If it was trained on values in [0, 1], scale them: pass " +
      "Float32Array.from(x, (v) => v / 65535), or bundle the model with model.input_scale = 1 / 65535 set in Python " +
      "(integer arrays are then divided by 65535). If it was trained on raw values, pass a Float32Array to silence " +
      "this warning (given once per trainer).",
  ]);
  const [int16] = warningsOf(pixels(Int16Array), 1);
  assert.match(int16, /x is an Int16Array \(16-bit pixels -32768 to 32767\) .* reads the raw values \(-32768 to 32767\)\. If it was trained on values in \[-1, 1\], scale them: pass Float32Array\.from\(x, \(v\) => v \/ 32768\), or bundle the model with model\.input_scale = 1 \/ 32768/);
  assert.match(warningsOf(pixels(Uint8ClampedArray), 1)[0], /x is a Uint8ClampedArray \(pixels 0-255\)/);
  for (const Type of [Int8Array, Int32Array, Uint32Array, BigInt64Array, Float32Array, Float64Array]) {
    assert.deepEqual(warningsOf(pixels(Type), 1), [], Type.name);
  }
  assert.deepEqual(warningsOf(pixels(Uint16Array), 1 / 255), []); // scaled: nothing to say
});

test("the trainer warns once of 16-bit pixels at input_scale 1, from a tensor or typed rows as from a typed array", async () => {
  const warnings = [];
  const warn = console.warn;
  console.warn = (message) => void warnings.push(message);
  try {
    const raw = await Trainer.load(ort, changedBundle((m) => (m.input_scale = 1)));
    const x = pixels(Uint16Array, 1000); // raw values: no range at input_scale 1
    const result = await raw.evaluate(new ort.Tensor("uint16", x, [N, 16]), labels);
    assert.deepEqual(result, await raw.evaluate(Float32Array.from(x), labels)); // read raw, unscaled
    await raw.predict([x.slice(0, 16), x.slice(16)]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /^onnxtrain-js: x is a Uint16Array \(16-bit pixels 0-65535\)/);
    await raw.evaluate(pixels(Int32Array), labels);
    assert.equal(warnings.length, 1);
  } finally {
    console.warn = warn;
  }
});

test("a model that scales its raw pixels itself (inputs[].rescales_pixels) is not warned of them", async () => {
  const own = { ...SPEC, rescales_pixels: true };
  for (const Type of [Uint8Array, Uint8ClampedArray, Uint16Array, Int16Array]) assert.deepEqual(warningsOf(pixels(Type), 1, own), [], Type.name);
  assert.equal(warningsOf(pixels(Uint8Array), 1, { ...SPEC, rescales_pixels: false }).length, 1);
  const warnings = [];
  const warn = console.warn;
  console.warn = (message) => void warnings.push(message);
  try {
    const rescaling = await Trainer.load(ort, changedBundle((m) => ((m.input_scale = 1), (m.inputs[0].rescales_pixels = true))));
    await rescaling.evaluate(pixels(Uint8Array), labels);
    await rescaling.predict(pixels(Uint8ClampedArray));
    assert.deepEqual(warnings, []);
  } finally {
    console.warn = warn;
  }
});
