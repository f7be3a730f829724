// The inputs: which .npy file feeds which model input, each file checked and converted as onnxtrain's
// InferenceModel checks and converts it (its shape, finite values, integer pixels and their scaling, token ids,
// integer data), and the feeds of one batch for ONNX Runtime.
import { existsSync } from "node:fs";
import ort from "onnxruntime-node";
import { readNpy } from "./npy.mjs";

// The file of each model input: NAME=FILE names its input (unless a file of that whole name exists), the other
// arguments are taken in the inputs' order.
export function filesOfInputs(files, inputs, modelPath) {
  const names = inputs.map((i) => i.name);
  const named = new Map();
  const inOrder = [];
  for (const file of files) {
    const [, name, path] = /^([^=]+)=(.+)$/.exec(file) ?? [];
    if (name === undefined || existsSync(file)) {
      inOrder.push(file);
    } else if (!names.includes(name)) {
      throw new Error(`${modelPath} has no input '${name}' (given as ${file}). Its inputs: ${describeInputs(inputs)}`);
    } else if (named.has(name)) {
      throw new Error(`input '${name}' was given twice: ${named.get(name)} and ${path}`);
    } else {
      named.set(name, path);
    }
  }
  const unnamed = names.filter((name) => !named.has(name));
  if (inOrder.length !== unnamed.length) {
    const example = names.map((name) => `${name}=${name}.npy`).join(" ");
    throw new Error(
      `${modelPath} expects one .npy file per input: it has ${names.length} (${describeInputs(inputs)}). Give them ` +
        `as NAME=FILE or in that order: node predict.mjs ${modelPath} ${example}. Received: ${files.length} ` +
        `file${files.length === 1 ? "" : "s"} (${files.join(", ")})`,
    );
  }
  unnamed.forEach((name, k) => named.set(name, inOrder[k]));
  return names.map((name) => named.get(name));
}

// One input's tensor from the .npy at `path`, checked and converted as InferenceModel converts it.
export function inputTensor(path, input, metadata, scaleText, modelPath) {
  const images = readNpy(path);
  const { shape, single } = batchShape(images, input, path);
  let ids = null; // the Embedding table the input feeds, where the model's metadata says
  if (metadata["onnxtrain.token_ids"] !== undefined) ids = JSON.parse(metadata["onnxtrain.token_ids"])[input.name] ?? null;
  let data = images.data;
  const type = input.type;
  if (type === "float32" && images.descr[1] === "f") {
    const given = data;
    data = given instanceof Float32Array ? given : Float32Array.from(given); // float64 beyond float32's range: inf
    checkFinite(data, (i) => given[i], shape, path, null); // before the ids: a NaN is no bad id, as in Python
  }
  if (ids !== null) checkTokenIds(data, shape, ids, path);
  if (type === "int64" || type === "int32") {
    data = integerData(data, shape, type, path);
  } else if (type !== "float32") {
    throw new Error(`${modelPath}: input '${input.name}' has type ${type}; this example feeds float32, int64 and int32 inputs`);
  } else if (images.descr[1] === "f" || ids !== null) {
    data = data instanceof Float32Array ? data : Float32Array.from(data, Number); // token ids: as they are
  } else {
    const text = scaleText ?? metadata.input_scale;
    if (text === undefined) {
      const kind = data.constructor.name.replace("Array", "").toLowerCase();
      throw new Error(`${kind} pixels need --input-scale: ${modelPath} has no input_scale metadata (not exported by onnxtrain?)`);
    }
    const scale = Number(text);
    if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`the input scale must be a positive number, got ${text}`);
    const pixels = data;
    checkPixels(pixels, images.descr, scale, shape, path);
    data = scalePixels(pixels, scale);
    checkFinite(data, (i) => Number(pixels[i]), shape, path, scale); // a huge --input-scale overflows
  }
  return { name: input.name, type, data, shape, single, path };
}

// The number of examples, the same in every input (a file of one example, without the batch axis, counts as 1).
export function exampleCount(inputs) {
  const count = inputs[0].shape[0];
  if (inputs.some((i) => i.shape[0] !== count || i.single !== inputs[0].single)) {
    const each = inputs.map((i) => `${i.path}: ${i.single ? "one example" : i.shape[0]} (${i.name})`).join(", ");
    throw new Error(`predict.mjs expects as many examples in every input file. Received: ${each}`);
  }
  return count;
}

// The feeds of examples [start, start + n) for session.run: one tensor per input, int64 ones of BigInt64Array.
export function batchFeeds(inputs, start, n) {
  const feeds = {};
  for (const { name, type, data, shape } of inputs) {
    const size = shape.slice(1).reduce((a, b) => a * b, 1);
    feeds[name] = new ort.Tensor(type, data.subarray(start * size, (start + n) * size), [n, ...shape.slice(1)]);
  }
  return feeds;
}

// The batch shape of `images` for the model's input: its own shape for a batch of examples of the per-example
// shape the input takes (its dims after the batch; a named dim takes any size), or [1, ...shape] for one example
// of that shape (`single`), as InferenceModel takes one.
function batchShape(images, input, path) {
  const expected = input.shape.slice(1);
  const fitsExample = (given) =>
    given.length === expected.length && expected.every((d, k) => typeof d !== "number" || d < 0 || d === given[k]);
  if (fitsExample(images.shape)) return { shape: [1, ...images.shape], single: true };
  if (images.shape.length === 0 || images.shape[0] === 0 || !fitsExample(images.shape.slice(1))) {
    const shown = exampleDims(input);
    throw new Error(
      `${path} expects a batch of examples of shape [${shown}] for input '${input.name}' of the model ` +
        `(shape [N, ${shown}]). Received: shape [${images.shape.join(", ")}]`,
    );
  }
  return { shape: images.shape, single: false };
}

// Refuse the first value of the float32 `data` that is not finite, as onnxtrain's InferenceModel refuses it
// (onnxtrain/arrays.py refuse_non_finite): NaN and infinities, or a finite value as given (`givenAt(i)`: a float64,
// or integer pixels that `scale` takes beyond float32's range). ONNX Runtime would run on them and give NaN probabilities.
function checkFinite(data, givenAt, shape, path, scale) {
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad < 0) return;
  const value = givenAt(bad);
  const where = `${path}[${position(bad, shape)}]=${pythonRepr(value)}`;
  if (Number.isFinite(value)) {
    const scaled = scale !== null && scale !== 1 ? ` times input_scale=${scale}` : "";
    throw new Error(
      `${path} expects values within float32's range (|x| <= 3.4e38), which the model computes in. ` +
        `Received: ${where}${scaled}`,
    );
  }
  throw new Error(`${path} expects finite values. Received: ${where}`);
}

// onnxtrain's rules for integer pixels (onnxtrain/arrays.py check_pixel_range, warn_of_raw_pixels): a model of
// input_scale 1/255 (trained on 8-bit pixels) refuses integers outside [0, 255], and uint8 into a model of
// input_scale 1 (trained on floats) is read raw, with a warning on stderr.
function checkPixels(pixels, descr, scale, shape, path) {
  if (descr === "|u1") {
    if (scale === 1) {
      console.warn(
        `warning: ${path} is uint8 (pixels 0-255) and the model's input_scale is 1, so the model reads the raw ` +
          "values (0-255). If it was trained on values in [0, 1], pass --input-scale 0.00392156862745098 (1/255).",
      );
    }
    return;
  }
  if (Math.round(1 / scale) !== 255) return;
  const bad = pixels.findIndex((v) => v < 0 || v > 255);
  if (bad < 0) return;
  const fix = descr.endsWith("u2")
    ? "16-bit pixels need 8 bits first: save x >> 8 (uint8), or float32 values x / 65535"
    : "Bring them to [0, 255] first (16-bit pixels: x >> 8), or save float32 values, which are used as they are";
  throw new Error(
    `${path} expects integer pixels in [0, 255]: the model's input_scale is 1/255 (it divides integer inputs by ` +
      `255, as it was trained on 8-bit pixels). Received: ${path}[${position(bad, shape)}]=${pixels[bad]}. ${fix}.`,
  );
}

// onnxtrain's rule (onnxtrain/arrays.py scale_integers): 1/n for a whole n divides by n, else multiply, in float32.
function scalePixels(pixels, scale) {
  const n = Math.round(1 / scale);
  if (2 ** -25 < scale && scale < 1 && n > 1 && n <= 2 ** 24 && (scale === 1 / n || scale === Math.fround(1 / n))) {
    return Float32Array.from(pixels, (v) => Number(v) / n); // one double division, rounded once: float32's own quotient
  }
  const factor = Math.fround(scale);
  return Float32Array.from(pixels, (v) => Number(v) * factor);
}

// Ids an Embedding reads: whole numbers in [0, input_dim), checked before ONNX Runtime sees them (its Gather
// fails on an id past the table with an opaque error, and reads row input_dim - k for -k).
function checkTokenIds(values, shape, ids, path) {
  const high = ids.input_dim - 1;
  let first = -1;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const bad = typeof v === "bigint" ? v < 0n || v > BigInt(high) : !(Number.isInteger(v) && v >= 0 && v <= high);
    if (bad) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return;
  const others = count > 1 ? ` (${count} invalid ids in all)` : "";
  throw new Error(
    `${path} expects integer token ids in [0, ${high}] for Embedding layer '${ids.layer}' (input_dim=${ids.input_dim}). ` +
      `Received: ${path}[${position(first, shape)}]=${values[first]}${others}`,
  );
}

// An integer input's tensor data: the values as its type (int64: BigInt64Array, int32: Int32Array), refusing any
// that would change (fractional, or outside the type's range), as onnxtrain's InferenceModel casts them.
function integerData(values, shape, type, path) {
  if (type === "int64" && values instanceof BigInt64Array) return values;
  if (type === "int32" && values instanceof Int32Array) return values;
  const [low, high] = type === "int64" ? [-(2n ** 63n), 2n ** 63n - 1n] : [-(2n ** 31n), 2n ** 31n - 1n];
  const out = type === "int64" ? new BigInt64Array(values.length) : new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const whole = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : null;
    if (whole === null || whole < low || whole > high) {
      throw new Error(
        `${path} expects whole numbers in [${low}, ${high}] for the model's ${type} input (token ids). ` +
          `Received: ${path}[${position(i, shape)}]=${v}`,
      );
    }
    out[i] = type === "int64" ? whole : Number(whole);
  }
  return out;
}

// "image_feats [N, 8] float32, meta [N, 4] float32": the model's inputs, for messages.
const describeInputs = (inputs) => inputs.map((i) => `${i.name} [N, ${exampleDims(i)}] ${i.type}`).join(", ");

// "28, 28, 1": an input's dims after the batch, N for a named one.
const exampleDims = (input) => input.shape.slice(1).map((d) => (typeof d === "number" && d >= 0 ? d : "N")).join(", ");

// "0, 2" for flat index 2 of shape [n, 3]: the position onnxtrain's messages give (x[0, 2]).
function position(flat, shape) {
  const index = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    index.unshift(flat % shape[k]);
    flat = Math.floor(flat / shape[k]);
  }
  return index.join(", ");
}

// A value as Python's repr writes it in onnxtrain's messages: nan, inf, -inf, 1e+39.
function pythonRepr(value) {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return String(value);
}
