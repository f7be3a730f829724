// Trainer: runs a bundle's train step with any ONNX Runtime JavaScript package (onnxruntime-web or
// onnxruntime-node, passed in), feeding each step's `updated.<name>` outputs to the next step as its inputs.

import { packState, readBundle, unpackState } from "./bundle.js";
import { describe, inputData, labelData, splitInputs } from "./inputs.js";
import { writeInitializers } from "./protobuf.js";

/**
 * @typedef {import("./index.js").BundleMetadata} BundleMetadata
 * @typedef {import("./index.js").BundleSource} BundleSource
 * @typedef {import("./index.js").Batch} Batch
 * @typedef {import("./index.js").Labels} Labels
 * @typedef {import("./index.js").TrainerState} TrainerState
 * @typedef {import("./index.js").LoadOptions} LoadOptions
 */

const product = (shape) => shape.reduce((n, d) => n * d, 1);

export class Trainer {
  /**
   * Load a bundle and open its train-step and eval sessions.
   * @param {any} ort the onnxruntime-web or onnxruntime-node module
   * @param {BundleSource} source the bundle's URL (browser) or folder path (Node.js), or {read(name)}
   * @param {LoadOptions} [options]
   * @returns {Promise<Trainer>}
   */
  static async load(ort, source, options = {}) {
    const files = await readBundle(source);
    const sessionOptions = options.sessionOptions ?? {};
    const [train, evaluation] = await Promise.all([
      ort.InferenceSession.create(files.trainStep, sessionOptions),
      ort.InferenceSession.create(files.evaluation, sessionOptions),
    ]);
    return new Trainer(ort, files.metadata, train, evaluation, files.model, unpackState(files.state, files.metadata.tensors));
  }

  /**
   * Use Trainer.load.
   * @param {any} ort
   * @param {BundleMetadata} metadata
   * @param {any} trainSession
   * @param {any} evalSession
   * @param {Uint8Array} template the inference model the weights are written into by exportModel
   * @param {Map<string, Float32Array | BigInt64Array>} values every carried, frozen and step tensor
   */
  constructor(ort, metadata, trainSession, evalSession, template, values) {
    this.ort = ort;
    /** @type {BundleMetadata} */
    this.metadata = metadata;
    this._train = trainSession;
    this._eval = evalSession;
    this._template = template;
    this._shapes = new Map(metadata.tensors.map((t) => [t.name, t.shape]));
    /** @type {Map<string, any>} ort.Tensor by graph input name */
    this._tensors = new Map();
    for (const [name, data] of values) this._tensors.set(name, this._tensor(name, data));
    this._learningRate = metadata.learning_rate;
    this._carried = [
      ...metadata.trainable,
      ...metadata.layer_state,
      ...metadata.optimizer_state.map((s) => s.name),
      metadata.step_name,
    ];
  }

  _tensor(name, data) {
    return new this.ort.Tensor(data instanceof BigInt64Array ? "int64" : "float32", data, this._shapes.get(name));
  }

  /** Updates made so far (the train step's `step` input). */
  get stepCount() {
    return Number(this._tensors.get(this.metadata.step_name).data[0]);
  }

  /** The learning rate the next steps use (as a scheduler would change it). */
  get learningRate() {
    return this._learningRate;
  }

  set learningRate(value) {
    if (typeof value !== "number") {
      throw new TypeError(`learningRate expects a finite number >= 0. Received: ${describe(value)} (a ${typeof value})`);
    }
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`learningRate expects a finite number >= 0. Received: ${value}`);
    }
    this._learningRate = value;
  }

  /**
   * The graph inputs for a batch: x (one array per model input, or one array for one input) and labels, checked
   * and converted as Python reads them (src/inputs.js).
   * @param {Batch} x
   * @param {Labels} labels
   */
  _batchFeeds(x, labels) {
    const inputs = this.metadata.inputs;
    const xs = splitInputs(x, inputs);
    const feeds = {};
    let batch = -1;
    xs.forEach((values, k) => {
      const spec = inputs[k];
      const { data, shape } = inputData(values, spec, this.metadata.input_scale, inputs.length === 1 ? "x" : `x[${k}]`);
      if (batch >= 0 && shape[0] !== batch) {
        throw new RangeError(`x expects as many examples in every input. Received: ${batch} and ${shape[0]} (x[${k}])`);
      }
      batch = shape[0];
      feeds[spec.name] = new this.ort.Tensor(spec.dtype, data, shape);
    });
    const spec = this.metadata.labels;
    const { data, shape } = labelData(labels, spec, batch, this.metadata.output_shape.at(-1), this.metadata.loss);
    feeds[spec.name] = new this.ort.Tensor(spec.dtype, data, shape);
    return feeds;
  }

  _stateFeeds(session) {
    const feeds = {};
    for (const name of session.inputNames) {
      const tensor = this._tensors.get(name);
      if (tensor !== undefined) feeds[name] = tensor;
    }
    return feeds;
  }

  /**
   * One train step: forward, backward and the optimizer update (none when the loss is not finite: the graph
   * passes every value through), on one batch.
   * @param {Batch} x float32 values, or integers that the model's input scale converts
   * @param {Labels} labels class indices (int64 labels) or float targets
   * @returns {Promise<{loss: number, logits: Float32Array}>} of the batch before the update
   */
  async step(x, labels) {
    const feeds = { ...this._stateFeeds(this._train), ...this._batchFeeds(x, labels) };
    feeds[this.metadata.learning_rate_name] = new this.ort.Tensor("float32", Float32Array.of(this._learningRate), []);
    const results = await this._train.run(feeds);
    const prefix = this.metadata.updated_prefix;
    for (const name of this._carried) this._tensors.set(name, results[prefix + name]);
    return { loss: results[this.metadata.outputs.loss].data[0], logits: results[this.metadata.outputs.logits].data };
  }

  /**
   * Loss, logits and (for class-index labels) accuracy of the current weights on a batch.
   * @param {Batch} x
   * @param {Labels} labels
   * @returns {Promise<{loss: number, logits: Float32Array, accuracy: number | null}>}
   */
  async evaluate(x, labels) {
    const feeds = { ...this._stateFeeds(this._eval), ...this._batchFeeds(x, labels) };
    const results = await this._eval.run(feeds);
    const logits = results[this.metadata.outputs.logits].data;
    let accuracy = null;
    if (this.metadata.labels.dtype === "int64") {
      const classes = logits.length / labels.length;
      let right = 0;
      for (let i = 0; i < labels.length; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
        if (best === Number(labels[i])) right++;
      }
      accuracy = right / labels.length;
    }
    return { loss: results[this.metadata.outputs.loss].data[0], logits, accuracy };
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
   * Everything a resumed run needs: weights, optimizer state (as the graph carries it) and step; copies.
   * @returns {TrainerState}
   */
  getState() {
    const tensors = new Map();
    for (const [name, tensor] of this._tensors) tensors.set(name, tensor.data.slice());
    return { step: this.stepCount, learningRate: this._learningRate, tensors };
  }

  /**
   * Continue from a state getState (or stateFromBytes) returned.
   * @param {TrainerState} state
   * @throws {Error} a tensor is missing, unknown or of another size; nothing is changed then
   */
  setState(state) {
    const next = new Map();
    for (const [name, shape] of this._shapes) {
      const data = state.tensors.get(name);
      if (data === undefined) throw new Error(`setState: the state has no tensor ${name}`);
      if (data.length !== product(shape)) {
        throw new Error(`setState: ${name} expects ${product(shape)} values (shape [${shape}]); received ${data.length}`);
      }
      const typed = name === this.metadata.step_name ? BigInt64Array.from(data, (v) => BigInt(v)) : Float32Array.from(data);
      next.set(name, this._tensor(name, typed));
    }
    const unknown = [...state.tensors.keys()].filter((name) => !this._shapes.has(name));
    if (unknown.length > 0) throw new Error(`setState: unknown tensors ${unknown.join(", ")}`);
    this._tensors = next;
    if (state.learningRate !== undefined) this.learningRate = state.learningRate;
  }

  /**
   * The state as state.bin bytes (the bundle's layout): Python reads them with onnxtrain.bundle.unpack_state.
   * @returns {Uint8Array}
   */
  stateBytes() {
    return packState(this.getState().tensors, this.metadata.tensors);
  }

  /**
   * A state from stateBytes' bytes, for setState.
   * @param {Uint8Array} bytes
   * @returns {TrainerState}
   */
  stateFromBytes(bytes) {
    return { step: undefined, learningRate: undefined, tensors: unpackState(bytes, this.metadata.tensors) };
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

  /** Release the sessions. */
  async release() {
    await Promise.all([this._train.release?.(), this._eval.release?.()]);
  }
}
