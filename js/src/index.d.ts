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

/** A URL (browser; also http(s) in Node.js), a folder path (Node.js), or a reader of the bundle's files. */
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
  | ArrayLike<number | bigint>;

/** One input's values for a model of one input, or an array of them, one per model input in the model's order. */
export type Batch = InputValues | InputValues[];

/** Class indices (int64 labels: whole numbers in [0, classes)) or finite float targets, one row per example. */
export type Labels = BigInt64Array | Int32Array | Uint8Array | Float32Array | Float64Array | ArrayLike<number | bigint>;

export interface TrainerState {
  /** updates made so far (undefined in a state read from bytes: the step tensor holds it) */
  step: number | undefined;
  learningRate: number | undefined;
  /** every tensor the train step carries, plus frozen parameters and `step` */
  tensors: Map<string, Float32Array | BigInt64Array>;
}

export interface LoadOptions {
  /** passed to ort.InferenceSession.create (executionProviders, graphOptimizationLevel, ...) */
  sessionOptions?: Record<string, unknown>;
}

export class Trainer {
  static load(ort: unknown, source: BundleSource, options?: LoadOptions): Promise<Trainer>;
  readonly metadata: BundleMetadata;
  readonly stepCount: number;
  learningRate: number;
  /** Rejects with a TypeError (an argument of the wrong type) or a RangeError (a value out of range: a label,
   * a token id, a count) naming the argument, the position and the value, before anything runs or changes. */
  step(x: Batch, labels: Labels): Promise<{ loss: number; logits: Float32Array }>;
  evaluate(x: Batch, labels: Labels): Promise<{ loss: number; logits: Float32Array; accuracy: number | null }>;
  getWeights(): Map<string, Float32Array>;
  getState(): TrainerState;
  setState(state: TrainerState): void;
  stateBytes(): Uint8Array;
  stateFromBytes(bytes: Uint8Array): TrainerState;
  exportModel(): Uint8Array;
  release(): Promise<void>;
}

export const FORMAT: "onnxtrain.training_bundle/1";
export function readBundle(source: BundleSource): Promise<{
  metadata: BundleMetadata;
  trainStep: Uint8Array;
  evaluation: Uint8Array;
  model: Uint8Array;
  state: Uint8Array;
}>;
export function unpackState(bytes: Uint8Array, index: TensorEntry[]): Map<string, Float32Array | BigInt64Array>;
export function packState(tensors: Map<string, Float32Array | BigInt64Array>, index: TensorEntry[]): Uint8Array;
export function writeInitializers(
  model: Uint8Array,
  weights: Map<string, Float32Array> | Record<string, Float32Array>,
): Uint8Array;
export function readInitializers(model: Uint8Array): Map<string, Float32Array>;
