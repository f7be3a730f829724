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
   * 1/n), as in Python; float arrays and plain numbers are used as they are; token ids are never scaled */
  input_scale: number;
  class_names: string[] | null;
  loss: string;
  optimizer: Record<string, unknown> & { name: string; learning_rate: number };
  learning_rate: number;
  step_name: string;
  learning_rate_name: string;
  updated_prefix: string;
  trainable: string[];
  layer_state: string[];
  frozen: string[];
  optimizer_state: { name: string; parameter: string; slot: string; scale: number }[];
  /** "engine": the optimizer state of the Python run; "fresh": initial state (the ort-training engine's) */
  state_source: "engine" | "fresh";
  /** parameter name -> initializer name in model.onnx */
  export_initializers: Record<string, string>;
  tensors: TensorEntry[];
}

/** A URL (browser; http(s) and file: in Node.js), a folder path (Node.js), or a reader of the bundle's files. */
export type BundleSource = string | URL | { read(name: string): Promise<ArrayBuffer | Uint8Array> };

/** One input's values, examples one after the other: a typed array or an array of numbers (a flat array of
 * numbers is one input's values, never one value per input). Float arrays (Float32Array, Float64Array, plain numbers)
 * are used as they are; integer typed arrays (Uint8Array pixels, Int32Array, ...) are scaled by the model's input
 * scale, unless the input holds token ids (bundle.json inputs[].token_ids) or is an int64 / int32 input, which take
 * whole numbers (a BigInt64Array, or bigints) and are never scaled. */
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
  | ArrayLike<number>
  /** a plain array, or an array-like object ({length, 0: ...}) read as one; flat, never rows (number[][]) */
  | ArrayLike<number | bigint>;

/** One input's values for a model of one input, or an array of them, one per model input in the model's order. */
export type Batch = InputValues | InputValues[];

/** Class indices (int64 labels: whole numbers in [0, classes)) or finite float targets, flat, one example after
 * the other; an array-like object is read as an array. */
export type Labels = BigInt64Array | Int32Array | Uint8Array | Float32Array | Float64Array | ArrayLike<number | bigint>;

export interface TrainerState {
  /** updates made so far; setState takes it, when given, in place of the step tensor's value (set 0 to restart
   * the optimizer's bias correction); a whole number >= 0 */
  step?: number;
  /** the learning rate; undefined in a state read from bytes without it (a bundle's state.bin), and then
   * setState keeps the trainer's */
  learningRate?: number;
  /** every tensor the train step carries, plus frozen parameters and `step`; weights must be finite float32 */
  tensors: Map<string, Float32Array | Float64Array | BigInt64Array | number[]>;
}

export interface LoadOptions {
  /** passed to ort.InferenceSession.create (executionProviders, graphOptimizationLevel, ...) */
  sessionOptions?: Record<string, unknown>;
}

export class Trainer {
  /** Use Trainer.load: `new Trainer()` throws. */
  private constructor();
  /** Rejects with a TypeError for an `ort` that is not the onnxruntime-node / onnxruntime-web module, and with an
   * Error naming the file or URL for a source that is not a bundle: a missing or unreadable file (the cause kept
   * as `cause`), a bundle.json that is not JSON or of another format, an .onnx that ONNX Runtime cannot load or
   * whose inputs and outputs are not the ones bundle.json names. Nothing stays open then. */
  static load(ort: unknown, source: BundleSource, options?: LoadOptions): Promise<Trainer>;
  readonly metadata: BundleMetadata;
  readonly stepCount: number;
  /** A finite number >= 0 that float32 holds (<= 3.4e38): the setter throws a TypeError or RangeError naming
   * any other value. A step uses the rate set when it was called. */
  learningRate: number;
  /** Rejects with a TypeError (an argument of the wrong type) or a RangeError (a value out of range: a label,
   * a token id, a count) naming the argument, the position and the value, before anything runs or changes.
   * Calls made while others run are queued: each runs after the previous ones, on the weights they left
   * (`Promise.all` over batches trains on every batch, in call order). Do not change x or labels until it settles. */
  step(x: Batch, labels: Labels): Promise<{ loss: number; logits: Float32Array }>;
  /** Queued after the steps already called. accuracy is Python's "accuracy" metric: the argmax for class
   * indices; for float targets, each unit on its target's side of 0.5 (of 0 when the outputs are logits) for
   * binary cross-entropy or a one-unit output (a regression's too, as in Python), else the argmax against the
   * target's argmax. */
  evaluate(x: Batch, labels: Labels): Promise<{ loss: number; logits: Float32Array; accuracy: number }>;
  getWeights(): Map<string, Float32Array>;
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
