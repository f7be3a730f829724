// Rows and tensors as flat values: nested arrays (number[][], the rows tf.tensor2d takes; an array of typed-array
// rows) and tensor-like objects (a tf.Tensor: dataSync() and shape) turned into one input's (or the labels') values,
// examples one after the other, each example's size checked against the model's before src/inputs.js reads them.

/** @typedef {{dataSync(): ArrayLike<number | bigint>, shape: number[]}} TensorLike */

const product = (shape) => shape.reduce((n, d) => n * d, 1);
const isTypedArray = (value) => ArrayBuffer.isView(value) && !(value instanceof DataView);
const isScalar = (value) => typeof value === "number" || typeof value === "bigint";

/** A tf.Tensor or anything that has its dataSync() and shape. */
export const isTensorLike = (value) =>
  typeof value === "object" && value !== null && typeof value.dataSync === "function" && Array.isArray(value.shape);

/** An array whose first value is itself a row (an array, a typed array or a tensor): rows of examples. */
export const isRows = (value) =>
  Array.isArray(value) && value.length > 0 && !isScalar(value[0]) &&
  (Array.isArray(value[0]) || isTypedArray(value[0]) || isTensorLike(value[0]));

/** "1st", "2nd", "3rd", "4th", ..., "11th", "21st". */
export function ordinal(n) {
  const teen = Math.floor(n / 10) % 10 === 1;
  const suffix = teen ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

/**
 * The values of a tensor whose shape is [examples, ...] with `example`'s size per example (the model's shape, or
 * its values flat: [N, 784] for [28, 28, 1]).
 * @param {TensorLike} tensor
 * @param {number[]} example the shape of one example
 * @param {string} argument how messages name the tensor
 * @param {(count: number) => string} [hint] more words for a tensor of another example size
 * @returns {ArrayLike<number | bigint>}
 */
export function tensorValues(tensor, example, argument, hint = () => "") {
  const shape = tensor.shape;
  const size = product(example);
  const expected = `a tensor of shape [N, ${example}] (N examples of shape [${example}]${example.length > 1 ? `, or [N, ${size}]` : ""})`;
  if (shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`${argument} expects ${expected}. Received: a tensor of shape [${shape}]`);
  }
  const perExample = product(shape.slice(1));
  if (perExample !== size) {
    throw new RangeError(`${argument} expects ${expected}. Received: a tensor of shape [${shape}]${hint(perExample)}`);
  }
  const data = tensor.dataSync();
  if (data?.length !== product(shape)) {
    throw new RangeError(`${argument} expects dataSync() to give ${product(shape)} values (shape [${shape}]). Received: ${data?.length}`);
  }
  return data;
}

/** How many values `value` holds: a tensor's, a typed array's, an array's nested values; 1 for anything else. */
export function countValues(value) {
  if (isTensorLike(value)) return product(value.shape);
  if (isTypedArray(value)) return value.length;
  if (Array.isArray(value)) return value.reduce((n, v) => n + countValues(v), 0);
  return 1;
}

/** Append the values of `row` (nested arrays, typed arrays, tensors; anything else as one value) to `out`. */
function flatten(row, out) {
  if (isTensorLike(row)) row = row.dataSync();
  if (isTypedArray(row)) {
    for (let i = 0; i < row.length; i++) out.push(row[i]);
  } else if (Array.isArray(row)) {
    for (const value of row) flatten(value, out);
  } else {
    out.push(row); // a number, or something src/inputs.js refuses naming its position
  }
}

/**
 * Rows of examples as the values of the examples one after the other. Each row holds one example's values, nested
 * as the example's shape or flat; a row of another size is refused naming it. Rows that are typed arrays of one
 * type give that type (Uint8Array pixels stay pixels, scaled as such).
 * @param {unknown[]} rows
 * @param {number[]} example the shape of one example
 * @param {string} argument how messages name the rows
 * @param {(count: number) => string} [hint] more words for a row of another size
 * @returns {ArrayLike<number | bigint>}
 */
export function rowValues(rows, example, argument, hint = () => "") {
  const size = product(example);
  const wrongSize = (i, count) =>
    new RangeError(
      `${argument} expects rows of ${size} values (one example of shape [${example}] each). ` +
        `Received: ${argument}[${i}] of ${count} values${hint(count)}`,
    );
  const Type = isTypedArray(rows[0]) ? rows[0].constructor : null;
  if (Type !== null && rows.every((row) => row instanceof Type)) {
    const out = new /** @type {any} */ (Type)(rows.length * size);
    rows.forEach((row, i) => {
      if (row.length !== size) throw wrongSize(i, row.length);
      out.set(row, i * size);
    });
    return out;
  }
  const out = [];
  rows.forEach((row, i) => {
    if (!Array.isArray(row) && !isTypedArray(row) && !isTensorLike(row)) {
      throw new TypeError(
        `${argument} expects rows of ${size} values (one example of shape [${example}] each). Received: ${argument}[${i}]=${describeRow(row)}`,
      );
    }
    const start = out.length;
    flatten(row, out);
    if (out.length - start !== size) throw wrongSize(i, out.length - start);
  });
  return out;
}

const describeRow = (row) =>
  typeof row === "string" ? JSON.stringify(row) : typeof row === "object" && row !== null ? `a ${row.constructor?.name ?? "object"}` : String(row);
