// fit's callbacks: objects of hooks (onEpochEnd, ...), plain or instances of classes that keep their own state
// (TF.js' and Keras' callbacks are classes with fields), checked before fit starts and called in order, awaited.

import { describe } from "./inputs.js";

/** The hooks fit calls, TF.js' names; onYield(epoch, batch, logs) when fit yields to the event loop (yieldEvery). */
export const HOOKS = ["onTrainBegin", "onEpochBegin", "onBatchBegin", "onBatchEnd", "onEpochEnd", "onTrainEnd", "onYield"];

/** A name a hook would have: "on" and a capital (onEpochEnd, onEpochEnds, onTrainBatchEnd), not "one" or "only". */
const looksLikeHook = (name) => /^on[A-Z]/.test(name);

/**
 * The names of `object`'s own properties and its prototypes' (a class's methods), up to Object.prototype, that
 * look like hooks.
 * @param {object} object
 * @returns {string[]}
 */
function hookLikeNames(object) {
  const names = new Set();
  for (let o = object; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) if (looksLikeHook(name)) names.add(name);
  }
  return [...names];
}

/**
 * The callbacks, checked: an object or an array of them. Any object is taken, a class instance with state too;
 * only its properties and methods named like hooks (on + a capital) are checked: each must be one of HOOKS and a
 * function, as a misspelled hook (onEpochEnds) would otherwise never be called.
 * @param {unknown} callbacks fit's `callbacks` option
 * @returns {object[]}
 * @throws {TypeError} naming the callback and the property
 */
export function callbackList(callbacks) {
  if (callbacks === undefined) return [];
  const list = Array.isArray(callbacks) ? callbacks : [callbacks];
  list.forEach((callback, k) => {
    const where = Array.isArray(callbacks) ? `callbacks[${k}]` : "callbacks";
    if (typeof callback !== "object" || callback === null) {
      throw new TypeError(`fit expects ${where} to be an object with hooks (${HOOKS.join(", ")}). Received: ${describe(callback)}`);
    }
    for (const name of hookLikeNames(callback)) {
      if (!HOOKS.includes(name)) {
        throw new TypeError(
          `fit expects the hooks of ${where} to be among ${HOOKS.join(", ")} (other fields are the callback's ` +
            `own, but one named like a hook is most likely a misspelled hook). Received: ${where}.${name}`,
        );
      }
      if (typeof callback[name] !== "function") {
        throw new TypeError(`fit expects ${where}.${name} to be a function. Received: ${describe(callback[name])}`);
      }
    }
  });
  return list;
}

/**
 * TF.js' callback classes learn the model and fit's parameters through setModel and setParams before training:
 * call them where a callback has them (a tf.Callback subclass, or a class written for TF.js).
 * @param {object[]} list
 * @param {import("./trainer.js").Trainer} trainer what `this.model` becomes: its stopTraining stops fit
 * @param {Record<string, unknown>} params TF.js' params: epochs, initialEpoch, samples, steps, batchSize, ...
 */
export async function introduce(list, trainer, params) {
  for (const callback of list) {
    if (typeof callback.setModel === "function") await callback.setModel(trainer);
    if (typeof callback.setParams === "function") await callback.setParams(params);
  }
}

/**
 * A function that calls hook `name` of each callback in order (as a method: `this` is the callback), awaited, and
 * says whether fit should stop: a hook returned false, or one set trainer.stopTraining.
 * @param {object[]} list
 * @param {import("./trainer.js").Trainer} trainer
 * @returns {(name: string, ...args: unknown[]) => Promise<boolean>}
 */
export function hookCaller(list, trainer) {
  return async (name, ...args) => {
    for (const callback of list) {
      if (typeof callback[name] === "function" && (await callback[name](...args)) === false) trainer.stopTraining = true;
    }
    return trainer.stopTraining === true;
  };
}
