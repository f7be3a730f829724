// Trainer.fit: Keras' / TF.js' training loop over typed arrays: epochs of batches (shuffled each epoch from a seed),
// the trainer's queued steps, validation through evaluate, callbacks awaited, and a History-like result.

import { accuracy, positionClasses } from "./accuracy.js";
import { dataset, shuffledOrder, takeRows } from "./batches.js";
import { describe } from "./inputs.js";

/**
 * @typedef {import("./index.js").FitOptions} FitOptions
 * @typedef {import("./index.js").FitLogs} FitLogs
 * @typedef {import("./index.js").History} History
 * @typedef {import("./batches.js").Rows} Rows
 */

const CALLBACKS = ["onTrainBegin", "onEpochBegin", "onBatchBegin", "onBatchEnd", "onEpochEnd", "onTrainEnd"];
const OPTIONS = ["epochs", "batchSize", "shuffle", "seed", "initialEpoch", "validationData", "callbacks"];

/** The loss was NaN or infinite: the step changed nothing, and fit stopped (`history` holds the epochs done). */
export class NonFiniteLossError extends Error {
  /**
   * @param {string} message
   * @param {History} history
   */
  constructor(message, history) {
    super(message);
    this.name = "NonFiniteLossError";
    /** @type {History} the epochs that ended before the loss stopped being finite */
    this.history = history;
  }
}

/** `value` if a whole number >= `least`, else a TypeError or RangeError naming `argument`. */
function wholeNumber(value, argument, least) {
  if (typeof value !== "number") {
    throw new TypeError(`fit expects ${argument} to be a whole number >= ${least}. Received: ${describe(value)} (a ${typeof value})`);
  }
  if (!Number.isSafeInteger(value) || value < least) {
    throw new RangeError(`fit expects ${argument} to be a whole number >= ${least}. Received: ${argument}=${value}`);
  }
  return value;
}

/**
 * The callbacks' hooks, checked: an object of hooks or an array of them, each hook a function.
 * @returns {Record<string, Function>[]}
 */
function callbackList(callbacks) {
  if (callbacks === undefined) return [];
  const list = Array.isArray(callbacks) ? callbacks : [callbacks];
  list.forEach((hooks, k) => {
    const where = Array.isArray(callbacks) ? `callbacks[${k}]` : "callbacks";
    if (typeof hooks !== "object" || hooks === null) {
      throw new TypeError(`fit expects ${where} to be an object of hooks (${CALLBACKS.join(", ")}). Received: ${describe(hooks)}`);
    }
    for (const [name, hook] of Object.entries(hooks)) {
      if (!CALLBACKS.includes(name)) {
        throw new TypeError(`fit expects ${where} to hold only the hooks ${CALLBACKS.join(", ")}. Received: ${where}.${name}`);
      }
      if (typeof hook !== "function") {
        throw new TypeError(`fit expects ${where}.${name} to be a function. Received: ${describe(hook)}`);
      }
    }
  });
  return list;
}

/**
 * fit's options, checked, with Keras' defaults (1 epoch, batches of 32, shuffled).
 * @param {FitOptions} options
 */
function fitOptions(options) {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`fit expects options {${OPTIONS.join(", ")}} as its third argument. Received: ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((name) => !OPTIONS.includes(name));
  if (unknown.length > 0) {
    throw new TypeError(`fit takes the options ${OPTIONS.join(", ")}. Received: ${unknown.join(", ")}`);
  }
  const epochs = wholeNumber(options.epochs ?? 1, "epochs", 1);
  const initialEpoch = wholeNumber(options.initialEpoch ?? 0, "initialEpoch", 0);
  const batchSize = wholeNumber(options.batchSize ?? 32, "batchSize", 1);
  const shuffle = options.shuffle ?? true;
  if (typeof shuffle !== "boolean") throw new TypeError(`fit expects shuffle to be true or false. Received: ${describe(shuffle)}`);
  let seed = options.seed;
  if (seed === undefined) seed = Math.floor(Math.random() * 2 ** 32);
  else if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new RangeError(`fit expects seed to be a whole number in [0, 2**32). Received: ${describe(seed)}`);
  }
  const validation = options.validationData;
  if (validation !== undefined && (!Array.isArray(validation) || validation.length !== 2)) {
    throw new TypeError(`fit expects validationData to be [x, labels]. Received: ${describe(validation)}`);
  }
  return { epochs, initialEpoch, batchSize, shuffle, seed, validation, callbacks: callbackList(options.callbacks) };
}

/** Append an epoch's logs as Python's History.append does: a key first seen later gets NaN for earlier epochs. */
function record(history, epoch, logs) {
  for (const key of Object.keys(logs)) history.history[key] ??= history.epoch.map(() => NaN);
  history.epoch.push(epoch);
  for (const [key, values] of Object.entries(history.history)) values.push(logs[key] ?? NaN);
}

/** One model input's batch, or the list of them, as step takes it. */
const batchOf = (inputs, start, end, order) => {
  const xs = inputs.map((rows) => takeRows(rows, start, end, order).data);
  return xs.length === 1 ? xs[0] : xs;
};

/**
 * Mean loss and accuracy of the current weights over `data`, `batchSize` examples per evaluate call (Python's
 * validation: each batch's mean weighted by its examples).
 * @param {import("./trainer.js").Trainer} trainer
 * @param {{inputs: Rows[], labels: Rows, count: number}} data
 * @param {number} batchSize
 */
async function evaluateAll(trainer, data, batchSize) {
  let loss = 0;
  let right = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const end = Math.min(data.count, start + batchSize);
    const result = await trainer.evaluate(batchOf(data.inputs, start, end), takeRows(data.labels, start, end).data);
    loss += result.loss * (end - start);
    right += result.accuracy * (end - start);
  }
  return { val_loss: loss / data.count, val_accuracy: right / data.count };
}

/**
 * Train `epochs - initialEpoch` epochs on x and labels (see Trainer.fit).
 * @param {import("./trainer.js").Trainer} trainer
 * @param {unknown} x
 * @param {unknown} labels
 * @param {FitOptions} [options]
 * @returns {Promise<History>}
 */
export async function fit(trainer, x, labels, options = {}) {
  const { epochs, initialEpoch, batchSize, shuffle, seed, validation, callbacks } = fitOptions(options);
  if (trainer._fitting) throw new Error("fit was called while another fit runs on this trainer: await the first one");
  const train = dataset(x, labels, trainer.metadata);
  const held = validation && dataset(validation[0], validation[1], trainer.metadata, ["validationData[0]", "validationData[1]"]);
  /** Call hook `name` of each callback, awaited; true when one returned false or set trainer.stopTraining. */
  const call = async (name, ...args) => {
    for (const hooks of callbacks) if (hooks[name] && (await hooks[name](...args)) === false) trainer.stopTraining = true;
    return trainer.stopTraining === true;
  };
  const classes = positionClasses(trainer.metadata.output_shape);
  const model = { loss: trainer.metadata.loss, trainsOnLogits: trainer._trainsOnLogits, classes };
  const steps = Math.ceil(train.count / batchSize);
  /** @type {History} */
  const history = { epoch: [], history: {} };
  let logs = {};
  trainer._fitting = true;
  trainer.stopTraining = false;
  try {
    await call("onTrainBegin");
    for (let epoch = initialEpoch; epoch < epochs && !trainer.stopTraining; epoch++) {
      await call("onEpochBegin", epoch);
      const order = shuffle ? shuffledOrder(train.count, seed, epoch) : undefined;
      let lossSum = 0;
      let rightSum = 0;
      let seen = 0;
      logs = {};
      for (let batch = 0; batch < steps && !trainer.stopTraining; batch++) {
        if (await call("onBatchBegin", batch)) break;
        const start = batch * batchSize;
        const end = Math.min(train.count, start + batchSize);
        const y = takeRows(train.labels, start, end, order).data;
        const { loss, logits } = await trainer.step(batchOf(train.inputs, start, end, order), y);
        if (!Number.isFinite(loss)) {
          // as Python's fit: the step changed nothing; a callback that stops here makes it a graceful stop
          logs = { loss, accuracy: seen > 0 ? rightSum / seen : NaN };
          if (await call("onBatchEnd", batch, logs)) break;
          throw new NonFiniteLossError(
            `The loss became ${loss} at epoch ${epoch}, batch ${batch + 1}/${steps}; training stopped and the weights ` +
              "of the last finite step were kept (error.history holds the epochs done). Lower the learning rate, " +
              "or check the inputs for extreme values.",
            history,
          );
        }
        lossSum += loss * (end - start);
        rightSum += accuracy(logits, y, end - start, model) * (end - start);
        seen += end - start;
        logs = { loss: lossSum / seen, accuracy: rightSum / seen };
        await call("onBatchEnd", batch, logs);
      }
      if (held) logs = { ...logs, ...(await evaluateAll(trainer, held, batchSize)) };
      await call("onEpochEnd", epoch, logs);
      record(history, epoch, logs); // after the callbacks, as Keras' History: with the keys they added
    }
    await call("onTrainEnd", logs);
    return history;
  } finally {
    trainer._fitting = false;
  }
}
