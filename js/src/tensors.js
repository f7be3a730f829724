// Tensors as one input's (or the labels') values: a tf.js tensor (anything with dataSync() and shape) or an
// onnxruntime Tensor ({data, dims, type}, as new ort.Tensor("float32", data, dims) makes), its shape checked against
// one example's: [N, ...the example's shape] or [N, values per example]; a channels-first shape is named as such.

/** @typedef {{dataSync(): ArrayLike<number | bigint>, shape: number[], dtype?: string}} TfTensor */
/** @typedef {{data: ArrayLike<number | bigint>, dims: readonly number[], type: string, location?: string}} OrtTensor */

const product = (shape) => shape.reduce((n, d) => n * d, 1);
const sameShape = (a, b) => a.length === b.length && a.every((d, k) => d === b[k]);

// The element types whose data is the typed array of those numbers, read by src/inputs.js' rule as typed arrays
// are (floats as they are, integers scaled or taken whole). ort's bool and float16 hold Uint8Array / Uint16Array
// data that is not the values; int4 / uint4 pack two values a byte.
const NUMBER_TYPES = new Set(
  ["float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"],
);

/** A tf.Tensor, or anything with its dataSync() and shape. */
const isTfTensor = (value) =>
  typeof value === "object" && value !== null && typeof value.dataSync === "function" && Array.isArray(value.shape);

/** An onnxruntime Tensor, or anything with its data, dims and type (`data` is not read here: a GPU tensor's throws). */
const isOrtTensor = (value) =>
  typeof value === "object" && value !== null && Array.isArray(value.dims) && typeof value.type === "string" &&
  "data" in value;

/** A tf.Tensor or an onnxruntime Tensor (or an object with the same members). */
export const isTensor = (value) => isTfTensor(value) || isOrtTensor(value);

/**
 * A tensor's shape: a tf.Tensor's shape, an ort.Tensor's dims.
 * @param {TfTensor | OrtTensor} tensor
 * @returns {number[]}
 */
export const tensorShape = (tensor) =>
  Array.from(isOrtTensor(tensor) ? /** @type {OrtTensor} */ (tensor).dims : /** @type {TfTensor} */ (tensor).shape);

/**
 * The values a tensor holds, read after its element type (where it says one) and place are checked: numbers on the
 * CPU. A tf.Tensor's through dataSync(), an ort.Tensor's data.
 * @param {TfTensor | OrtTensor} tensor
 * @param {string} argument how messages name the tensor
 * @returns {ArrayLike<number | bigint>}
 */
export function tensorData(tensor, argument) {
  const ort = isOrtTensor(tensor);
  const type = ort ? /** @type {OrtTensor} */ (tensor).type : /** @type {TfTensor} */ (tensor).dtype;
  if (type !== undefined && !NUMBER_TYPES.has(type)) {
    const fix = type === "bool" ? "; pass a mask as float32 (1 for true)" : type === "string" ? "" : "; convert it to float32 first";
    throw new TypeError(
      `${argument} expects a tensor of numbers (float32, float64 or an integer type). ` +
        `Received: a tensor of type '${type}'${fix}`,
    );
  }
  const location = ort ? /** @type {OrtTensor} */ (tensor).location : undefined;
  if (location !== undefined && location !== "cpu" && location !== "cpu-pinned") {
    const received =
      location === "none"
        ? "a disposed tensor (location 'none')"
        : `a tensor on '${location}'; download it first: new ort.Tensor(t.type, await t.getData(), t.dims)`;
    throw new TypeError(`${argument} expects a tensor whose data is on the CPU. Received: ${received}`);
  }
  const shape = tensorShape(tensor);
  const data = ort ? /** @type {OrtTensor} */ (tensor).data : /** @type {TfTensor} */ (tensor).dataSync();
  if (data?.length !== product(shape)) {
    const [source, dims] = ort ? ["data", "dims"] : ["dataSync()", "shape"];
    throw new RangeError(
      `${argument} expects ${source} to give ${product(shape)} values (${dims} [${shape}]). Received: ${data?.length}`,
    );
  }
  return data;
}

/**
 * Words for one example's values laid out as `given` for a model reading `example`: a channels-first layout
 * ([C, H, W] for [H, W, C]) moved, which a reshape cannot do; "" for any other layout.
 * @param {number[]} given
 * @param {number[]} example
 * @param {string} [transpose] more words: how the tensor given moves the axis, where it can
 */
export function channelsFirstHint(given, example, transpose = "") {
  const channels = example.at(-1);
  // one channel first is already in the model's order (a reshape is the fix); several are interleaved
  if (example.length < 2 || channels === 1 || !sameShape(given, [channels, ...example.slice(0, -1)])) return "";
  return (
    "; the examples look channels-first, and the model reads channels last: move the channel axis last (a reshape " +
    `would scramble the images)${transpose}`
  );
}

/**
 * The values of a tensor of shape [N, ...example] or [N, values per example] ([N, 28, 28, 1] or [N, 784] for an
 * input of shape [28, 28, 1]; [N] or [N, 1] for one class index per example), checked and read.
 * @param {TfTensor | OrtTensor} tensor
 * @param {number[]} example the shape of one example
 * @param {string} argument how messages name the tensor
 * @param {(count: number) => string} [hint] more words for a tensor of another example size
 * @param {boolean} [scalars] also take [N] where an example holds one value (Python's float targets of one unit)
 * @returns {ArrayLike<number | bigint>}
 */
export function tensorValues(tensor, example, argument, hint = () => "", scalars = false) {
  const shape = tensorShape(tensor);
  const size = product(example);
  const accepted = [example, [size], ...(scalars && size === 1 ? [[]] : [])];
  const others = [];
  if (example.length > 1) others.push(`, or [N, ${size}]`);
  if (scalars && size === 1 && example.length > 0) others.push(", or [N]");
  const expected =
    example.length === 0
      ? "a tensor of shape [N] (or [N, 1])"
      : `a tensor of shape [N, ${example}] (N examples of shape [${example}]${others.join("")})`;
  const refuse = (more = "") =>
    new RangeError(`${argument} expects ${expected}. Received: a tensor of shape [${shape}]${more}`);
  if (shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw refuse();
  const given = shape.slice(1);
  if (product(given) !== size) {
    const single = sameShape(shape, example) ? `; for one example, add the batch axis: shape [${[1, ...example]}]` : "";
    throw refuse(hint(product(given)) + single);
  }
  if (!accepted.some((s) => sameShape(given, s))) {
    const axes = [0, ...shape.slice(2).map((_, k) => k + 2), 1];
    const transpose = isTfTensor(tensor) ? `: for a tf.Tensor, ${argument}.transpose([${axes.join(", ")}])` : "";
    const reshape = `; reshape it to [${[shape[0], ...example]}] if its values are in that order`;
    throw refuse(channelsFirstHint(given, example, transpose) || reshape);
  }
  return tensorData(tensor, argument);
}
