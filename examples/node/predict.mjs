// Predict with a model exported by onnxtrain, in Node.js with onnxruntime-node: one JSON object on stdout, with
// the predictions onnxtrain's InferenceModel.predict makes.
//
//   npm ci --ignore-scripts            # the CPU binaries ship in the package; the script only fetches CUDA ones
//   node predict.mjs model.onnx images.npy [--input-scale 0.00392156862745098]
//   node predict.mjs model.onnx image=a.npy meta=b.npy    # a model of several inputs: one .npy per input
//
// Each .npy holds a batch shaped like its model input (or one example, without the batch axis; C or Fortran
// order), checked against the input (its per-example shape and type) before anything runs, as InferenceModel
// checks it: NaN, infinities and float64 values beyond float32's range are refused with their position and value.
// For a float32 input: float32 ('<f4') or float64 ('<f8') as the model was trained on, or integer pixels (uint8
// '|u1', ...), scaled as onnxtrain's predict scales them: by the model's `input_scale` metadata (1/255 for
// Fashion-MNIST), or by --input-scale where given (a model exported by another tool has no such metadata); a scale
// of 1/n divides by n in float32, giving exactly the floats the model was trained on. An int64 or int32 input
// (token ids) takes whole numbers, cast to its type where no value changes, never scaled; where the model's
// `onnxtrain.token_ids` metadata names the input an Embedding reads, ids outside [0, input_dim) are refused.
// A model of several inputs takes one file per input: NAME=FILE.npy, or the files in the inputs' order.
//
// Prints {inputs, outputs, predictions, probabilities}: `inputs` and `outputs` the graph's names; `predictions`
// one per example, decided as InferenceModel.predict decides by the model's `onnxtrain.loss` metadata (the argmax
// of the last axis for softmax cross-entropy; 0 or 1 for binary cross-entropy of one unit: above 0.5, or above 0
// from logits; the output itself, as nested arrays, for any other loss and for several sigmoid units; without a
// loss, the argmax where a `probabilities` output follows the output, else the output itself); `probabilities` per
// example, as InferenceModel.predict_softly gives them (the `probabilities` output that follows `logits`, or a
// binary cross-entropy's sigmoid), null for a regression. A model of several outputs gives both as objects keyed
// by its own outputs (`kind`, `size`: not the `kind_probabilities` that follows a classifier's), each decided by
// its own loss in the metadata.
import { existsSync, readFileSync } from "node:fs";
import ort from "onnxruntime-node";

const BATCH = 1024;

// ONNX Runtime's Pad_Fusion folds a ZeroPadding2D (a zero Pad) into the next MaxPool's own pads, which MaxPool
// fills with -inf: a Conv -> ZeroPadding2D -> MaxPooling2D(padding="same") model then computes other numbers
// (microsoft/onnxruntime#21556, still so in 1.30). onnxtrain's Python sessions run without it; so does this one.
// Only that optimizer is off: graphOptimizationLevel "disabled" also gives the right numbers, twice as slowly for
// a small CNN.
const SESSION_OPTIONS = { extra: { "optimization.disable_specified_optimizers": "Pad_Fusion" } };

function readNpy(path) {
  const bytes = readFileSync(path);
  if (bytes.toString("latin1", 0, 6) !== "\x93NUMPY") throw new Error(`${path} is not a .npy file`);
  const major = bytes[6];
  const headerStart = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const header = bytes.toString("latin1", headerStart, headerStart + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((d) => d.trim()).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = bytes.byteOffset + headerStart + headerLength;
  const types = {
    "<f4": [Float32Array, 4],
    "<f8": [Float64Array, 8],
    "|u1": [Uint8Array, 1],
    "|i1": [Int8Array, 1],
    "<u2": [Uint16Array, 2],
    "<i2": [Int16Array, 2],
    "<u4": [Uint32Array, 4],
    "<i4": [Int32Array, 4],
    "<i8": [BigInt64Array, 8],
  };
  if (!(descr in types)) {
    throw new Error(`${path}: dtype ${descr} is not supported; save float32, float64, integer pixels, or int64/int32 token ids`);
  }
  const [Type, size] = types[descr];
  if (bytes.length < headerStart + headerLength + size * count) {
    throw new Error(`${path} is truncated: its header says shape (${shape}) of ${descr}, ${size * count} bytes`);
  }
  const data = new Type(bytes.buffer.slice(start, start + size * count));
  return { shape, descr, data: fortran ? fortranToC(data, shape) : data };
}

// The values of a Fortran-ordered (column-major) array in C (row-major) order, as numpy's np.load hands them to
// Python: the first index varies fastest in `values`, the last fastest in the result.
function fortranToC(values, shape) {
  if (shape.length < 2) return values;
  const strides = [];
  let stride = 1;
  for (const d of shape) {
    strides.push(stride);
    stride *= d;
  }
  const out = new values.constructor(values.length);
  const index = new Array(shape.length).fill(0);
  let from = 0; // the Fortran offset of `index`, kept up to date as it counts in C order
  for (let i = 0; i < out.length; i++) {
    out[i] = values[from];
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++index[k] < shape[k]) {
        from += strides[k];
        break;
      }
      from -= (shape[k] - 1) * strides[k];
      index[k] = 0;
    }
  }
  return out;
}

// The string properties of an ONNX model (ModelProto.metadata_props, field 14: {key = 1, value = 2}), read with
// a minimal protobuf walk: onnxruntime-node's InferenceSession does not expose them.
function onnxMetadata(bytes) {
  let pos = 0;
  const varint = (end) => {
    let value = 0;
    for (let shift = 0; pos < end; shift += 7) {
      const byte = bytes[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error("truncated protobuf varint");
  };
  const fields = (start, end, visit) => {
    pos = start;
    while (pos < end) {
      const tag = varint(end);
      const wireType = tag % 8;
      if (wireType === 0) varint(end);
      else if (wireType === 1) pos += 8;
      else if (wireType === 5) pos += 4;
      else if (wireType === 2) {
        const length = varint(end);
        const at = pos;
        pos += length;
        visit(Math.floor(tag / 8), at, at + length);
      } else throw new Error(`unexpected protobuf wire type ${wireType}`);
      if (pos > end) throw new Error("truncated protobuf field");
    }
  };
  const metadata = {};
  fields(0, bytes.length, (field, start, end) => {
    if (field !== 14) return;
    const entry = {};
    const after = pos;
    fields(start, end, (inner, from, to) => {
      entry[inner] = bytes.toString("utf8", from, to);
    });
    pos = after;
    if (entry[1] !== undefined) metadata[entry[1]] = entry[2] ?? "";
  });
  return metadata;
}

// onnxtrain's rule (onnxtrain/arrays.py scale_integers): 1/n for a whole n divides by n, else multiply, in float32.
function scalePixels(pixels, scale) {
  const n = Math.round(1 / scale);
  if (2 ** -25 < scale && scale < 1 && n > 1 && n <= 2 ** 24 && (scale === 1 / n || scale === Math.fround(1 / n))) {
    return Float32Array.from(pixels, (v) => Number(v) / n); // one double division, rounded once: float32's own quotient
  }
  const factor = Math.fround(scale);
  return Float32Array.from(pixels, (v) => Number(v) * factor);
}

// "0, 2" for flat index 2 of shape [n, 3]: the position onnxtrain's messages give (x[0, 2]).
function position(flat, shape) {
  const index = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    index.unshift(flat % shape[k]);
    flat = Math.floor(flat / shape[k]);
  }
  return index.join(", ");
}

// "28, 28, 1": an input's dims after the batch, N for a named one.
const exampleDims = (input) => input.shape.slice(1).map((d) => (typeof d === "number" && d >= 0 ? d : "N")).join(", ");

// The batch shape of `images` for the model's input: its own shape for a batch of examples of the per-example
// shape the input takes (its dims after the batch; a named dim takes any size), or [1, ...shape] for one example
// of that shape (`single`), as InferenceModel takes one.
function batchShape(images, input, path) {
  const expected = input.shape.slice(1);
  const fitsExample = (given) =>
    given.length === expected.length && expected.every((d, k) => typeof d !== "number" || d < 0 || d === given[k]);
  if (fitsExample(images.shape)) return { shape: [1, ...images.shape], single: true };
  if (images.shape.length === 0 || images.shape[0] === 0 || !fitsExample(images.shape.slice(1))) {
    const shown = exampleDims(input);
    throw new Error(
      `${path} expects a batch of examples of shape [${shown}] for input '${input.name}' of the model ` +
        `(shape [N, ${shown}]). Received: shape [${images.shape.join(", ")}]`,
    );
  }
  return { shape: images.shape, single: false };
}

// A value as Python's repr writes it in onnxtrain's messages: nan, inf, -inf, 1e+39.
function pythonRepr(value) {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return String(value);
}

// Refuse the first value of the float32 `data` that is not finite, as onnxtrain's InferenceModel refuses it
// (onnxtrain/arrays.py refuse_non_finite): NaN and infinities, or a finite value as given (`givenAt(i)`: a float64,
// or integer pixels that `scale` takes beyond float32's range). ONNX Runtime would run on them and give NaN probabilities.
function checkFinite(data, givenAt, shape, path, scale) {
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad < 0) return;
  const value = givenAt(bad);
  const where = `${path}[${position(bad, shape)}]=${pythonRepr(value)}`;
  if (Number.isFinite(value)) {
    const scaled = scale !== null && scale !== 1 ? ` times input_scale=${scale}` : "";
    throw new Error(
      `${path} expects values within float32's range (|x| <= 3.4e38), which the model computes in. ` +
        `Received: ${where}${scaled}`,
    );
  }
  throw new Error(`${path} expects finite values. Received: ${where}`);
}

// onnxtrain's rules for integer pixels (onnxtrain/arrays.py check_pixel_range, warn_of_raw_pixels): a model of
// input_scale 1/255 (trained on 8-bit pixels) refuses integers outside [0, 255], and uint8 into a model of
// input_scale 1 (trained on floats) is read raw, with a warning on stderr.
function checkPixels(pixels, descr, scale, shape, path) {
  if (descr === "|u1") {
    if (scale === 1) {
      console.warn(
        `warning: ${path} is uint8 (pixels 0-255) and the model's input_scale is 1, so the model reads the raw ` +
          "values (0-255). If it was trained on values in [0, 1], pass --input-scale 0.00392156862745098 (1/255).",
      );
    }
    return;
  }
  if (Math.round(1 / scale) !== 255) return;
  const bad = pixels.findIndex((v) => v < 0 || v > 255);
  if (bad < 0) return;
  const fix = descr.endsWith("u2")
    ? "16-bit pixels need 8 bits first: save x >> 8 (uint8), or float32 values x / 65535"
    : "Bring them to [0, 255] first (16-bit pixels: x >> 8), or save float32 values, which are used as they are";
  throw new Error(
    `${path} expects integer pixels in [0, 255]: the model's input_scale is 1/255 (it divides integer inputs by ` +
      `255, as it was trained on 8-bit pixels). Received: ${path}[${position(bad, shape)}]=${pixels[bad]}. ${fix}.`,
  );
}

// Ids an Embedding reads: whole numbers in [0, input_dim), checked before ONNX Runtime sees them (its Gather
// fails on an id past the table with an opaque error, and reads row input_dim - k for -k).
function checkTokenIds(values, shape, ids, path) {
  const high = ids.input_dim - 1;
  let first = -1;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const bad = typeof v === "bigint" ? v < 0n || v > BigInt(high) : !(Number.isInteger(v) && v >= 0 && v <= high);
    if (bad) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return;
  const others = count > 1 ? ` (${count} invalid ids in all)` : "";
  throw new Error(
    `${path} expects integer token ids in [0, ${high}] for Embedding layer '${ids.layer}' (input_dim=${ids.input_dim}). ` +
      `Received: ${path}[${position(first, shape)}]=${values[first]}${others}`,
  );
}

// An integer input's tensor data: the values as its type (int64: BigInt64Array, int32: Int32Array), refusing any
// that would change (fractional, or outside the type's range), as onnxtrain's InferenceModel casts them.
function integerData(values, shape, type, path) {
  if (type === "int64" && values instanceof BigInt64Array) return values;
  if (type === "int32" && values instanceof Int32Array) return values;
  const [low, high] = type === "int64" ? [-(2n ** 63n), 2n ** 63n - 1n] : [-(2n ** 31n), 2n ** 31n - 1n];
  const out = type === "int64" ? new BigInt64Array(values.length) : new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const whole = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : null;
    if (whole === null || whole < low || whole > high) {
      throw new Error(
        `${path} expects whole numbers in [${low}, ${high}] for the model's ${type} input (token ids). ` +
          `Received: ${path}[${position(i, shape)}]=${v}`,
      );
    }
    out[i] = type === "int64" ? whole : Number(whole);
  }
  return out;
}

// --- the command line: the model, one .npy per input (NAME=FILE or in the inputs' order), --input-scale S

const USAGE = "usage: node predict.mjs model.onnx images.npy [--input-scale S] (several inputs: NAME=FILE.npy ...)";

function parseArguments(argv) {
  const paths = [];
  let scaleText;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--input-scale") {
      scaleText = argv[++i];
      if (scaleText === undefined) throw new Error(`--input-scale expects a number (1/255: 0.00392156862745098). ${USAGE}`);
    } else if (argv[i].startsWith("--")) {
      throw new Error(`predict.mjs takes the option --input-scale S only. Received: ${argv[i]}. ${USAGE}`);
    } else {
      paths.push(argv[i]);
    }
  }
  const [modelPath, ...files] = paths;
  if (!modelPath || files.length === 0) throw new Error(USAGE);
  return { modelPath, files, scaleText };
}

// "image_feats [N, 8] float32, meta [N, 4] float32": the model's inputs, for messages.
const describeInputs = (inputs) => inputs.map((i) => `${i.name} [N, ${exampleDims(i)}] ${i.type}`).join(", ");

// The file of each model input: NAME=FILE names its input (unless a file of that whole name exists), the other
// arguments are taken in the inputs' order.
function filesOfInputs(files, inputs, modelPath) {
  const names = inputs.map((i) => i.name);
  const named = new Map();
  const inOrder = [];
  for (const file of files) {
    const [, name, path] = /^([^=]+)=(.+)$/.exec(file) ?? [];
    if (name === undefined || existsSync(file)) {
      inOrder.push(file);
    } else if (!names.includes(name)) {
      throw new Error(`${modelPath} has no input '${name}' (given as ${file}). Its inputs: ${describeInputs(inputs)}`);
    } else if (named.has(name)) {
      throw new Error(`input '${name}' was given twice: ${named.get(name)} and ${path}`);
    } else {
      named.set(name, path);
    }
  }
  const unnamed = names.filter((name) => !named.has(name));
  if (inOrder.length !== unnamed.length) {
    const example = names.map((name) => `${name}=${name}.npy`).join(" ");
    throw new Error(
      `${modelPath} expects one .npy file per input: it has ${names.length} (${describeInputs(inputs)}). Give them ` +
        `as NAME=FILE or in that order: node predict.mjs ${modelPath} ${example}. Received: ${files.length} ` +
        `file${files.length === 1 ? "" : "s"} (${files.join(", ")})`,
    );
  }
  unnamed.forEach((name, k) => named.set(name, inOrder[k]));
  return names.map((name) => named.get(name));
}

// One input's tensor from the .npy at `path`, checked and converted as InferenceModel converts it.
function inputTensor(path, input, metadata, scaleText, modelPath) {
  const images = readNpy(path);
  const { shape, single } = batchShape(images, input, path);
  let ids = null; // the Embedding table the input feeds, where the model's metadata says
  if (metadata["onnxtrain.token_ids"] !== undefined) ids = JSON.parse(metadata["onnxtrain.token_ids"])[input.name] ?? null;
  let data = images.data;
  const type = input.type;
  if (type === "float32" && images.descr[1] === "f") {
    const given = data;
    data = given instanceof Float32Array ? given : Float32Array.from(given); // float64 beyond float32's range: inf
    checkFinite(data, (i) => given[i], shape, path, null); // before the ids: a NaN is no bad id, as in Python
  }
  if (ids !== null) checkTokenIds(data, shape, ids, path);
  if (type === "int64" || type === "int32") {
    data = integerData(data, shape, type, path);
  } else if (type !== "float32") {
    throw new Error(`${modelPath}: input '${input.name}' has type ${type}; this example feeds float32, int64 and int32 inputs`);
  } else if (images.descr[1] === "f" || ids !== null) {
    data = data instanceof Float32Array ? data : Float32Array.from(data, Number); // token ids: as they are
  } else {
    const text = scaleText ?? metadata.input_scale;
    if (text === undefined) {
      const kind = data.constructor.name.replace("Array", "").toLowerCase();
      throw new Error(`${kind} pixels need --input-scale: ${modelPath} has no input_scale metadata (not exported by onnxtrain?)`);
    }
    const scale = Number(text);
    if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`the input scale must be a positive number, got ${text}`);
    const pixels = data;
    checkPixels(pixels, images.descr, scale, shape, path);
    data = scalePixels(pixels, scale);
    checkFinite(data, (i) => Number(pixels[i]), shape, path, scale); // a huge --input-scale overflows
  }
  return { name: input.name, type, data, shape, single, path };
}

// --- the outputs: which the model's own are, and how each is decided (onnxtrain/inference.py)

const SOFTMAX_LOSSES = new Set(["softmax_cross_entropy_with_logits", "sparse_categorical_crossentropy", "categorical_crossentropy"]);
// the other losses of onnxtrain.losses, whose outputs predict gives as they are; a loss of one's own (unknown
// here, as to an InferenceModel that has not imported it) counts as none
const VALUE_LOSSES = new Set([
  "hinge", "squared_hinge", "mse", "mae", "huber", "kl_divergence", "poisson", "log_cosh",
  "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "cosine_similarity",
]);

// How a loss config ({name, from_logits, ...}) decides (Loss.decide) and gives probabilities (Loss.probabilities):
// null for a loss this script does not know.
function lossRule(config) {
  if (SOFTMAX_LOSSES.has(config?.name)) return { decide: "argmax", soft: "softmax" };
  if (config?.name === "binary_crossentropy") {
    return config.from_logits ? { decide: "threshold", at: 0, soft: "sigmoid" } : { decide: "threshold", at: 0.5, soft: "values" };
  }
  return VALUE_LOSSES.has(config?.name) ? { decide: "values", soft: null } : null;
}

// Each of the model's own outputs: {name, output (the graph output decided on), rule, companion (the graph output
// of its probabilities, or null)}, as InferenceModel.predict and predict_softly take them.
function outputPlans(metadata, outputNames) {
  const text = metadata["onnxtrain.loss"];
  let config = null;
  try {
    config = text === undefined ? null : text.startsWith("{") ? JSON.parse(text) : { name: text };
  } catch {
    config = null; // not JSON: as a loss unknown
  }
  const companion = (name) => (outputNames.includes(name) ? name : null);
  // not the `probabilities` after `logits`, nor the `<name>_probabilities` after an output of a model of several
  const companions = new Set(outputNames.map((name) => `${name}_probabilities`));
  if (outputNames.includes("logits")) companions.add("probabilities");
  const own = outputNames.filter((name) => !companions.has(name));
  if (own.length <= 1) {
    const output = outputNames.includes("logits") ? "logits" : outputNames[0];
    const probabilities = output === "logits" ? companion("probabilities") : null;
    return [{ name: output, output, rule: lossRule(config), companion: probabilities }];
  }
  const losses = new Map(config?.name === "output_losses" ? (config.outputs ?? []).map((o) => [o.name, o.loss]) : []);
  return own.map((name) => ({ name, output: name, rule: lossRule(losses.get(name)), companion: companion(`${name}_probabilities`) }));
}

const product = (dims) => dims.reduce((a, b) => a * b, 1);

// The flat `values` of one example as nested arrays of shape `dims` (one number for an empty shape).
function nested(values, dims) {
  if (dims.length === 0) return values[0];
  const size = product(dims.slice(1));
  return Array.from({ length: dims[0] }, (_, i) => nested(values.subarray(i * size, (i + 1) * size), dims.slice(1)));
}

// `f` of each run along the last axis of one example's `values` (shape `dims`), nested as `dims` without it.
function alongLastAxis(values, dims, f) {
  if (dims.length <= 1) return f(values);
  const size = product(dims.slice(1));
  return Array.from({ length: dims[0] }, (_, i) => alongLastAxis(values.subarray(i * size, (i + 1) * size), dims.slice(1), f));
}

const argmax = (values) => values.reduce((best, v, i) => (v > values[best] ? i : best), 0); // the first on ties

function softmax(values) {
  const largest = Math.max(...values);
  const e = Array.from(values, (v) => Math.exp(v - largest));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const sigmoid = (z) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

// The prediction and probabilities of example `row` for one plan, from a batch's `outputs`.
function decideExample(plan, outputs, row) {
  const example = (tensor) => {
    const dims = tensor.dims.slice(1);
    return [tensor.data.subarray(row * product(dims), (row + 1) * product(dims)), dims];
  };
  const [values, dims] = example(outputs[plan.output]);
  const companion = plan.companion === null ? null : example(outputs[plan.companion]);
  const { rule } = plan;
  let prediction;
  if (rule?.decide === "argmax") prediction = alongLastAxis(values, dims, argmax);
  else if (rule?.decide === "threshold" && dims.length === 1 && dims[0] === 1) prediction = values[0] > rule.at ? 1 : 0;
  else if (rule === null && companion !== null) prediction = alongLastAxis(...companion, argmax);
  else prediction = nested(values, dims);
  let probabilities = null;
  if (companion !== null) probabilities = nested(...companion);
  else if (rule?.soft === "softmax") probabilities = alongLastAxis(values, dims, softmax);
  else if (rule?.soft === "sigmoid") probabilities = nested(Float64Array.from(values, sigmoid), dims);
  else if (rule?.soft === "values") probabilities = nested(values, dims);
  return { prediction, probabilities };
}

async function main(argv) {
  const { modelPath, files, scaleText } = parseArguments(argv);
  const model = readFileSync(modelPath);
  const metadata = onnxMetadata(model);
  const session = await ort.InferenceSession.create(model, SESSION_OPTIONS);
  const paths = filesOfInputs(files, session.inputMetadata, modelPath);
  const inputs = session.inputMetadata.map((input, k) => inputTensor(paths[k], input, metadata, scaleText, modelPath));
  const count = inputs[0].shape[0];
  if (inputs.some((i) => i.shape[0] !== count || i.single !== inputs[0].single)) {
    const each = inputs.map((i) => `${i.path}: ${i.single ? "one example" : i.shape[0]} (${i.name})`).join(", ");
    throw new Error(`predict.mjs expects as many examples in every input file. Received: ${each}`);
  }
  const plans = outputPlans(metadata, session.outputNames);
  const predictions = plans.map(() => []);
  const probabilities = plans.map(() => []);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const feeds = {};
    for (const { name, type, data, shape } of inputs) {
      const size = product(shape.slice(1));
      feeds[name] = new ort.Tensor(type, data.subarray(start * size, (start + n) * size), [n, ...shape.slice(1)]);
    }
    const outputs = await session.run(feeds);
    plans.forEach((plan, k) => {
      for (let row = 0; row < n; row++) {
        const decided = decideExample(plan, outputs, row);
        predictions[k].push(decided.prediction);
        probabilities[k].push(decided.probabilities);
      }
    });
  }
  const soft = (k) => (plans[k].companion !== null || plans[k].rule?.soft ? probabilities[k] : null); // none: a regression
  const result = { inputs: session.inputNames, outputs: session.outputNames };
  if (plans.length === 1) Object.assign(result, { predictions: predictions[0], probabilities: soft(0) });
  else {
    result.predictions = Object.fromEntries(plans.map((plan, k) => [plan.name, predictions[k]]));
    result.probabilities = Object.fromEntries(plans.map((plan, k) => [plan.name, soft(k)]));
  }
  console.log(JSON.stringify(result));
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error.message ?? error);
  process.exit(1);
});
