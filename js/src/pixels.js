// The one rule for integer pixels that a float input reads (Python's onnxtrain/_integer_pixels.py, its wording): at
// input_scale 1/255 (a model trained on 8-bit pixels) integers must lie in [0, 255]; at input_scale 1, images of a
// pixel type (Uint8Array, Uint8ClampedArray, Uint16Array, Int16Array) are read raw, with a warning, unless the model
// scales them itself (bundle.json inputs[].rescales_pixels: a Rescaling(1 / 255) at its start). Token ids and
// int64 / int32 inputs are never checked; Float32Array, Float64Array and plain numbers are used as they are.

import { position, scaleDivisor } from "./inputs.js";

/** The divisor of a model trained on 8-bit pixels (input_scale 1/255): integer inputs must then lie in [0, 255]. */
const PIXEL_DIVISOR = 255;

const INTEGER_ARRAYS = [
  Uint8Array, Uint8ClampedArray, Int8Array, Int16Array, Int32Array, Uint16Array, Uint32Array, BigInt64Array, BigUint64Array,
];

/** "a Uint16Array" (a "you"), "an Int16Array". */
const article = (name) => `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`;

/** What a pixel type holds: its pixels' kind and range, and the divisor that takes them to `unit`. */
const pixelTypes = (values) => {
  if (values instanceof Uint8Array || values instanceof Uint8ClampedArray) {
    return { kind: "pixels", range: "0-255", divisor: 255, unit: "[0, 1]" };
  }
  if (values instanceof Uint16Array) return { kind: "16-bit pixels", range: "0-65535", divisor: 65535, unit: "[0, 1]" };
  if (values instanceof Int16Array) {
    return { kind: "16-bit pixels", range: "-32768 to 32767", divisor: 32768, unit: "[-1, 1]" };
  }
  return null;
};

/**
 * Apply the module's rule to one input's values (an integer typed array, as a typed array, typed rows or a tensor
 * give them) for `spec`: refuse values outside [0, 255] at input_scale 1/255, tell `warn` of raw pixels at 1.
 * @param {ArrayLike<number | bigint>} values
 * @param {{name: string, dtype: string, token_ids?: unknown, rescales_pixels?: boolean}} spec the bundle's input
 * @param {number} inputScale
 * @param {string} argument how messages name `values`
 * @param {number[]} shape the input's shape [examples, ...], for the position of a value
 * @param {(key: string, message: string) => void} [warn] told of raw pixels (the trainer warns once)
 * @throws {RangeError} naming the first value outside [0, 255], its position, and how to bring 16-bit pixels to 8 bits
 */
export function checkIntegerPixels(values, spec, inputScale, argument, shape, warn) {
  if (spec.dtype !== "float32" || (spec.token_ids ?? null) !== null) return;
  if (!INTEGER_ARRAYS.some((type) => values instanceof type)) return;
  checkPixelRange(values, inputScale, argument, shape);
  // a model that scales raw pixels itself (a Rescaling(1 / 255) at its start: bundle.json inputs[].rescales_pixels)
  // is meant to read them, as Python's rescales_raw_pixels finds
  if (warn && inputScale === 1 && spec.rescales_pixels !== true) warnOfRawPixels(values, spec, argument, warn);
}

/**
 * Refuse integer values outside [0, 255] where the input scale is 1/255: dividing 16-bit pixels, negative numbers
 * or 300 by 255 would feed values the model never saw, silently. One pass, none for Uint8Array pixels.
 */
function checkPixelRange(values, inputScale, argument, shape) {
  if (values instanceof Uint8Array || values instanceof Uint8ClampedArray) return;
  if (scaleDivisor(inputScale) !== PIXEL_DIVISOR) return;
  let i = 0;
  while (i < values.length && values[i] >= 0 && values[i] <= PIXEL_DIVISOR) i++;
  if (i === values.length) return;
  const value = values[i];
  const fix =
    values instanceof Uint16Array
      ? `16-bit pixels need 8 bits first: pass Uint8Array.from(${argument}, (v) => v >> 8), or float32 values ` +
        `Float32Array.from(${argument}, (v) => v / 65535)`
      : "Bring them to [0, 255] first (16-bit pixels: v >> 8), or pass float32 values (a Float32Array), which are " +
        "used as they are";
  throw new RangeError(
    `${argument} expects integer pixels in [0, 255]: the model's input_scale is 1/255 (it divides integer inputs by ` +
      `255, as it was trained on 8-bit pixels). Received: ${argument}[${position(i, shape)}]=${value} ` +
      `(${article(values.constructor.name)}). ${fix}.`,
  );
}

/**
 * Pixels (a Uint8Array or Uint8ClampedArray from a canvas, 16-bit Uint16Array or Int16Array images) for a float
 * input of a model whose input scale is 1 are read as they are, seldom what a model trained on [0, 1] wants: tell
 * `warn`. A model with its own Rescaling says so (inputs[].rescales_pixels) and is not warned of; the bundle cannot
 * say that a model was trained on raw values on purpose otherwise; a Float32Array is never warned of.
 */
function warnOfRawPixels(values, spec, argument, warn) {
  const pixels = pixelTypes(values);
  if (pixels === null) return;
  const n = pixels.divisor;
  warn(
    `pixels:${spec.name}`,
    `onnxtrain-js: ${argument} is ${article(values.constructor.name)} (${pixels.kind} ${pixels.range}) for the float input ` +
      `'${spec.name}', and the model's input_scale is 1, so the model reads the raw values (${pixels.range}). If it ` +
      `was trained on values in ${pixels.unit}, scale them: pass Float32Array.from(x, (v) => v / ${n}), or bundle ` +
      `the model with model.input_scale = 1 / ${n} set in Python (integer arrays are then divided by ${n}). If it ` +
      "was trained on raw values, pass a Float32Array to silence this warning (given once per trainer).",
  );
}
