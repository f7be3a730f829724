// Batches as the train step reads them: the checks and conversions done before ONNX Runtime sees x and labels, by
// the rules of Python's onnxtrain/arrays.py (inputs, token ids) and onnxtrain/losses.py (labels).
//
// A float32 input takes float arrays (Float32Array, Float64Array, plain numbers) as they are; integer typed arrays
// (Uint8Array pixels, Int32Array, ...) are scaled by the model's input scale: divided by n when it is 1/n, else
// multiplied by it in float32. An input an Embedding reads (bundle.json inputs[].token_ids) holds token ids: never
// scaled, whole numbers in [0, input_dim) only. An int64 / int32 input takes whole numbers, never scaled.

import { imageDataHint, isImageData, rgbaMismatch } from "./images.js";
import { byName, inputArgument, isKeyed } from "./named_inputs.js";
import { countValues, isRows, rowValues } from "./rows.js";
import { isTensor, tensorValues } from "./tensors.js";

const product = (shape) => shape.reduce((n, d) => n * d, 1);

const INTEGER_ARRAYS = [Uint8Array, Uint8ClampedArray, Int8Array, Int16Array, Int32Array, Uint16Array, Uint32Array];
const BIGINT_ARRAYS = [BigInt64Array, BigUint64Array];
const isTypedArray = (value) => ArrayBuffer.isView(value) && !(value instanceof DataView);
const isScalar = (value) => typeof value === "number" || typeof value === "bigint";

/**
 * `value` as a message shows it: strings quoted (so "0.1" is not read as 0.1), bigints with their n, arrays and
 * objects by type and length.
 * @param {unknown} value
 */
export function describe(value) {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean" || value == null) {
    return String(value);
  }
  if (isTypedArray(value)) return `a ${value.constructor.name} of ${value.length} values`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "function") return "a function";
  const name = value?.constructor?.name ?? "object";
  return `${/^[AEIOU]/i.test(name) ? "an" : "a"} ${name}`;
}

/** "0, 2" for flat index 2 of shape [n, 3]: the position Python's messages give (x[0, 2]). */
export function position(flat, shape) {
  const index = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    index.unshift(flat % shape[k]);
    flat = Math.floor(flat / shape[k]);
  }
  return index.join(", ");
}

/** An object with a length that is not an array or typed array ({length: 2, 0: 1, 1: 2}, a NodeList of values). */
const isArrayLike = (value) =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) &&
  Number.isSafeInteger(value.length) && value.length >= 0;

/** A plain copy of an array-like object; anything else as it is. */
const plain = (value) => (isArrayLike(value) ? Array.from(value) : value);

/**
 * One input's values as src/inputs.js reads them: a tensor's (tf.js or ort, its shape checked), rows flattened (each
 * row one example), anything else as it is.
 * @param {unknown} value
 * @param {{name: string, shape: (number | null)[]}} spec
 * @param {string} argument
 */
function oneInput(value, spec, argument) {
  const example = exampleShape(spec);
  if (isTensor(value)) return tensorValues(/** @type {any} */ (value), example, argument);
  if (isRows(value)) return rowValues(/** @type {unknown[]} */ (value), example, argument);
  return /** @type {ArrayLike<number | bigint>} */ (plain(value));
}

/**
 * One array of values per model input. A model of one input takes a typed array or an array of numbers (its
 * values, examples one after the other), rows of examples (number[][], or typed-array rows; nested as the input's
 * shape or flat), a tensor (a tf.Tensor or an ort.Tensor), or a list of one of them; a model of several inputs
 * takes a list of one per input, or them by input name ({feats, meta}, or a Map). Array-like objects are read as
 * arrays.
 * @param {unknown} x
 * @param {{name: string, shape: (number | null)[]}[]} inputs the bundle's inputs
 * @param {string} [argument] how messages name x
 * @returns {ArrayLike<number | bigint>[]}
 */
export function splitInputs(x, inputs, argument = "x") {
  if (isKeyed(x)) {
    const values = byName(/** @type {any} */ (x), inputs, argument);
    return values.map((v, k) => oneInput(plain(v), inputs[k], inputArgument(x, inputs, k, argument)));
  }
  x = plain(x);
  const one = inputs.length === 1;
  const names = inputs.map((i) => i.name).join(", ");
  const expected = one
    ? `a typed array or an array of numbers, rows of examples (number[][]) or a tensor (input ${names})`
    : `an array of ${inputs.length} arrays or tensors, one per model input (${names})`;
  const image = isImageData(x) ? x : Array.isArray(x) && isImageData(x[0]) ? x[0] : null;
  if (image !== null) throw new TypeError(imageDataHint(image, exampleShape(inputs[0]), argument));
  if (isTypedArray(x) || isTensor(x)) {
    if (one) return [oneInput(x, inputs[0], argument)];
    throw new TypeError(`${argument} expects ${expected}. Received: ${describe(x)}`);
  }
  if (!Array.isArray(x)) throw new TypeError(`${argument} expects ${expected}. Received: ${describe(x)}`);
  if (x.length === 0) {
    if (one) return [x]; // refused by inputData unless empty is allowed (predict)
    throw new RangeError(`${argument} expects ${expected}. Received: an empty array`);
  }
  // An array of numbers is one input's values; an array of arrays holds one per input, or one model input's rows.
  if (isScalar(x[0]) || x.every(isScalar)) {
    if (one) return [x];
    throw new TypeError(`${argument} expects ${expected}. Received: an array of ${x.length} numbers`);
  }
  const bad = x.findIndex((v) => !isTypedArray(v) && !Array.isArray(v) && !isArrayLike(v) && !isTensor(v));
  if (bad >= 0) {
    if (isImageData(x[bad]) && !one) throw new TypeError(imageDataHint(x[bad], exampleShape(inputs[bad]), `${argument}[${bad}]`));
    throw new TypeError(`${argument} expects ${expected}. Received: ${argument}[${bad}]=${describe(x[bad])}`);
  }
  if (one) {
    // [values] (a list of the one input, as a model of several takes) or rows of examples; one array is the
    // input's values, or its rows when its first element holds an example, else one example nested as its shape
    // (both readings give the same values where they could be confused)
    const size = product(exampleShape(inputs[0]));
    const list = x.length === 1 && (!isRows(x[0]) || countValues(x[0][0]) === size);
    return [list ? oneInput(x[0], inputs[0], argument) : rowValues(x.map(plain), exampleShape(inputs[0]), argument)];
  }
  if (x.length !== inputs.length) {
    throw new RangeError(`${argument} expects ${expected}. Received: an array of ${x.length} arrays`);
  }
  return x.map((values, k) => oneInput(plain(values), inputs[k], `${argument}[${k}]`));
}

const exampleShape = (spec) => /** @type {number[]} */ (spec.shape.slice(1));

/**
 * The data of one input's tensor and its shape, checked and converted (see the module's rule).
 * @param {ArrayLike<number | bigint>} values
 * @param {{name: string, dtype: string, shape: (number | null)[], token_ids?: {input_dim: number, layer: string} | null}} spec
 * @param {number} inputScale
 * @param {string} argument how messages name `values`: "x", or "x[1]" for a model of several inputs
 * @param {boolean} [allowEmpty] take no examples (predict's empty result) instead of refusing them
 * @returns {{data: Float32Array | BigInt64Array | Int32Array, shape: number[]}}
 */
export function inputData(values, spec, inputScale, argument, allowEmpty = false) {
  const example = spec.shape.slice(1);
  const size = product(example);
  const rgba = spec.dtype === "float32" && (spec.token_ids ?? null) === null ? rgbaMismatch(values, example, argument, spec.name) : "";
  if (rgba !== "") throw new RangeError(rgba);
  if ((values.length === 0 && !allowEmpty) || values.length % size !== 0) {
    throw new RangeError(
      `${argument} expects a multiple of ${size} values: one or more examples of shape [${example}] for input ` +
        `'${spec.name}' (shape [N, ${example}]). Received: ${values.length} values`,
    );
  }
  const shape = [values.length / size, ...example];
  checkElements(values, argument, shape, spec.dtype !== "float32");
  const ids = spec.token_ids ?? null;
  if (ids !== null) checkTokenIds(values, ids, argument, shape); // before any conversion: 1.0000001 is not 1
  let data;
  if (spec.dtype === "int64" || spec.dtype === "int32") {
    data = integerData(values, spec, argument, shape);
  } else if (spec.dtype === "float32") {
    data = ids !== null ? Float32Array.from(values, Number) : floatData(values, inputScale);
    checkFinite(data, values, inputScale, argument, shape);
  } else {
    throw new TypeError(`input '${spec.name}' has dtype ${spec.dtype}; this version reads float32, int64 and int32 inputs`);
  }
  return { data, shape };
}

/** Refuse a plain array holding anything but numbers (and bigints, for an integer input). */
function checkElements(values, argument, shape, bigints) {
  if (isTypedArray(values)) return;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" && !(bigints && typeof v === "bigint")) {
      throw new TypeError(
        `${argument} expects ${bigints ? "numbers or bigints" : "numbers"}. ` +
          `Received: ${argument}[${position(i, shape)}]=${describe(v)}`,
      );
    }
  }
}

/**
 * Refuse NaN and infinities, and values that float32 (the model's arithmetic) cannot hold: Python's
 * onnxtrain.arrays rule and messages. One pass over the converted data, usually finding nothing.
 */
function checkFinite(data, values, inputScale, argument, shape) {
  let i = 0;
  while (i < data.length && Number.isFinite(data[i])) i++;
  if (i === data.length) return;
  const given = values[i];
  const where = `${argument}[${position(i, shape)}]=${describe(given)}`;
  if (Number.isFinite(Number(given))) {
    const integers = !(values instanceof Float32Array || values instanceof Float64Array || Array.isArray(values));
    const scaled = integers && inputScale !== 1 ? ` times input_scale=${inputScale}` : "";
    throw new RangeError(
      `${argument} expects values within float32's range (|x| <= 3.4e38), which the model computes in. ` +
        `Received: ${where}${scaled}`,
    );
  }
  throw new RangeError(`${argument} expects finite values. Received: ${where}`);
}

/** Float values as they are; integer arrays scaled as Python's arrays.scale_integers scales them. */
function floatData(values, inputScale) {
  if (values instanceof Float32Array) return values;
  const integers = INTEGER_ARRAYS.some((type) => values instanceof type) || BIGINT_ARRAYS.some((type) => values instanceof type);
  const out = Float32Array.from(values, Number);
  if (!integers || inputScale === 1) return out;
  const divisor = scaleDivisor(inputScale);
  const factor = Math.fround(inputScale);
  // float64 arithmetic rounded to float32 is float32 arithmetic for one division or product of float32 values
  for (let i = 0; i < out.length; i++) out[i] = divisor !== null ? out[i] / divisor : out[i] * factor;
  return out;
}

/**
 * n when `scale` is 1/n for a whole n > 1 (as Python or float32 computes 1/n), else null: onnxtrain.arrays.scale_divisor.
 * @param {number} scale
 */
export function scaleDivisor(scale) {
  if (!(2 ** -25 < scale && scale < 1)) return null;
  const n = Math.round(1 / scale);
  if (!(1 < n && n <= 2 ** 24)) return null;
  return scale === 1 / n || scale === Math.fround(1 / n) ? n : null;
}

/** An integer input's data: whole numbers within its dtype, as a BigInt64Array (int64) or Int32Array (int32). */
function integerData(values, spec, argument, shape) {
  const int64 = spec.dtype === "int64";
  if (int64 ? values instanceof BigInt64Array : values instanceof Int32Array) return values;
  const [low, high] = int64 ? [-(2n ** 63n), 2n ** 63n - 1n] : [-(2n ** 31n), 2n ** 31n - 1n];
  const out = int64 ? new BigInt64Array(values.length) : new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const whole = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : null;
    if (whole === null || whole < low || whole > high) {
      throw new RangeError(
        `${argument} expects whole numbers in [${low}, ${high}] for the model's ${spec.dtype} input ` +
          `'${spec.name}'. Received: ${argument}[${position(i, shape)}]=${describe(v)}`,
      );
    }
    out[i] = int64 ? whole : Number(whole);
  }
  return out;
}

/** Refuse ids that are not whole numbers in [0, input_dim): ONNX Gather reads row input_dim - k for -k. */
function checkTokenIds(values, ids, argument, shape) {
  const high = ids.input_dim - 1;
  const bad = (v) => (typeof v === "bigint" ? v < 0n || v > BigInt(high) : !(Number.isInteger(v) && v >= 0 && v <= high));
  let first = -1;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (bad(values[i])) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return;
  const others = count > 1 ? ` (${count} invalid ids in all)` : "";
  throw new RangeError(
    `${argument} expects integer token ids in [0, ${high}] for Embedding layer '${ids.layer}' ` +
      `(input_dim=${ids.input_dim}). Received: ${argument}[${position(first, shape)}]=${describe(values[first])}${others}`,
  );
}

// The losses whose float targets are probabilities (Python's check_unit_interval): refused outside [0, 1].
const UNIT_INTERVAL_LOSSES = new Set(["binary_crossentropy", "categorical_crossentropy"]);

/**
 * The labels tensor's data: class indices (int64 labels) whole and in [0, classes), or finite float targets (in
 * [0, 1] for the cross-entropies of probabilities).
 * @param {unknown} labels
 * @param {{dtype: string, shape: (number | null)[]}} spec bundle.json's labels
 * @param {number} batch examples in x
 * @param {number} classes the last layer's units
 * @param {string} loss the loss's name, for messages (Python's say `y for loss 'name' expects ...`)
 * @param {string} [argument] how messages name the labels
 * @returns {{data: BigInt64Array | Float32Array, shape: number[]}}
 */
export function labelData(labels, spec, batch, classes, loss, argument = "labels") {
  const shape = [batch, ...spec.shape.slice(1)];
  const classIndices = spec.dtype === "int64";
  const expected = classIndices ? "class indices" : "float targets";
  const example = /** @type {number[]} */ (spec.shape.slice(1));
  const size = product(example);
  // one-hot rows given for class indices: say so, and what to pass
  const oneHot = (count) =>
    classIndices && classes > 1 && count === size * classes
      ? `; ${count} values per example look like one-hot rows of ${classes} classes: loss '${loss}' takes class ` +
        "indices, so pass the argmax of each row (for a tf.Tensor: labels.argMax(-1))"
      : "";
  labels = plain(labels);
  if (isTensor(labels)) labels = tensorValues(/** @type {any} */ (labels), example, argument, oneHot, true);
  else if (isRows(labels)) labels = rowValues(/** @type {unknown[]} */ (labels), example, argument, oneHot);
  if (!isTypedArray(labels) && !Array.isArray(labels)) {
    throw new TypeError(
      `${argument} expects ${expected}: a typed array or an array of numbers, rows of them or a tensor. Received: ${describe(labels)}`,
    );
  }
  if (labels.length !== product(shape)) {
    const perExample = batch > 0 && labels.length % batch === 0 ? labels.length / batch : 0;
    const hint = oneHot(perExample) && ` (${batch} examples x ${perExample})${oneHot(perExample)}`;
    throw new RangeError(`${argument} expects ${product(shape)} values (shape [${shape}]); received ${labels.length}${hint}`);
  }
  if (!classIndices) {
    // integers are targets too (a BigInt64Array, an int64 tensor), as Python casts an int64 y to float32
    for (let i = 0; i < labels.length; i++) {
      const v = typeof labels[i] === "bigint" ? Number(labels[i]) : labels[i];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        const [Kind, what] = typeof v === "number" ? [RangeError, "finite float targets"] : [TypeError, "numbers"];
        throw new Kind(`${argument} expects ${what}. Received: ${argument}[${position(i, shape)}]=${describe(v)}`);
      }
    }
    if (UNIT_INTERVAL_LOSSES.has(loss)) {
      const i = Array.prototype.findIndex.call(labels, (v) => v < 0 || v > 1);
      if (i >= 0) {
        throw new RangeError(
          `${argument} for loss '${loss}' expects targets in [0, 1]. Received: ${argument}.flat[${i}]=${describe(labels[i])}`,
        );
      }
    }
    return { data: labels instanceof Float32Array ? labels : Float32Array.from(labels, Number), shape };
  }
  const data = new BigInt64Array(labels.length);
  let outside = -1;
  let count = 0;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (typeof v !== "number" && typeof v !== "bigint") {
      throw new TypeError(`${argument} for loss '${loss}' expects class indices (numbers). Received: ${argument}[${i}]=${describe(v)}`);
    }
    if (typeof v === "number" && !Number.isInteger(v)) {
      throw new RangeError(`${argument} for loss '${loss}' expects integral class indices. Received: ${argument}[${i}]=${describe(v)}`);
    }
    const index = typeof v === "bigint" ? v : BigInt(v);
    if (index < 0n || index >= BigInt(classes)) {
      if (outside < 0) outside = i;
      count++;
    }
    data[i] = index;
  }
  if (outside >= 0) {
    throw new RangeError(
      `${argument} for loss '${loss}' expects class indices in [0, ${classes - 1}] (the last layer has ${classes} units). ` +
        `Received: ${argument}[${outside}]=${describe(labels[outside])} (${count} labels out of range)`,
    );
  }
  return { data, shape };
}
