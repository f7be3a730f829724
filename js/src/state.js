// A trainer's state checked before it replaces the trainer's: setState's whole state (every tensor, the step, the
// learning rate) and setWeights' parameters, refused naming the tensor and the value for what a trainer cannot
// continue from (a missing, unknown or resized tensor, a weight that is not finite float32, a step that is not whole).

import { RESTORE } from "./finite.js";
import { describe } from "./inputs.js";

const product = (shape) => shape.reduce((n, d) => n * d, 1);

/**
 * The learning rate, refused unless a finite number >= 0 that float32 (the train step's learning_rate input) holds:
 * 1e40 would be Infinity there and destroy the weights. 0 is kept: steps then leave the weights as they are.
 * @param {unknown} value
 * @param {string} argument how messages name it
 * @returns {number}
 */
export function checkLearningRate(value, argument) {
  if (typeof value !== "number") {
    throw new TypeError(`${argument} expects a finite number >= 0. Received: ${describe(value)} (a ${typeof value})`);
  }
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${argument} expects a finite number >= 0. Received: ${value}`);
  if (!Number.isFinite(Math.fround(value))) {
    throw new RangeError(
      `${argument} expects a number within float32's range (<= 3.4e38), which the train step computes in. Received: ${value}`,
    );
  }
  return value;
}

/**
 * The tensors of `state` (setState's), every one of `shapes` checked and converted: float32 weights, the int64 step
 * (state.step in place of the step tensor's value when given).
 * @param {import("./index.js").TrainerState} state
 * @param {Map<string, number[]>} shapes every tensor the trainer carries, by name
 * @param {string} stepName
 * @returns {Map<string, Float32Array | BigInt64Array>}
 * @throws {TypeError | RangeError | Error} naming the tensor, and what was received and expected
 */
export function stateTensors(state, shapes, stepName) {
  const expected = "a TrainerState {tensors: Map, step?, learningRate?} (getState() or stateFromBytes(bytes))";
  if (typeof state !== "object" || state === null) throw new TypeError(`setState expects ${expected}. Received: ${describe(state)}`);
  if (!(state.tensors instanceof Map)) {
    throw new TypeError(`setState expects ${expected}. Received: state.tensors=${describe(state.tensors)}`);
  }
  const next = new Map();
  for (const [name, shape] of shapes) {
    const data = state.tensors.get(name);
    if (data === undefined) throw new Error(`setState: the state has no tensor ${name}`);
    checkSize("setState", name, data, shape);
    next.set(name, name === stepName ? stepData(data, state.step) : floatData("setState", name, data));
  }
  const unknown = [...state.tensors.keys()].filter((name) => !shapes.has(name));
  if (unknown.length > 0) throw new Error(`setState: unknown tensors ${unknown.join(", ")}`);
  return next;
}

/**
 * The parameters `weights` (setWeights') gives, checked and converted to float32.
 * @param {Map<string, ArrayLike<number>> | Record<string, ArrayLike<number>>} weights
 * @param {string[]} parameters the model's parameter names (getWeights')
 * @param {Map<string, number[]>} shapes
 * @returns {Map<string, Float32Array>}
 */
export function weightTensors(weights, parameters, shapes) {
  const isRecord = typeof weights === "object" && weights !== null && !Array.isArray(weights) && !ArrayBuffer.isView(weights);
  if (!isRecord) {
    throw new TypeError(
      `setWeights expects a Map (or an object) of parameter name -> values, as getWeights() gives. Received: ${describe(weights)}`,
    );
  }
  const entries = weights instanceof Map ? [...weights.entries()] : Object.entries(weights);
  const unknown = entries.map(([name]) => name).filter((name) => !parameters.includes(name));
  if (unknown.length > 0) {
    const carried = unknown.filter((name) => shapes.has(name));
    const hint =
      carried.length > 0
        ? ` (${carried.join(", ")}: optimizer state or the step, which setState sets with the rest of a state)`
        : "";
    throw new Error(
      `setWeights expects the model's parameters (${parameters.slice(0, 4).join(", ")}${parameters.length > 4 ? ", ..." : ""}). ` +
        `Received: ${unknown.join(", ")}${hint}`,
    );
  }
  const next = new Map();
  for (const [name, data] of entries) {
    checkSize("setWeights", name, data, /** @type {number[]} */ (shapes.get(name)));
    next.set(name, floatData("setWeights", name, data));
  }
  return next;
}

/** Refuse what is not a typed array or array of the shape's size. */
function checkSize(method, name, data, shape) {
  if (!ArrayBuffer.isView(data) && !Array.isArray(data)) {
    throw new TypeError(`${method}: ${name} expects a typed array. Received: ${describe(data)}`);
  }
  if (data.length !== product(shape)) {
    throw new Error(`${method}: ${name} expects ${product(shape)} values (shape [${shape}]); received ${data.length}`);
  }
}

/** A weight tensor as float32, refused if a value is not finite (a trainer would never learn again). */
function floatData(method, name, data) {
  const out = Float32Array.from(data, Number);
  const i = out.findIndex((v) => !Number.isFinite(v));
  if (i >= 0) {
    throw new RangeError(
      `${method}: ${name} expects finite values within float32's range. Received: ${name}[${i}]=${describe(data[i])} ` +
        `(a state taken after training diverged: ${RESTORE})`,
    );
  }
  return out;
}

/**
 * The step tensor: `given` (state.step) when defined, else the tensor's value; both refused unless a whole number
 * >= 0 (a corrupt state rarely holds one).
 */
function stepData(data, given) {
  const whole = (v, what) => {
    const n = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
    if (n < 0n) throw new RangeError(`setState expects ${what} to be a whole number >= 0 (updates made so far). Received: ${describe(v)}`);
    return n;
  };
  const step = whole(data[0], "the step tensor");
  return BigInt64Array.of(given === undefined ? step : whole(given, "state.step"));
}
