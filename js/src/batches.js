// Datasets as fit and predict read them: x (one array per model input) and labels checked and converted once, by
// the rules step reads a batch by (src/inputs.js), then cut into batches of examples, in order or in the order of
// a seeded shuffle (mulberry32).

import { inputData, labelData, splitInputs } from "./inputs.js";
import { inputArgument, orderHint } from "./named_inputs.js";
import { checkIntegerPixels } from "./pixels.js";

/**
 * @typedef {import("./index.js").BundleMetadata} BundleMetadata
 * @typedef {{data: Float32Array | BigInt64Array | Int32Array, shape: number[]}} Rows examples one after the other
 *   (data) and their shape [examples, ...]
 */

const product = (shape) => shape.reduce((n, d) => n * d, 1);

/**
 * x's inputs checked and converted as step converts them (integer pixels scaled, token ids checked), and how many
 * examples they hold.
 * @param {unknown} x one array for a model of one input, else one per model input
 * @param {BundleMetadata} metadata
 * @param {string} [argument] how messages name x
 * @param {{allowEmpty?: boolean, warn?: (key: string, message: string) => void}} [options] allowEmpty: take x of
 *   no examples (predict); warn: told of pixels a float input takes unscaled (input_scale 1)
 * @returns {{inputs: Rows[], count: number}}
 * @throws {TypeError | RangeError} as step's, naming the argument, the position and the value (integer pixels
 *   outside [0, 255] at input_scale 1/255: src/pixels.js)
 */
export function inputRows(x, metadata, argument = "x", { allowEmpty = false, warn } = {}) {
  const specs = metadata.inputs;
  const split = splitInputs(x, specs, argument);
  const names = specs.map((_, k) => inputArgument(x, specs, k, argument));
  const swapped = orderHint(split, specs, names); // arrays sized for each other's inputs: say so first
  if (swapped !== "") throw new RangeError(`${argument} expects ${swapped}`);
  const inputs = split.map((values, k) => {
    const rows = inputData(values, specs[k], metadata.input_scale, names[k], allowEmpty);
    checkIntegerPixels(values, specs[k], metadata.input_scale, names[k], rows.shape, warn);
    return rows;
  });
  const count = inputs[0].shape[0];
  const other = inputs.findIndex((rows) => rows.shape[0] !== count);
  if (other >= 0) {
    throw new RangeError(
      `${argument} expects as many examples in every input. Received: ${count} and ${inputs[other].shape[0]} (${names[other]})`,
    );
  }
  return { inputs, count };
}

/**
 * x and labels checked and converted whole, before anything runs.
 * @param {unknown} x
 * @param {unknown} labels
 * @param {BundleMetadata} metadata
 * @param {[string, string]} [names] how messages name x and labels
 * @param {(key: string, message: string) => void} [warn] told of pixels a float input reads unscaled
 * @returns {{inputs: Rows[], labels: Rows, count: number}}
 */
export function dataset(x, labels, metadata, [xName, labelsName] = ["x", "labels"], warn = undefined) {
  const { inputs, count } = inputRows(x, metadata, xName, { warn });
  const classes = metadata.output_shape.at(-1);
  return { inputs, labels: labelData(labels, metadata.labels, count, classes, metadata.loss, labelsName), count };
}

/**
 * Examples [start, end) of `rows`: a view when `order` is undefined, else a copy of the examples order[start],
 * ..., order[end - 1].
 * @param {Rows} rows
 * @param {number} start
 * @param {number} end
 * @param {Uint32Array} [order]
 * @returns {Rows}
 */
export function takeRows(rows, start, end, order) {
  const size = product(rows.shape.slice(1));
  const shape = [end - start, ...rows.shape.slice(1)];
  if (order === undefined) return { data: rows.data.subarray(start * size, end * size), shape };
  const source = rows.data;
  const data = new /** @type {any} */ (source.constructor)((end - start) * size);
  for (let i = start; i < end; i++) {
    const from = order[i] * size;
    if (size === 1) data[i - start] = source[from];
    else data.set(source.subarray(from, from + size), (i - start) * size);
  }
  return { data, shape };
}

/**
 * mulberry32 (Tommy Ettinger's public-domain 32-bit generator): small, fast, and the same in every JavaScript
 * engine, so a seeded run repeats anywhere.
 * @param {number} seed a 32-bit unsigned integer
 * @returns {() => number} uniform numbers in [0, 1)
 */
export function mulberry32(seed) {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The order of the examples in epoch `epoch`: a Fisher-Yates shuffle of 0..count-1 driven by mulberry32, seeded
 * from (seed, epoch), so an epoch's order depends on nothing else (initialEpoch resumes a run's orders). Not
 * Python's order: numpy's generator is another.
 * @param {number} count
 * @param {number} seed a 32-bit unsigned integer
 * @param {number} epoch
 * @returns {Uint32Array}
 */
export function shuffledOrder(count, seed, epoch) {
  const random = mulberry32((seed ^ Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  return order;
}
