// Trainer: runs a bundle's train step with any ONNX Runtime JavaScript package (onnxruntime-web or
// onnxruntime-node, passed in), feeding each step's `updated.<name>` outputs to the next step as its inputs.

import { accuracy, positionClasses } from "./accuracy.js";
import { REBUNDLE, checkGraphs, packState, readBundle, readState } from "./bundle.js";
import { dataset } from "./batches.js";
import { fit } from "./fit.js";
import { describe } from "./inputs.js";
import { predict } from "./predict.js";
import { metricSums, metricsOf } from "./metrics.js";
import { graphOutputNames, writeInitializers } from "./protobuf.js";
import { scheduleOf } from "./schedules.js";
import { openSession, sessionOptions } from "./sessions.js";
import { checkLearningRate, stateTensors, weightTensors } from "./state.js";

/**
 * @typedef {import("./index.js").BundleMetadata} BundleMetadata
 * @typedef {import("./index.js").BundleSource} BundleSource
 * @typedef {import("./index.js").Batch} Batch
 * @typedef {import("./index.js").Labels} Labels
 * @typedef {import("./index.js").TrainerState} TrainerState
 * @typedef {import("./index.js").LoadOptions} LoadOptions
 */

const LOAD_OPTIONS = ["sessionOptions", "schedule"];
const LOADING = Symbol("Trainer.load"); // only load makes a Trainer (the typings declare the constructor private)

/** The names the train step carries from one step to the next (its `updated.<name>` outputs). */
const carriedNames = (metadata) => [
  ...metadata.trainable,
  ...metadata.layer_state,
  ...metadata.optimizer_state.map((s) => s.name),
  metadata.step_name,
];

export class Trainer {
  /**
   * Load a bundle and open its train-step and eval sessions.
   * @param {any} ort the onnxruntime-web or onnxruntime-node module
   * @param {BundleSource} source the bundle's URL (browser; file: URLs in Node.js too), folder path (Node.js), or
   *   {read(name)}
   * @param {LoadOptions} [options]
   * @returns {Promise<Trainer>}
   * @throws {TypeError} `ort` is not an ONNX Runtime module
   * @throws {Error} a file is missing or not the bundle's; nothing stays open then
   */
  static async load(ort, source, options = {}) {
    if (typeof ort?.InferenceSession?.create !== "function" || typeof ort?.Tensor !== "function") {
      throw new TypeError(
        'Trainer.load expects the onnxruntime-node or onnxruntime-web module as ort (import * as ort from "onnxruntime-node"). ' +
          `Received: ${describe(ort)}${ort == null ? "" : " without InferenceSession.create and Tensor"}`,
      );
    }
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new TypeError(`Trainer.load expects options {${LOAD_OPTIONS.join(", ")}}. Received: ${describe(options)}`);
    }
    const unknown = Object.keys(options).filter((name) => !LOAD_OPTIONS.includes(name));
    if (unknown.length > 0) {
      throw new TypeError(`Trainer.load takes the options ${LOAD_OPTIONS.join(", ")}. Received: ${unknown.join(", ")}`);
    }
    // Pad_Fusion off, as Python's sessions run (src/sessions.js); checked before any file is read
    const created = sessionOptions(options.sessionOptions ?? {}, "Trainer.load's options.sessionOptions");
    const { metadata, where, ...files } = await readBundle(source);
    const schedule = scheduleOf(metadata, options.schedule); // before any session opens
    const given = options.sessionOptions ?? {};
    const open = (file, bytes) => openSession(ort, bytes, created, given, where(file), REBUNDLE);
    const opened = await Promise.allSettled([
      open(metadata.files.train_step, files.trainStep),
      open(metadata.files.eval, files.evaluation),
    ]);
    const [train, evaluation] = opened.map((result) => result.value);
    try {
      const failed = opened.find((result) => result.status === "rejected");
      if (failed !== undefined) throw failed.reason;
      const tensors = metadata.tensors.map((t) => t.name);
      const batch = [...metadata.inputs.map((i) => i.name), metadata.labels.name];
      const outputs = [metadata.outputs.loss, metadata.outputs.logits];
      const feeds = [...tensors, metadata.learning_rate_name, ...batch];
      checkGraphs(
        metadata,
        [
          {
            file: metadata.files.train_step,
            session: train,
            inputs: feeds,
            feedable: feeds,
            outputs: [...outputs, ...carriedNames(metadata).map((name) => metadata.updated_prefix + name)],
          },
          { file: metadata.files.eval, session: evaluation, inputs: batch, feedable: [...tensors, ...batch], outputs },
        ],
        where,
      );
      let values;
      try {
        values = readState(files.state, metadata.tensors).tensors;
      } catch (e) {
        throw new Error(`${where(metadata.files.state)} does not hold bundle.json's tensors: ${e.message}`, { cause: e });
      }
      // `logits` followed by `probabilities` (Softmax or Sigmoid added); a sigmoid model's sole output is `probabilities`
      const outputNames = graphOutputNames(files.model);
      const trainsOnLogits = outputNames.includes("logits") && outputNames.includes("probabilities");
      return new Trainer(LOADING, ort, metadata, train, evaluation, files.model, values, trainsOnLogits, schedule);
    } catch (e) {
      await Promise.all([train?.release?.(), evaluation?.release?.()]);
      throw e;
    }
  }

  /**
   * Use Trainer.load.
   * @param {symbol} token Trainer.load's
   * @param {any} ort
   * @param {BundleMetadata} metadata
   * @param {any} trainSession
   * @param {any} evalSession
   * @param {Uint8Array} template the inference model the weights are written into by exportModel
   * @param {Map<string, Float32Array | BigInt64Array>} values every carried, frozen and step tensor
   * @param {boolean} trainsOnLogits whether the outputs are logits (the export adds Softmax or Sigmoid)
   * @param {import("./schedules.js").Schedule | null} schedule the learning-rate schedule applied before each update
   */
  constructor(token, ort, metadata, trainSession, evalSession, template, values, trainsOnLogits, schedule) {
    if (token !== LOADING) {
      throw new TypeError("new Trainer() is not supported: use `await Trainer.load(ort, source)`");
    }
    this.ort = ort;
    /** @type {BundleMetadata} */
    this.metadata = metadata;
    this._train = trainSession;
    this._eval = evalSession;
    this._template = template;
    this._trainsOnLogits = trainsOnLogits;
    this._shapes = new Map(metadata.tensors.map((t) => [t.name, t.shape]));
    /** @type {Map<string, any>} ort.Tensor by graph input name */
    this._tensors = new Map();
    for (const [name, data] of values) this._tensors.set(name, this._tensor(name, data));
    this._learningRate = metadata.learning_rate;
    this._schedule = schedule;
    this._metrics = metricsOf(metadata, trainsOnLogits);
    this._carried = carriedNames(metadata);
    this._queue = Promise.resolve(); // session runs, one at a time, in call order
    this._pending = 0;
    this._released = false;
    /** Set true (in a callback) to stop fit after the current batch, as TF.js' model.stopTraining. */
    this.stopTraining = false;
    this._fitting = false;
    const warned = new Set();
    /** console.warn `message` the first time this trainer meets `key` (uint8 pixels read unscaled). */
    this._warnOnce = (key, message) => {
      if (warned.has(key)) return;
      warned.add(key);
      console.warn(message);
    };
  }

  _tensor(name, data) {
    return new this.ort.Tensor(data instanceof BigInt64Array ? "int64" : "float32", data, this._shapes.get(name));
  }

  /** Updates made so far (the train step's `step` input). */
  get stepCount() {
    return Number(this._tensors.get(this.metadata.step_name).data[0]);
  }

  /**
   * The learning rate of the next update: under a schedule, schedule(stepCount) (Python's model.learning_rate);
   * else the rate set (a number >= 0 that float32 holds), which may be changed between steps.
   */
  get learningRate() {
    return this._schedule === null ? this._learningRate : this._schedule.rateAt(this.stepCount);
  }

  set learningRate(value) {
    if (this._schedule !== null) {
      throw new TypeError(
        `learningRate cannot be set: the learning rate is the schedule ${this._schedule.describe}, which sets it ` +
          `before each step (as Python refuses it). Received: ${describe(value)}. Load with ` +
          "Trainer.load(ort, source, {schedule: null}) to set the rate yourself",
      );
    }
    this._learningRate = checkLearningRate(value, "learningRate");
  }

  /**
   * The rate of the update after `step` updates: the schedule's (computed as Python's, in float64; the step feeds
   * it as float32), or the rate set when there is none.
   * @param {number} step a whole number >= 0
   * @returns {number}
   */
  learningRateAt(step) {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new RangeError(`learningRateAt expects a whole number >= 0 (updates made). Received: ${describe(step)}`);
    }
    return this._schedule === null ? this._learningRate : this._schedule.rateAt(step);
  }

  /** The schedule's name and arguments (ExponentialDecay(initial_learning_rate=0.1, ...)), or null for a fixed rate. */
  get schedule() {
    return this._schedule === null ? null : this._schedule.describe;
  }

  /**
   * The graph inputs for a batch: x (one array per model input, or one array for one input) and labels, checked
   * and converted as Python reads them (src/inputs.js).
   * @param {Batch} x
   * @param {Labels} labels
   */
  _batchFeeds(x, labels) {
    const { inputs, labels: target } = dataset(x, labels, this.metadata, undefined, this._warnOnce);
    const feeds = {};
    this.metadata.inputs.forEach((spec, k) => (feeds[spec.name] = new this.ort.Tensor(spec.dtype, inputs[k].data, inputs[k].shape)));
    feeds[this.metadata.labels.name] = new this.ort.Tensor(this.metadata.labels.dtype, target.data, target.shape);
    return feeds;
  }

  /**
   * Run `task` after the session runs already queued, so each starts from the state the previous one left.
   * @template T
   * @param {() => Promise<T>} task
   * @returns {Promise<T>}
   */
  _enqueue(task) {
    if (this._released) return Promise.reject(new Error("this Trainer was released: load another with Trainer.load"));
    this._pending++;
    const run = this._queue.then(task).finally(() => this._pending--);
    this._queue = run.catch(() => {});
    return run;
  }

  /** `feeds` plus the carried tensors `session` reads, as they are now. */
  _withState(session, feeds) {
    const all = { ...feeds };
    for (const name of session.inputNames) if (this._tensors.has(name)) all[name] = this._tensors.get(name);
    return all;
  }

  /**
   * One train step: forward, backward and the optimizer update (none when the loss is not finite: the graph
   * passes every value through), on one batch. A call made while others run is queued: it runs after them, on
   * the weights they left, with the learning rate set when it was called (under a schedule, the schedule's rate at
   * the updates made when it runs, as Python's fit sets it). x and labels are checked at once.
   * @param {Batch} x float32 values, or integers that the model's input scale converts
   * @param {Labels} labels class indices (int64 labels) or float targets
   * @returns {Promise<{loss: number, logits: Float32Array}>} of the batch before the update
   */
  async step(x, labels) {
    const feeds = this._batchFeeds(x, labels);
    const fixed = this._learningRate;
    return this._enqueue(async () => {
      const rate = this._schedule === null ? fixed : this._schedule.rateAt(this.stepCount);
      feeds[this.metadata.learning_rate_name] = new this.ort.Tensor("float32", Float32Array.of(rate), []);
      const results = await this._train.run(this._withState(this._train, feeds));
      const { loss, logits } = this.metadata.outputs;
      this._carried.forEach((name) => this._tensors.set(name, results[this.metadata.updated_prefix + name]));
      return { loss: results[loss].data[0], logits: results[logits].data };
    });
  }

  /**
   * Loss, logits, accuracy and the compiled metrics of the current weights on a batch (queued after the steps
   * already called). Accuracy is Python's "accuracy" metric, always given: the argmax for class indices; for float
   * targets, each unit on its target's side of 0.5 (0 on logits) for binary cross-entropy or a one-unit output, else
   * the argmax against the target's; per position where the output has a class per position (a tagger's). The compiled metrics onnxtrain-js computes (`metrics`) follow by their names.
   * @param {Batch} x
   * @param {Labels} labels
   * @returns {Promise<{loss: number, logits: Float32Array, accuracy: number, [metric: string]: number | Float32Array}>}
   */
  async evaluate(x, labels) {
    const feeds = this._batchFeeds(x, labels);
    this._warnOfSkippedMetrics();
    const results = await this._enqueue(() => this._eval.run(this._withState(this._eval, feeds)));
    const logits = results[this.metadata.outputs.logits].data;
    const target = feeds[this.metadata.labels.name];
    const classes = positionClasses(this.metadata.output_shape);
    const model = { loss: this.metadata.loss, trainsOnLogits: this._trainsOnLogits, classes };
    const share = accuracy(logits, target.data, target.dims[0], model);
    const sums = metricSums(this._metrics.compiled);
    sums.add(logits, target.data, target.dims[0]);
    return { loss: results[this.metadata.outputs.loss].data[0], logits, accuracy: share, ...sums.values() };
  }

  /** The names of the compiled metrics fit and evaluate report (bundle.json's that onnxtrain-js computes). */
  get metrics() {
    return this._metrics.compiled.map((m) => m.name);
  }

  /** The names of the compiled metrics onnxtrain-js does not compute (AUC, Precision, ...): left out of the logs. */
  get skippedMetrics() {
    return [...this._metrics.skipped];
  }

  /** console.warn once that the compiled metrics onnxtrain-js does not compute are left out. */
  _warnOfSkippedMetrics() {
    const skipped = this._metrics.skipped;
    if (skipped.length === 0) return;
    this._warnOnce(
      "metrics",
      `onnxtrain-js: the compiled metric${skipped.length > 1 ? "s" : ""} ${skipped.join(", ")} ` +
        `${skipped.length > 1 ? "are" : "is"} not computed here (onnxtrain-js computes the accuracies, their top-k, ` +
        "mae, mse, root_mean_squared_error and msle; not weighted metrics): fit's History and evaluate leave " +
        `${skipped.length > 1 ? "them" : "it"} out (given once per trainer).`,
    );
  }

  /**
   * Keras' / TF.js' fit: `epochs` epochs of batches of `batchSize` examples (the last may be smaller), shuffled
   * each epoch from `seed`, each a queued step; validation through evaluate; callbacks awaited, and stopping when
   * one returns false or sets `stopTraining`. A non-finite loss rejects with NonFiniteLossError (src/fit.js).
   * @param {Batch} x
   * @param {Labels} labels
   * @param {import("./index.js").FitOptions} [options]
   * @returns {Promise<import("./index.js").History>}
   */
  fit(x, labels, options) {
    return fit(this, x, labels, options);
  }

  /**
   * Predictions of the current weights, in batches (queued after the steps already called): class indices for
   * the softmax cross-entropies, 0 or 1 per unit for binary cross-entropy, raw outputs otherwise; with
   * `{probabilities: true}`, a classifier's probabilities (src/predict.js).
   * @param {Batch} x
   * @param {import("./index.js").PredictOptions} [options]
   * @returns {Promise<Int32Array | Float32Array>}
   */
  predict(x, options) {
    return predict(this, x, options);
  }

  /**
   * A classifier's probabilities: softmax, or sigmoid for binary cross-entropy on logits (predict's
   * `{probabilities: true}`).
   * @param {Batch} x
   * @param {{batchSize?: number}} [options]
   * @returns {Promise<Float32Array>}
   */
  predictSoftly(x, options = {}) {
    return /** @type {Promise<Float32Array>} */ (predict(this, x, { ...options, probabilities: true }));
  }

  /**
   * The model's parameters (trainable, layer state and frozen), copies, by name.
   * @returns {Map<string, Float32Array>}
   */
  getWeights() {
    const names = [...this.metadata.trainable, ...this.metadata.layer_state, ...this.metadata.frozen];
    return new Map(names.map((name) => [name, Float32Array.from(this._tensors.get(name).data)]));
  }

  /**
   * Set some or all of the model's parameters (getWeights' names: trainable, layer state, frozen), leaving the
   * optimizer state, the step and the learning rate as they are (Keras' set_weights; setState sets everything).
   * @param {Map<string, ArrayLike<number>> | Record<string, ArrayLike<number>>} weights
   * @throws {TypeError | RangeError | Error} a name that is not a parameter (an optimizer tensor or the step: use
   *   setState), a size other than the parameter's, a value that is not finite float32; nothing changes then
   * @throws {Error} steps are still running
   */
  setWeights(weights) {
    if (this._pending > 0) {
      throw new Error(`setWeights while ${this._pending} step or evaluate calls are running: await them first`);
    }
    const parameters = [...this.metadata.trainable, ...this.metadata.layer_state, ...this.metadata.frozen];
    const values = weightTensors(weights, parameters, this._shapes);
    for (const [name, data] of values) this._tensors.set(name, this._tensor(name, data));
  }

  /**
   * Everything a resumed run needs: weights, optimizer state (as the graph carries it), step and learning rate;
   * copies. The state after the steps that have settled.
   * @returns {TrainerState}
   */
  getState() {
    const tensors = new Map();
    for (const [name, tensor] of this._tensors) tensors.set(name, tensor.data.slice());
    return { step: this.stepCount, learningRate: this.learningRate, tensors };
  }

  /**
   * Continue from a state getState (or stateFromBytes) returned. `state.step`, when given, sets the step (the
   * optimizer's bias correction, a schedule's position) in place of the step tensor's value.
   * @param {TrainerState} state
   * @throws {TypeError | RangeError} not a state of this model, or a value a trainer cannot continue from (a
   *   weight that is not finite, a step that is not a whole number >= 0, a bad learning rate); nothing is changed then
   * @throws {Error} steps are still running
   */
  setState(state) {
    if (this._pending > 0) {
      throw new Error(`setState while ${this._pending} step or evaluate calls are running: await them first`);
    }
    const values = stateTensors(state, this._shapes, this.metadata.step_name);
    // under a schedule the step decides the rate: a state's (stateBytes writes the next one) is not used
    const given = this._schedule === null ? state.learningRate : undefined;
    const rate = given === undefined ? this._learningRate : checkLearningRate(given, "state.learningRate");
    const next = new Map([...values].map(([name, data]) => [name, this._tensor(name, data)]));
    this._tensors = next;
    this._learningRate = rate;
  }

  /**
   * The state as bytes: state.bin's layout (Python reads them with onnxtrain.bundle.unpack_state) and a trailer
   * that holds the learning rate and marks them as this model's.
   * @returns {Uint8Array}
   */
  stateBytes() {
    return packState(this.getState().tensors, this.metadata.tensors, this.learningRate);
  }

  /**
   * A state from stateBytes' bytes (or a bundle's state.bin), for setState.
   * @param {Uint8Array | ArrayBuffer} bytes any Uint8Array view: a Node.js Buffer (readFileSync), a subarray
   * @returns {TrainerState}
   * @throws {TypeError | RangeError} not bytes of this model's state (another length, or another model's)
   */
  stateFromBytes(bytes) {
    const { tensors, learningRate } = readState(bytes, this.metadata.tensors);
    return { step: Number(tensors.get(this.metadata.step_name)[0]), learningRate, tensors };
  }

  /**
   * The inference model (the bundle's model.onnx) with the current weights written in: any ONNX runtime loads it.
   * @returns {Uint8Array} the bytes of the .onnx file
   */
  exportModel() {
    const weights = new Map();
    for (const [name, initializer] of Object.entries(this.metadata.export_initializers)) {
      weights.set(initializer, this._tensors.get(name).data);
    }
    return writeInitializers(this._template, weights);
  }

  /** Release the sessions, after the steps already called; a second call does nothing. */
  async release() {
    if (this._released) return;
    this._released = true;
    await this._queue;
    await Promise.all([this._train.release?.(), this._eval.release?.()]);
  }
}
