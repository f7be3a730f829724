// Rows of examples as flat values: nested arrays (number[][], the rows tf.tensor2d takes; an array of typed-array
// rows; an array of tensors, one example each) turned into one input's (or the labels') values, examples one after
// the other, each row checked to hold one example, flat or nested as its shape, before src/inputs.js reads them.
// Tensors (tf.js and onnxruntime) are src/tensors.js'.

import { channelsFirstHint, isTensor, tensorData, tensorShape } from "./tensors.js";

const product = (shape) => shape.reduce((n, d) => n * d, 1);
const sameShape = (a, b) => a.length === b.length && a.every((d, k) => d === b[k]);
const isTypedArray = (value) => ArrayBuffer.isView(value) && !(value instanceof DataView);
const isScalar = (value) => typeof value === "number" || typeof value === "bigint";
const isNested = (value) => Array.isArray(value) || isTypedArray(value) || isTensor(value);

/** An array whose first value is itself a row (an array, a typed array or a tensor): rows of examples. */
export const isRows = (value) => Array.isArray(value) && value.length > 0 && !isScalar(value[0]) && isNested(value[0]);

/** "1st", "2nd", "3rd", "4th", ..., "11th", "21st". */
export function ordinal(n) {
  const teen = Math.floor(n / 10) % 10 === 1;
  const suffix = teen ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

/** How many values `value` holds: a tensor's, a typed array's, an array's nested values; 1 for anything else. */
export function countValues(value) {
  if (isTensor(value)) return product(tensorShape(value));
  if (isTypedArray(value)) return value.length;
  if (Array.isArray(value)) return value.reduce((n, v) => n + countValues(v), 0);
  return 1;
}

/** Append the values of `row` (nested arrays, typed arrays, tensors; anything else as one value) to `out`. */
function flatten(row, out, argument) {
  if (typeof row !== "object" || row === null) {
    out.push(row); // a number, or something src/inputs.js refuses naming its position
    return;
  }
  if (Array.isArray(row)) {
    for (const value of row) flatten(value, out, argument);
    return;
  }
  if (isTensor(row)) row = tensorData(row, argument);
  if (isTypedArray(row)) {
    for (let i = 0; i < row.length; i++) out.push(row[i]);
  } else {
    out.push(row); // an object src/inputs.js refuses naming its position
  }
}

/**
 * Append the values of `value` to `out` where it nests them as `dims` from level `k` on: an array of dims[k] values
 * nested as the levels below, a typed array as the last level, a tensor of the remaining shape at any level, a value
 * at none. False (with `out` part filled) where it nests otherwise. `types` gathers the typed arrays' types the
 * values come from (null for a plain value).
 */
function readAs(value, dims, k, out, argument, types) {
  if (Array.isArray(value)) {
    if (k === dims.length || value.length !== dims[k]) return false;
    if (k < dims.length - 1) return value.every((v) => readAs(v, dims, k + 1, out, argument, types));
    for (const v of value) {
      if (typeof v === "object" && v !== null && isNested(v)) return false;
      out.push(v);
    }
    if (value.length > 0) types.add(null);
    return true;
  }
  if (isTypedArray(value)) {
    if (k !== dims.length - 1 || value.length !== dims[k]) return false;
    for (let i = 0; i < value.length; i++) out.push(value[i]);
    types.add(value.constructor);
    return true;
  }
  if (isTensor(value)) {
    if (!sameShape(tensorShape(value), dims.slice(k))) return false;
    const data = tensorData(value, argument);
    for (let i = 0; i < data.length; i++) out.push(data[i]);
    types.add(isTypedArray(data) ? data.constructor : null);
    return true;
  }
  if (k !== dims.length) return false;
  out.push(value);
  types.add(null);
  return true;
}

/** How `row` nests, read along its first values: [3, 2, 2] for 3 arrays of 2 pairs. */
function nesting(row) {
  if (isTensor(row)) return tensorShape(row);
  if (isTypedArray(row)) return [row.length];
  if (!Array.isArray(row)) return [];
  return [row.length, ...(row.length > 0 ? nesting(row[0]) : [])];
}

/**
 * Rows of examples as the values of the examples one after the other. Each row holds one example's values, flat
 * or nested as the example's shape level by level (an array of [28][28][1] for [28, 28, 1], or a typed array or
 * tensor at any level); a row of another size or nesting is refused naming it. Rows whose values all come from
 * typed arrays (or tensors) of one type give that type, at any level of nesting (Uint8Array pixels stay pixels,
 * scaled and checked as such).
 * @param {unknown[]} rows
 * @param {number[]} example the shape of one example
 * @param {string} argument how messages name the rows
 * @param {(count: number) => string} [hint] more words for a row of another size
 * @returns {ArrayLike<number | bigint>}
 */
export function rowValues(rows, example, argument, hint = () => "") {
  const size = product(example);
  const expected = `rows of ${size} values (one example of shape [${example}] each)`;
  const wrongSize = (i, count) =>
    new RangeError(`${argument} expects ${expected}. Received: ${argument}[${i}] of ${count} values${hint(count)}`);
  const Type = isTypedArray(rows[0]) ? rows[0].constructor : null;
  if (Type !== null && rows.every((row) => row instanceof Type)) {
    const out = new /** @type {any} */ (Type)(rows.length * size);
    rows.forEach((row, i) => {
      if (row.length !== size) throw wrongSize(i, row.length);
      out.set(row, i * size);
    });
    return out;
  }
  const layouts = [example, [size]];
  const wrongNesting = (i, row) => {
    const given = nesting(row);
    const how = layouts.some((s) => sameShape(given, s)) ? "unevenly" : `as [${given}]${channelsFirstHint(given, example)}`;
    return new RangeError(`${argument} expects ${expected}, flat or nested as that shape. Received: ${argument}[${i}] nested ${how}`);
  };
  const out = [];
  const types = new Set();
  rows.forEach((row, i) => {
    if (!isNested(row)) {
      throw new TypeError(`${argument} expects ${expected}. Received: ${argument}[${i}]=${describeRow(row)}`);
    }
    const start = out.length;
    const read = (dims) => {
      out.length = start;
      const rowTypes = new Set();
      if (!readAs(row, dims, 0, out, `${argument}[${i}]`, rowTypes)) return false;
      for (const type of rowTypes) types.add(type);
      return true;
    };
    if (layouts.some(read)) return;
    out.length = start;
    flatten(row, out, `${argument}[${i}]`); // how many values it holds, for the message
    if (out.length - start !== size) throw wrongSize(i, out.length - start);
    throw wrongNesting(i, row);
  });
  const [Typed] = types;
  return types.size === 1 && Typed !== null ? /** @type {any} */ (Typed).from(out) : out;
}

const describeRow = (row) =>
  typeof row === "string" ? JSON.stringify(row) : typeof row === "object" && row !== null ? `a ${row.constructor?.name ?? "object"}` : String(row);
