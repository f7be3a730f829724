// A model's inputs by name: x given as {feats, meta} (or a Map), as Keras and Python's fit take a dict keyed by input
// name, read in the model's order; how messages name each input's values (x.feats, or x[0] for a list); and the
// words for inputs given in another order than the model's (each array sized for another input).

import { isImageData } from "./images.js";
import { describe } from "./inputs.js";
import { isTensor } from "./tensors.js";

/**
 * @typedef {{name: string, shape: (number | null)[]}} InputSpec
 */

const product = (shape) => shape.reduce((n, d) => n * d, 1);

/** A plain object ({feats, meta}) or a Map: values keyed by input name (not an array, typed array or tensor). */
export function isKeyed(x) {
  if (x instanceof Map) return true;
  if (typeof x !== "object" || x === null || Array.isArray(x) || ArrayBuffer.isView(x)) return false;
  const proto = Object.getPrototypeOf(x);
  if (proto !== Object.prototype && proto !== null) return false;
  // a tensor, an ImageData or an array-like object ({length, 0: ...}) is not keyed by name
  return !isTensor(x) && !isImageData(x) && !Number.isSafeInteger(/** @type {any} */ (x).length);
}

/**
 * The values of x keyed by input name, in the model's order.
 * @param {Map<string, unknown> | Record<string, unknown>} x
 * @param {InputSpec[]} inputs
 * @param {string} argument how messages name x
 * @returns {unknown[]}
 * @throws {TypeError} a name the model has no input of, or an input without values, naming both lists
 */
export function byName(x, inputs, argument) {
  const entries = x instanceof Map ? [...x.entries()] : Object.entries(x);
  const names = inputs.map((i) => i.name);
  const unknown = entries.map(([key]) => key).filter((key) => !names.includes(key));
  const missing = names.filter((name) => !entries.some(([key]) => key === name));
  if (unknown.length > 0 || missing.length > 0) {
    const found = entries.length === 0 ? "no names" : entries.map(([key]) => describe(String(key))).join(", ");
    throw new TypeError(
      `${argument} expects the model's inputs by name: ${names.map((n) => describe(n)).join(", ")} ` +
        `(or an array in that order). Received: ${found}` +
        (missing.length > 0 ? `; missing ${missing.map((n) => describe(n)).join(", ")}` : "") +
        (unknown.length > 0 ? `; the model has no input ${unknown.map((n) => describe(String(n))).join(", ")}` : ""),
    );
  }
  const values = new Map(entries);
  return names.map((name) => values.get(name));
}

/** How messages name input k's values: x (one input), x.feats (x keyed by name), or x[1]. */
export function inputArgument(x, inputs, k, argument) {
  if (isKeyed(x)) return /^[A-Za-z_$][\w$]*$/.test(inputs[k].name) ? `${argument}.${inputs[k].name}` : `${argument}[${JSON.stringify(inputs[k].name)}]`;
  return inputs.length === 1 ? argument : `${argument}[${k}]`;
}

/**
 * Words for inputs of a model of several that hold values for other inputs (swapped, or in another order): each
 * input's size per example, what each array holds and the order they fit; "" where no other order fits.
 * @param {ArrayLike<unknown>[]} values one array per model input, in the order given
 * @param {InputSpec[]} inputs
 * @param {string[]} names how messages name each array
 */
export function orderHint(values, inputs, names) {
  if (inputs.length < 2) return "";
  const sizes = inputs.map((i) => product(/** @type {number[]} */ (i.shape.slice(1))));
  const fits = (k, j) => values[k].length % sizes[j] === 0;
  const counts = (order) => order.map((j, k) => values[k].length / sizes[j]);
  const agree = (order) => order.every((j, k) => fits(k, j)) && new Set(counts(order)).size === 1;
  const inOrder = inputs.map((_, k) => k);
  if (agree(inOrder)) return "";
  const other = permutations(inOrder).find(
    (order) => order.some((j, k) => j !== k) && agree(order) && values.every((v) => v.length > 0),
  );
  // no other order fits: src/inputs.js names an input of no whole examples, src/batches.js differing counts
  if (other === undefined) return "";
  const each = inputs.map((spec, k) => `'${spec.name}' takes ${sizes[k]} values per example`).join(", ");
  const held = values
    .map((v, k) => {
      const n = v.length / sizes[k];
      const examples = fits(k, k) ? `${n} example${n === 1 ? "" : "s"} of '${inputs[k].name}'` : `no whole examples of '${inputs[k].name}'`;
      return `${names[k]} holds ${v.length} values (${examples})`;
    })
    .join(", ");
  const swapped =
    `; they fit the order ${other.map((j) => `'${inputs[j].name}'`).join(", ")} (${counts(other)[0]} examples ` +
    "each): were the inputs given in another order?";
  const order = inputs.map((i) => i.name).join(", ");
  return `as many examples in every input: ${each}. Received: ${held}${swapped} Give them in the model's order (${order}) or by name: {${order}}`;
}

/** Every order of `items` (models have few inputs; at most 6 are tried: 720 orders). */
function permutations(items) {
  if (items.length > 6) return [];
  if (items.length <= 1) return [items];
  return items.flatMap((item, k) => permutations([...items.slice(0, k), ...items.slice(k + 1)]).map((rest) => [item, ...rest]));
}
