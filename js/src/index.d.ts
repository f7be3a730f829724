// Types of onnxtrain-js (the implementation is plain ES modules with JSDoc).

/** One entry of state.bin's index (bundle.json "tensors"). */
export interface TensorEntry {
  name: string;
  dtype: "float32" | "int64";
  shape: number[];
  /** byte offset in state.bin, a multiple of 8 */
  offset: number;
}

export interface ValueSpec {
  name: string;
  /** an input's: "float32", or "int64" / "int32" for token ids (fed as BigInt64Array / Int32Array, never scaled) */
  dtype: "float32" | "int64" | "int32";
  /** null for the batch dimension */
  shape: (number | null)[];
  /** an input an Embedding reads: its values are token ids, never scaled, whole numbers in [0, input_dim) only;
   * null otherwise (absent in bundles written before it was added: such an input is read unchecked) */
  token_ids?: { input_dim: number; layer: string } | null;
  /** a float input whose raw pixels the model scales itself (a Keras-style Rescaling(1 / 255) it reaches, as
   * Python's _integer_pixels.rescales_raw_pixels finds): integer pixels go in raw without the warning of raw pixels.
   * Absent in bundles written before it was added (read as false) */
  rescales_pixels?: boolean;
}

/** bundle.json, as onnxtrain.bundle writes it. */
export interface BundleMetadata {
  format: "onnxtrain.training_bundle/1";
  onnxtrain_version: string;
  name: string;
  files: { train_step: string; eval: string; model: string; state: string };
  opset: number;
  ir_version: number;
  inputs: ValueSpec[];
  labels: ValueSpec;
  outputs: { loss: string; logits: string };
  output_shape: number[];
  /** integer typed arrays (uint8 pixels) given for a float32 input are multiplied by it (divided by n when it is
   * 1/n), as in Python; float arrays and plain numbers are used as they are; token ids are never scaled. At 1/255,
   * integers outside [0, 255] are refused (RangeError); at 1, Uint8/Uint8Clamped/Uint16/Int16Array pixels are read
   * raw and console.warn says so once per trainer, unless the model scales them itself (inputs[].rescales_pixels) */
  input_scale: number;
  class_names: string[] | null;
  loss: string;
  /** the optimizer's config; its learning_rate is a number, or a schedule as Python's schedules.serialize writes it */
  optimizer: Record<string, unknown> & { name: string; learning_rate: number | SerializedSchedule };
  /** the rate of the next update: under a schedule, schedule(step) (Python's model.learning_rate) */
  learning_rate: number;
  /** the optimizer's learning-rate schedule, applied before each update (Trainer.learningRate); null for a fixed
   * rate. Absent in bundles written before it was added: the optimizer config's learning_rate is read then */
  learning_rate_schedule?: SerializedSchedule | null;
  step_name: string;
  learning_rate_name: string;
  updated_prefix: string;
  trainable: string[];
  layer_state: string[];
  frozen: string[];
  optimizer_state: { name: string; parameter: string; slot: string; scale: number }[];
  /** the compiled metrics by their keys in the logs, with what onnxtrain-js needs to compute them as Python does
   * (metric: Python's Metrics value, "equal_values" for Keras' Accuracy class, or null for one it does not compute;
   * a value it does not know is skipped too); absent in older bundles ("accuracy") */
  metrics?: { name: string; metric: string | null; k?: number; threshold?: number; logits?: boolean; softmax?: boolean }[];
  /** "engine": the optimizer state of the Python run; "fresh": initial state (the ort-training engine's) */
  state_source: "engine" | "fresh";
  /** parameter name -> initializer name in model.onnx */
  export_initializers: Record<string, string>;
  tensors: TensorEntry[];
}

/** A learning-rate schedule as Python's onnxtrain.optimizers.schedules.serialize writes it. onnxtrain-js computes
 * Keras' six (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay, CosineDecay,
 * CosineDecayRestarts) as Python does; Trainer.load refuses another class unless given options.schedule. */
export interface SerializedSchedule {
  class_name: string;
  config: Record<string, unknown>;
}

/** A URL (browser; http(s) and file: in Node.js), a folder path (Node.js), or a reader of the bundle's files. */
export type BundleSource = string | URL | { read(name: string): Promise<ArrayBuffer | Uint8Array> };

/** A tf.Tensor, or anything with its dataSync() and shape: shape [N, ...the input's shape] or [N, values per
 * example] ([N, 28, 28, 1] or [N, 784] for an input of shape [28, 28, 1]); any other shape is refused (a
 * channels-first [N, 3, 32, 32] for [32, 32, 3] too, saying so). An int32 tensor's values (Int32Array) are
 * integers: scaled by the input scale for a float input, as integer typed arrays are; a bool tensor is refused. */
export interface TensorLike {
  dataSync(): ArrayLike<number | bigint>;
  readonly shape: number[];
}

/** onnxruntime's own Tensor (`new ort.Tensor("float32", data, [N, 28, 28, 1])`, or anything with its data, dims
 * and type), shaped as a TensorLike: dims [N, ...the input's shape] or [N, values per example]. Its data is read as
 * the typed array it is (float32 and float64 as they are, integer types scaled or taken whole, as typed arrays
 * are); bool, float16, int4, uint4 and string tensors, and tensors whose data is not on the CPU, are refused. */
export interface OrtTensorLike {
  readonly data: ArrayLike<number | bigint | string>;
  readonly dims: readonly number[];
  readonly type: string;
  readonly location?: string;
}

/** The values of one example, flat or nested as its shape (up to 4 levels: [h, w, c] rows are 3). */
export type ExampleValues =
  | ArrayLike<number | bigint>
  | ArrayLike<ArrayLike<number | bigint>>
  | ArrayLike<ArrayLike<ArrayLike<number | bigint>>>
  | ArrayLike<ArrayLike<ArrayLike<ArrayLike<number | bigint>>>>;

/** Rows of examples, one per example (tf.tensor2d's number[][], Float32Array[], or tensors): each row holds one
 * example's values, flat or nested as the input's shape level by level ([28][28][1] for [28, 28, 1]; a typed array
 * or a tensor may stand for any level); a row of another size or nesting ([28][28] or [1][28][28] for [28, 28, 1])
 * is refused naming it. Rows whose values all come from typed arrays of one type keep it, at any level of nesting
 * (Uint8Array rows are pixels, scaled and checked as such). */
export type Rows = ArrayLike<ExampleValues | TensorLike | OrtTensorLike>;

/** One input's values: flat, examples one after the other (a typed array or an array of numbers), rows of examples
 * (number[][], nested as the input's shape or flat per example), or a tensor (tf.js or ort). Float arrays
 * (Float32Array, Float64Array, plain numbers) are used as they are; integer typed arrays (Uint8Array pixels,
 * Int32Array, ...) are scaled by the model's input scale (refused outside [0, 255] where it is 1/255; a Uint8Array,
 * Uint8ClampedArray, Uint16Array or Int16Array for a float input of a model whose input scale is 1 is read raw, and
 * console.warn says so once per trainer), unless the input
 * holds token ids (bundle.json inputs[].token_ids) or is an int64 / int32 input, which take whole numbers (a
 * BigInt64Array, or bigints) and are never scaled. */
export type InputValues =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  /** a plain array, or an array-like object ({length, 0: ...}) read as one */
  | ArrayLike<number | bigint>
  /** rows of examples: number[][], Float32Array[], deeper nesting as the input's shape */
  | Rows
  | TensorLike
  | OrtTensorLike;

/** One input's values for a model of one input, or an array of them, one per model input in the model's order (a
 * model of one input also takes a list of its one input's values), or them by input name ({feats, meta} or a Map,
 * as Python's fit takes a dict; a name the model lacks, or a missing one, is refused naming both). Arrays given in
 * another order than the model's are refused naming each input's size per example and the order they fit. */
export type Batch = InputValues | InputValues[] | { [inputName: string]: InputValues } | Map<string, InputValues>;

/** Class indices (int64 labels: whole numbers in [0, classes)) or finite float targets (integers too: a
 * BigInt64Array or an int64 tensor of targets is read as numbers, as Python casts int64 targets): flat, one example after
 * the other, rows of them (number[][]: [[0], [2]], or a regression's [[0.5], [1.2]]) or a tensor (tf.js or ort) of
 * shape [N, ...the labels' shape] or [N, values per example] (class indices: [N] or [N, 1]; one unit: [N, 1] or [N]);
 * an array-like object is read as an array. One-hot rows for class indices are refused, saying to pass the argmax. */
export type Labels =
  | BigInt64Array
  | Int32Array
  | Uint8Array
  | Float32Array
  | Float64Array
  | ArrayLike<number | bigint>
  | Rows
  | TensorLike
  | OrtTensorLike;

export interface TrainerState {
  /** updates made so far; setState takes it, when given, in place of the step tensor's value (set 0 to restart
   * the optimizer's bias correction); a whole number >= 0 */
  step?: number;
  /** the learning rate of the next update; undefined in a state read from bytes without it (a bundle's state.bin),
   * and then setState keeps the trainer's. Under a schedule setState does not use it: the step decides the rate */
  learningRate?: number;
  /** every tensor the train step carries, plus frozen parameters and `step`; weights must be finite float32 */
  tensors: Map<string, Float32Array | Float64Array | BigInt64Array | number[]>;
}

export interface LoadOptions {
  /** passed to ort.InferenceSession.create (executionProviders, graphOptimizationLevel, ...) through
   * sessionOptions(): ONNX Runtime's Pad_Fusion is always off, as in Python's sessions */
  sessionOptions?: Record<string, unknown>;
  /** the learning-rate schedule: undefined (the default) applies the bundle's (Keras' six; a class of your own is
   * refused); a function gives the rate of the update after `step` updates (a finite number >= 0 within float32's
   * range, checked at each step); null applies none: the rate is bundle.json's learning_rate until you set another */
  schedule?: ((step: number) => number) | null;
}

/** The running figures fit passes to callbacks and records per epoch: Keras' keys, as Python's History has them. */
export interface FitLogs {
  /** the mean loss over the epoch's examples so far (each batch's mean weighted by its examples); NaN in
   * onBatchEnd's logs for a batch whose loss was not finite */
  loss: number;
  /** each compiled metric onnxtrain-js computes (trainer.metrics: the accuracies, their top-k, mae, mse,
   * root_mean_squared_error, msle) under the key Python logs it by ("accuracy", "acc", "mae", a name given), over the
   * epoch's examples so far, as Python's; "accuracy" alone from a bundle written before bundle.json listed metrics */
  accuracy?: number;
  /** with validationData or validationSplit, in onEpochEnd's logs: the loss and each metric (val_<key>) over the
   * validation examples, in batches of batchSize */
  val_loss?: number;
  val_accuracy?: number;
  /** the other compiled metrics, and keys a callback adds to onEpochEnd's logs (recorded too) */
  [key: string]: number | undefined;
}

/** A hook that returns false (or a promise of false) stops fit, as setting trainer.stopTraining does. Every hook
 * is awaited before fit goes on, called as a method (`this` is the callback). Epochs and batches are numbered from
 * 0 (TF.js' and Keras'). A callback may be any object, a class instance keeping its own fields (best, wait, model,
 * params) included; its own and inherited properties named like hooks (`on` and a capital letter) must be among
 * these hooks and functions: fit refuses a misspelled one (onEpochEnds) naming it. A callback with setModel /
 * setParams (TF.js' callback classes) has them called before onTrainBegin, with the trainer (its stopTraining
 * stops fit) and TF.js' params. */
export interface FitCallbacks {
  onTrainBegin?(logs: Record<string, never>): unknown;
  onEpochBegin?(epoch: number, logs: Record<string, never>): unknown;
  /** logs: TF.js' {batch, size} (the batch's examples) */
  onBatchBegin?(batch: number, logs: { batch: number; size: number }): unknown;
  onBatchEnd?(batch: number, logs: FitLogs): unknown;
  /** logs may be given more keys here: the History records them */
  onEpochEnd?(epoch: number, logs: FitLogs): unknown;
  onTrainEnd?(logs: FitLogs | Record<string, never>): unknown;
  /** after fit yielded to the event loop (yieldEvery), with the batch's logs */
  onYield?(epoch: number, batch: number, logs: FitLogs): unknown;
  /** TF.js' callbacks' setModel: called with the trainer before training */
  setModel?(model: Trainer): unknown;
  /** TF.js' callbacks' setParams: called before training */
  setParams?(params: FitParams): unknown;
}

/** What a callback's setParams is given (TF.js' params). */
export interface FitParams {
  epochs: number;
  initialEpoch: number;
  /** training examples (after validationSplit) */
  samples: number;
  /** batches per epoch */
  steps: number;
  batchSize: number;
  verbose: 0 | 1 | 2;
  doValidation: boolean;
  metrics: string[];
}

export interface FitOptions {
  /** the epoch to stop before (Keras' epochs); 1 by default */
  epochs?: number;
  /** examples per step; 32 by default. The last batch of an epoch holds the rest (it may be smaller) */
  batchSize?: number;
  /** shuffle the examples each epoch (true by default); false: batches in order, as Python's shuffle=False */
  shuffle?: boolean;
  /** a whole number in [0, 2**32): epoch e is shuffled by a Fisher-Yates shuffle driven by mulberry32 seeded from
   * (seed, e), so equal seeds give equal runs in any JavaScript engine (not Python's order: numpy's generator
   * differs). Without it, a seed from Math.random */
  seed?: number;
  /** the first epoch's number (Keras' initial_epoch): resume a seeded run with its shuffles; 0 by default */
  initialEpoch?: number;
  /** [x, labels] evaluated after each epoch: val_loss and val_<metric> for each metric */
  validationData?: [Batch, Labels];
  /** a number in [0, 1): hold out the last fraction of the examples (round(n * split) of them, Python's count),
   * before shuffling, as validation data (Keras', TF.js' and Python's validation_split); not with validationData */
  validationSplit?: number;
  /** objects of hooks, or class instances with hook methods and their own state (a class's fields are its own;
   * fit checks only names like hooks') */
  callbacks?: FitCallbacks | FitCallbacks[];
  /** 0 (the default: a library's fit writes nothing unasked; TF.js' default is 1), 1 or 2: console.log one line per
   * epoch, as Python's fit(verbose=2): `Epoch 1/3 - 5 batches - 0.12s - loss: 0.6931 - accuracy: 0.5000` */
  verbose?: 0 | 1 | 2;
  /** when fit yields to the event loop (a macrotask, so a page paints and takes clicks: onnxruntime-web runs the
   * steps on the page's thread): 'auto' (the default: every 125 ms, TF.js' 'auto'), 'batch', 'epoch', 'never', or
   * every that many milliseconds. Callbacks' onYield is called after each yield */
  yieldEvery?: "auto" | "batch" | "epoch" | "never" | number;
}

/** What fit returns: Keras' / TF.js' History. */
export interface History {
  /** the epochs run, from 0 (initialEpoch onward); Python's History counts from 1 */
  epoch: number[];
  /** one value per epoch for each key: loss and the compiled metrics (FitLogs), and val_loss, val_<metric> with
   * validation data: Python's History keys, less the metrics onnxtrain-js does not compute (trainer.skippedMetrics) */
  history: { loss: number[]; val_loss?: number[]; [key: string]: number[] | undefined };
}

/** fit's error for a loss that is not finite: that step changed nothing, and fit stopped (unless a callback's
 * onBatchEnd stopped training at that batch: a graceful stop, the epoch's loss NaN); or for weights an update made
 * non-finite although its loss was finite (seen at the end of the epoch). The message names the epoch and the batch
 * (from 0, as the callbacks count, with its ordinal: "batch 1 (the 2nd of 5)"). */
export class NonFiniteLossError extends Error {
  readonly name: "NonFiniteLossError";
  /** the epochs that ended before */
  readonly history: History;
  /** false when the trainable weights hold NaN or infinity (an update of an absurd learning rate overflowed; the
   * message names them): predict and evaluate would use them and setState(getState()) refuses them, so restore a
   * saved state (setState(stateFromBytes(saved))) or load the bundle again. true: the last finite step's weights
   * were kept. */
  readonly weightsFinite: boolean;
}

export interface PredictOptions {
  /** examples per session run (memory stays bounded); 1024 by default, as Python's */
  batchSize?: number;
  /** a classifier's probabilities instead of its classes (predictSoftly) */
  probabilities?: boolean;
}

export class Trainer {
  /** Use Trainer.load: `new Trainer()` throws. */
  private constructor();
  /** Rejects with a TypeError for an `ort` that is not the onnxruntime-node / onnxruntime-web module, and with an
   * Error naming the file or URL for a source that is not a bundle: a missing or unreadable file (the cause kept
   * as `cause`), a bundle.json that is not JSON or of another format, an .onnx that ONNX Runtime cannot load or
   * whose inputs and outputs are not the ones bundle.json names; with an Error naming options.sessionOptions when
   * ONNX Runtime opens the files with the default options but not with those (an execution provider the package or
   * machine lacks); with a TypeError for an option it does not take. Nothing stays open then. */
  static load(ort: unknown, source: BundleSource, options?: LoadOptions): Promise<Trainer>;
  readonly metadata: BundleMetadata;
  readonly stepCount: number;
  /** The rate of the next update. Under a schedule (the bundle's, or options.schedule): schedule(stepCount), as
   * Python's model.learning_rate, and the setter throws a TypeError (as Python refuses it; load with
   * {schedule: null} to set rates yourself). Otherwise a finite number >= 0 that float32 holds (<= 3.4e38): the
   * setter throws a TypeError or RangeError naming any other value. A step uses the rate set when it was called
   * (under a schedule, the schedule's at the updates made when it runs). A rate that large is taken (as Keras and
   * Python take it), but its first update may overflow the weights: fit's NonFiniteLossError then says so
   * (weightsFinite false). */
  learningRate: number;
  /** The schedule applied before each update, as Python's repr names it
   * ("ExponentialDecay(initial_learning_rate=0.1, decay_steps=1, ...)", or "options.schedule"); null for none. */
  readonly schedule: string | null;
  /** The rate of the update after `step` updates (the schedule's, or the rate set); throws a RangeError for a
   * step that is not a whole number >= 0. */
  learningRateAt(step: number): number;
  /** Rejects with a TypeError (an argument of the wrong type) or a RangeError (a value out of range: a label,
   * a token id, a count) naming the argument, the position and the value, before anything runs or changes.
   * Calls made while others run are queued: each runs after the previous ones, on the weights they left
   * (`Promise.all` over batches trains on every batch, in call order). Do not change x or labels until it settles. */
  step(x: Batch, labels: Labels): Promise<{ loss: number; logits: Float32Array }>;
  /** Queued after the steps already called. accuracy is Python's "accuracy" metric: the argmax for class
   * indices; for float targets, each unit on its target's side of 0.5 (of 0 when the outputs are logits) for
   * binary cross-entropy or a one-unit output (a regression's too, as in Python), else the argmax against the
   * target's argmax; per position for a class per position (a tagger's [steps, classes]); always given. The compiled metrics onnxtrain-js computes (`metrics`) follow under their keys
   * ({loss, logits, accuracy, mae} for metrics=["mae"]), as Python's evaluate(return_dict=True) gives them. */
  evaluate(
    x: Batch,
    labels: Labels,
  ): Promise<{ loss: number; logits: Float32Array; accuracy: number; [metric: string]: number | Float32Array }>;
  /** The keys of the compiled metrics fit and evaluate report, in bundle.json's order (["accuracy"] for a bundle
   * written before it listed them). */
  readonly metrics: string[];
  /** The compiled metrics onnxtrain-js does not compute (AUC, Precision, F1Score, functions of one's own, weighted
   * metrics): left out of History and evaluate; console.warn names them once per trainer. */
  readonly skippedMetrics: string[];
  /** Set true (from a callback) to stop fit after the current batch, as TF.js' model.stopTraining; fit sets it
   * false when it starts and true when a callback returns false. */
  stopTraining: boolean;
  /** Keras' / TF.js' fit: x and labels as step takes them (x holds every example, one after the other; a model
   * of several inputs takes one array per input), checked and converted whole before the first step (rejecting
   * as step does, naming the argument and position). Each batch is one queued step, awaited; callbacks are
   * awaited. Rejects with NonFiniteLossError when a loss is not finite (weights of the last finite step kept),
   * and with an Error while another fit runs on the trainer. Steps called by other code during fit run between
   * its batches. */
  fit(x: Batch, labels: Labels, options?: FitOptions): Promise<History>;
  /** The current weights' predictions (the eval graph, queued after the steps already called, in batches of
   * batchSize), decided by the bundle's loss as Python's InferenceModel.predict decides: a class index per example
   * (Int32Array) for the softmax cross-entropies; 0 or 1 per output unit (Int32Array, examples one after the other)
   * for binary cross-entropy (above 0.5, or 0 on logits); the raw outputs (Float32Array, examples one after the
   * other) for any other loss. With {probabilities: true}: predictSoftly's. */
  predict(x: Batch, options?: PredictOptions & { probabilities?: false }): Promise<Int32Array | Float32Array>;
  predict(x: Batch, options: PredictOptions & { probabilities: true }): Promise<Float32Array>;
  predict(x: Batch, options?: PredictOptions): Promise<Int32Array | Float32Array>;
  /** A classifier's probabilities, examples one after the other: softmax for the softmax cross-entropies, the
   * output (sigmoid of the logits, when trained on logits) for binary cross-entropy. Rejects with an Error for
   * any other loss. */
  predictSoftly(x: Batch, options?: { batchSize?: number }): Promise<Float32Array>;
  getWeights(): Map<string, Float32Array>;
  /** Set some or all parameters (getWeights' names: trainable, layer state, frozen) from a Map or an object of
   * values, as Keras' set_weights: the optimizer state, the step and the learning rate stay as they are (setState
   * sets those too). Throws naming the tensor for a name that is not a parameter (optimizer state and the step:
   * use setState), another size, or a value that is not finite float32; nothing changes then. Throws while steps
   * are running. */
  setWeights(weights: Map<string, ArrayLike<number>> | Record<string, ArrayLike<number>>): void;
  /** The state after the steps that have settled, with step and learning rate. */
  getState(): TrainerState;
  /** Throws (and changes nothing) for what is not a state of this model: a missing, unknown or resized tensor,
   * a weight that is not finite float32 (naming the tensor and index), a step that is not a whole number >= 0,
   * a bad learning rate; and while steps are running. */
  setState(state: TrainerState): void;
  /** state.bin's layout (Python's onnxtrain.bundle.unpack_state reads it) and a 24-byte trailer: a magic, a
   * fingerprint of this model's layout and the learning rate. */
  stateBytes(): Uint8Array;
  /** Any Uint8Array view (a Node.js Buffer from readFileSync, a subarray) or ArrayBuffer. Throws a RangeError
   * naming the length received and expected for bytes of another model. */
  stateFromBytes(bytes: Uint8Array | ArrayBuffer): TrainerState;
  exportModel(): Uint8Array;
  /** Releases the sessions after the steps already called; idempotent. step and evaluate reject afterwards. */
  release(): Promise<void>;
}

/** An ImageData (ctx.getImageData(...)), or an object with its data, width and height. */
export interface ImageDataLike {
  readonly data: Uint8ClampedArray | Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Canvas pixels as a model input of `channels` channels reads them: a Uint8Array (integer pixels: the model's input
 * scale divides them as any Uint8Array), one image after another, channels last. `images`: an ImageData, a list of
 * them, or RGBA bytes (4 per pixel). For 1 channel, gray is "luminance" (the default: Pillow's convert("L"),
 * (19595 R + 38470 G + 7471 B + 32768) >> 16, alpha ignored) or "alpha" (a drawing on a transparent canvas); 3 keeps
 * R, G, B; 4 keeps RGBA. Throws a RangeError for other channels or gray, a TypeError for what is not RGBA bytes.
 * step, evaluate, fit and predict refuse an ImageData, and a Uint8ClampedArray of 4 values per pixel of whole images
 * for an image input of 1 or 3 channels ([H, W, C], [H, W] or a flat square; 8x8 pixels or more), which would be
 * read as 4 or 4/3 times as many examples, saying to pass this. */
export function imagePixels(
  images: ImageDataLike | Uint8ClampedArray | Uint8Array | ImageDataLike[],
  channels: 1 | 3 | 4,
  options?: { gray?: "luminance" | "alpha" },
): Uint8Array;

export const FORMAT: "onnxtrain.training_bundle/1";
export function readBundle(source: BundleSource): Promise<{
  metadata: BundleMetadata;
  trainStep: Uint8Array;
  evaluation: Uint8Array;
  model: Uint8Array;
  state: Uint8Array;
  /** a file's path or URL, as messages name it */
  where(name: string): string;
}>;
/** The tensors (and the learning rate stateBytes writes) of state bytes of the layout `index` gives; throws for
 * bytes of another length or another model's trailer. Any Uint8Array view (Node.js Buffer) or ArrayBuffer. */
export function readState(
  bytes: Uint8Array | ArrayBuffer,
  index: TensorEntry[],
): { tensors: Map<string, Float32Array | BigInt64Array>; learningRate: number | undefined };
export function unpackState(bytes: Uint8Array | ArrayBuffer, index: TensorEntry[]): Map<string, Float32Array | BigInt64Array>;
/** state.bin's bytes for `tensors`; with the trailer stateBytes writes when `learningRate` is given. */
export function packState(
  tensors: Map<string, Float32Array | BigInt64Array>,
  index: TensorEntry[],
  learningRate?: number,
): Uint8Array;
export function writeInitializers(
  model: Uint8Array,
  weights: Map<string, Float32Array> | Record<string, Float32Array>,
): Uint8Array;
export function readInitializers(model: Uint8Array): Map<string, Float32Array>;

/** The ONNX Runtime optimizers onnxtrain's sessions run without: ["Pad_Fusion"] (it folds a ZeroPadding2D into the
 * next pool's own padding, which MaxPool fills with -inf: other numbers than the model's). */
export const DISABLED_OPTIMIZERS: readonly string[];
/** `options` for ort.InferenceSession.create with DISABLED_OPTIMIZERS added to the optimizers its `extra`
 * disables ("optimization.disable_specified_optimizers", flat or nested); everything else kept. Open an exported
 * model.onnx (exportModel's bytes) with it to get Python's numbers. Throws a TypeError for an options or extra
 * that is not an object. */
export function sessionOptions(options?: Record<string, unknown>, argument?: string): Record<string, unknown>;
