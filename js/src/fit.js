// Trainer.fit: Keras' / TF.js' training loop over typed arrays: epochs of batches (shuffled each epoch from a seed),
// the trainer's queued steps, validation through evaluate (validationData, or the last validationSplit of the
// examples), callbacks awaited (src/callbacks.js), yields to the event loop, and a History-like result.

import { dataset, shuffledOrder, takeRows } from "./batches.js";
import { callbackList, hookCaller, introduce } from "./callbacks.js";
import { RESTORE, describeNonFinite, nonFiniteWeights } from "./finite.js";
import { describe } from "./inputs.js";
import { metricSums } from "./metrics.js";
import { ordinal } from "./rows.js";

/**
 * @typedef {import("./index.js").FitOptions} FitOptions
 * @typedef {import("./index.js").FitLogs} FitLogs
 * @typedef {import("./index.js").History} History
 * @typedef {import("./batches.js").Rows} Rows
 */

const OPTIONS = [
  "epochs", "batchSize", "shuffle", "seed", "initialEpoch", "validationData", "validationSplit", "callbacks",
  "verbose", "yieldEvery",
];
const YIELD_EVERY = ["auto", "batch", "epoch", "never"];
const AUTO_YIELD_MS = 125; // TF.js' 'auto'

/**
 * The loss was NaN or infinite (the step changed nothing), or an update whose loss was finite made the weights
 * non-finite; fit stopped (`history` holds the epochs done, `weightsFinite` whether the weights are usable).
 */
export class NonFiniteLossError extends Error {
  /**
   * @param {string} message
   * @param {History} history
   * @param {boolean} [weightsFinite]
   */
  constructor(message, history, weightsFinite = true) {
    super(message);
    this.name = "NonFiniteLossError";
    /** @type {History} the epochs that ended before the loss stopped being finite */
    this.history = history;
    /** @type {boolean} false: the trainable weights hold NaN or infinity; restore a saved state (setState) */
    this.weightsFinite = weightsFinite;
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
 * fit's options, checked, with Keras' defaults (1 epoch, batches of 32, shuffled), silent (verbose 0) and yielding
 * to the event loop every 125 ms (TF.js' yieldEvery 'auto').
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
  const split = options.validationSplit ?? 0;
  if (typeof split !== "number" || !(split >= 0 && split < 1)) {
    throw new RangeError(`fit expects validationSplit to be a number in [0, 1), the fraction held out. Received: ${describe(split)}`);
  }
  if (validation !== undefined && split > 0) {
    throw new TypeError(`fit takes validationData or validationSplit, not both. Received: validationSplit=${split} and validationData`);
  }
  const verbose = options.verbose ?? 0;
  if (verbose !== 0 && verbose !== 1 && verbose !== 2) {
    throw new RangeError(`fit expects verbose to be 0 (silent), 1 or 2 (a line per epoch). Received: ${describe(verbose)}`);
  }
  const yieldEvery = options.yieldEvery ?? "auto";
  if (!YIELD_EVERY.includes(/** @type {any} */ (yieldEvery)) && !(typeof yieldEvery === "number" && yieldEvery >= 0)) {
    throw new RangeError(
      `fit expects yieldEvery to be 'auto', 'batch', 'epoch', 'never' or milliseconds >= 0. Received: ${describe(yieldEvery)}`,
    );
  }
  const callbacks = callbackList(options.callbacks);
  return { epochs, initialEpoch, batchSize, shuffle, seed, validation, split, verbose, yieldEvery, callbacks };
}

/** Python's round(): halves to even, so validationSplit holds out the examples Python's validation_split does. */
function roundHalfEven(value) {
  const floor = Math.floor(value);
  const rest = value - floor;
  if (rest !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * The examples [start, end) of a dataset, as views.
 * @param {{inputs: Rows[], labels: Rows, count: number}} data
 */
const slice = (data, start, end) => ({
  inputs: data.inputs.map((rows) => takeRows(rows, start, end)),
  labels: takeRows(data.labels, start, end),
  count: end - start,
});

/**
 * The training and validation examples: validationSplit holds out the last fraction of the examples, before any
 * shuffling, as Keras, TF.js and Python's fit(validation_split=...) do (Python's count: round(n * split)).
 */
function splitOff(train, split) {
  const cut = train.count - roundHalfEven(train.count * split);
  if (cut <= 0 || cut >= train.count) {
    throw new RangeError(
      `fit expects validationSplit to leave training and validation examples. Received: validationSplit=${split} ` +
        `of ${train.count} examples`,
    );
  }
  return [slice(train, 0, cut), slice(train, cut, train.count)];
}

/** A task after the ones waiting (a macrotask: the page paints and takes input), not a resolved promise. */
const nextTask = () =>
  new Promise((resolve) => {
    if (typeof setImmediate === "function") return void setImmediate(resolve); // Node.js
    if (typeof MessageChannel === "function") {
      const channel = new MessageChannel(); // not throttled in a background tab, as setTimeout is
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve(undefined);
      };
      return void channel.port2.postMessage(null);
    }
    setTimeout(resolve, 0);
  });

/**
 * When fit yields to the event loop (TF.js' yieldEvery): onnxruntime-web runs each step on the page's thread, so
 * without a yield the page freezes for the whole fit. Returns whether to yield after a batch ("batch") or an
 * epoch ("epoch").
 * @param {"auto" | "batch" | "epoch" | "never" | number} every
 */
function yieldPolicy(every) {
  const ms = every === "auto" ? AUTO_YIELD_MS : typeof every === "number" ? every : null;
  let last = performance.now();
  return (/** @type {"batch" | "epoch"} */ at) => {
    if (ms === null) return every === at;
    if (at === "epoch" || performance.now() - last < ms) return false;
    last = performance.now();
    return true;
  };
}

/** One line per epoch, as Python's fit(verbose=2) prints it (epochs counted from 1 there). */
function epochLine(epoch, epochs, batches, seconds, logs) {
  const figures = Object.entries(logs).map(([key, value]) => `${key}: ${Number(value).toFixed(4)}`);
  const count = `${batches} ${batches === 1 ? "batch" : "batches"}`;
  return [`Epoch ${epoch + 1}/${epochs}`, count, `${seconds.toFixed(2)}s`, ...figures].join(" - ");
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
 * Mean loss and compiled metrics of the current weights over `data`, `batchSize` examples per evaluate call
 * (Python's validation: each batch's mean weighted by its examples; the metrics from sums over all examples), under
 * Keras' val_ keys.
 * @param {import("./trainer.js").Trainer} trainer
 * @param {{inputs: Rows[], labels: Rows, count: number}} data
 * @param {number} batchSize
 */
async function evaluateAll(trainer, data, batchSize) {
  let loss = 0;
  const sums = metricSums(trainer._metrics.compiled);
  for (let start = 0; start < data.count; start += batchSize) {
    const end = Math.min(data.count, start + batchSize);
    const labels = takeRows(data.labels, start, end).data;
    const result = await trainer.evaluate(batchOf(data.inputs, start, end), labels);
    loss += result.loss * (end - start);
    sums.add(result.logits, labels, end - start);
  }
  const metrics = Object.entries(sums.values()).map(([name, value]) => [`val_${name}`, value]);
  return { val_loss: loss / data.count, ...Object.fromEntries(metrics) };
}

/**
 * NonFiniteLossError's message and whether the weights are finite, from one look at them (the error path only).
 * @param {import("./trainer.js").Trainer} trainer
 * @param {string} where "The loss became NaN at epoch 0, batch 1 (the 2nd of 5); training stopped"
 * @param {History} history
 */
function nonFiniteError(trainer, where, history) {
  const broken = nonFiniteWeights(trainer._tensors, trainer.metadata.trainable);
  const rate = `it is ${trainer.learningRate}`;
  if (broken.length === 0) {
    return new NonFiniteLossError(
      `${where} and the weights of the last finite step were kept (that batch's update was ` +
        `skipped; error.history holds the epochs done). Lower the learning rate (${rate}), or check the inputs ` +
        "for extreme values.",
      history,
    );
  }
  return new NonFiniteLossError(
    `${where}, and the weights are not finite any more: ${describeNonFinite(broken)} hold NaN ` +
      "or infinity, written by an update whose loss was still finite. predict and evaluate would use them, and " +
      `setState(getState()) refuses them: ${RESTORE} (${rate}). error.history holds the epochs done.`,
    history,
    false,
  );
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
  const { epochs, initialEpoch, batchSize, shuffle, seed, validation, split, verbose, yieldEvery, callbacks } =
    fitOptions(options);
  if (trainer._fitting) throw new Error("fit was called while another fit runs on this trainer: await the first one");
  let train = dataset(x, labels, trainer.metadata, undefined, trainer._warnOnce);
  const names = /** @type {[string, string]} */ (["validationData[0]", "validationData[1]"]);
  let held = validation && dataset(validation[0], validation[1], trainer.metadata, names, trainer._warnOnce);
  if (split > 0) [train, held] = splitOff(train, split);
  const call = hookCaller(callbacks, trainer);
  const yieldNow = yieldPolicy(yieldEvery);
  const steps = Math.ceil(train.count / batchSize);
  /** @type {History} */
  const history = { epoch: [], history: {} };
  let logs = {};
  trainer._fitting = true;
  trainer.stopTraining = false;
  try {
    const keys = ["loss", ...trainer.metrics];
    const metrics = [...keys, ...(held ? keys.map((key) => `val_${key}`) : [])];
    trainer._warnOfSkippedMetrics();
    const params = { epochs, initialEpoch, samples: train.count, steps, batchSize, verbose, doValidation: !!held, metrics };
    await introduce(callbacks, trainer, params);
    await call("onTrainBegin", {});
    for (let epoch = initialEpoch; epoch < epochs && !trainer.stopTraining; epoch++) {
      const started = performance.now();
      await call("onEpochBegin", epoch, {});
      const order = shuffle ? shuffledOrder(train.count, seed, epoch) : undefined;
      let lossSum = 0;
      const sums = metricSums(trainer._metrics.compiled);
      let seen = 0;
      let batches = 0;
      logs = {};
      for (let batch = 0; batch < steps && !trainer.stopTraining; batch++) {
        const start = batch * batchSize;
        const end = Math.min(train.count, start + batchSize);
        if (await call("onBatchBegin", batch, { batch, size: end - start })) break;
        const y = takeRows(train.labels, start, end, order).data;
        const { loss, logits } = await trainer.step(batchOf(train.inputs, start, end, order), y);
        batches++;
        if (!Number.isFinite(loss)) {
          // as Python's fit: the step changed nothing; a callback that stops here makes it a graceful stop
          logs = { loss, ...sums.values() };
          if (await call("onBatchEnd", batch, logs)) break;
          // batches counted from 0 as the callbacks count them, and the ordinal to leave no doubt
          const where = `The loss became ${loss} at epoch ${epoch}, batch ${batch} (the ${ordinal(batch + 1)} of ${steps})`;
          throw nonFiniteError(trainer, `${where}; training stopped`, history);
        }
        lossSum += loss * (end - start);
        sums.add(logits, y, end - start);
        seen += end - start;
        logs = { loss: lossSum / seen, ...sums.values() };
        await call("onBatchEnd", batch, logs);
        if (yieldNow("batch")) {
          await nextTask();
          await call("onYield", epoch, batch, logs);
        }
      }
      // once per epoch (a step costs more): the last update's loss was finite, but it may have broken the weights
      if (nonFiniteWeights(trainer._tensors, trainer.metadata.trainable).length > 0) {
        throw nonFiniteError(trainer, `Training stopped at the end of epoch ${epoch}, whose losses were all finite`, history);
      }
      if (held) logs = { ...logs, ...(await evaluateAll(trainer, held, batchSize)) };
      await call("onEpochEnd", epoch, logs);
      record(history, epoch, logs); // after the callbacks, as Keras' History: with the keys they added
      if (verbose > 0) console.log(epochLine(epoch, epochs, batches, (performance.now() - started) / 1000, logs));
      if (yieldNow("epoch")) await nextTask();
    }
    await call("onTrainEnd", logs);
    return history;
  } finally {
    trainer._fitting = false;
  }
}
