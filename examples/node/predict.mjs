// Predict with a model exported by onnxtrain, in Node.js with onnxruntime-node.
//
//   npm ci --ignore-scripts            # the CPU binaries ship in the package; the script only fetches CUDA ones
//   node predict.mjs model.onnx images.npy [--input-scale 0.00392156862745098]
//
// images.npy holds a batch shaped like the model's input (or one example, without the batch axis; C or Fortran
// order), checked against the model's input (its per-example shape and type) before anything runs, as onnxtrain's
// InferenceModel checks it: NaN, infinities and float64 values beyond float32's range are refused with their
// position and value, as Python refuses them. For a float32 input: float32
// ('<f4') or float64 ('<f8') as the model was trained on, or integer pixels (uint8 '|u1', ...), which are scaled as
// onnxtrain's own predict does: by the model's `input_scale` metadata (1/255 for Fashion-MNIST), or by
// --input-scale where given (a model exported by another tool has no such metadata). A scale of 1/n divides by n
// in float32, giving exactly the floats the model was trained on.
// A model of token ids (an int64 or int32 input: `Input(dtype="int64")`, or a fine-tuned int64 model) takes
// int64 ('<i8') or int32 ('<i4') ids (or other whole numbers), cast to the input's type where no value changes
// (int32 -> int64 always), never scaled. Where the model's `onnxtrain.token_ids` metadata names the input an
// Embedding reads, ids outside [0, input_dim) are refused with the position and value, as Python refuses them.
// Prints one JSON object: the input and output names, the prediction for every example as onnxtrain's
// InferenceModel.predict makes it from the model's `onnxtrain.loss` metadata (the class index, the argmax of `logits`,
// for softmax cross-entropy; 0 or 1 for binary cross-entropy of one unit: above 0.5, or above 0 from logits; the
// output itself for any other loss and for several sigmoid units, as nested arrays), and, when the model has it, the `probabilities` output (a sigmoid
// model's only output, which the predictions threshold at 0.5, or the softmax or sigmoid that follows `logits`).
import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";

const BATCH = 1024;

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

// The batch shape of `images` for the model's input: its own shape for a batch of examples of the per-example
// shape the input takes (its dims after the batch; a named dim takes any size), or [1, ...shape] for one example
// of that shape, as InferenceModel takes one.
function batchShape(images, input, path) {
  const expected = input.shape.slice(1);
  const fitsExample = (given) =>
    given.length === expected.length && expected.every((d, k) => typeof d !== "number" || d < 0 || d === given[k]);
  if (fitsExample(images.shape)) return [1, ...images.shape];
  if (images.shape.length === 0 || images.shape[0] === 0 || !fitsExample(images.shape.slice(1))) {
    const shown = expected.map((d) => (typeof d === "number" && d >= 0 ? d : "N")).join(", ");
    throw new Error(
      `${path} expects a batch of examples of shape [${shown}] for input '${input.name}' of the model ` +
        `(shape [N, ${shown}]). Received: shape [${images.shape.join(", ")}]`,
    );
  }
  return images.shape;
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

const SOFTMAX_LOSSES = new Set([
  "softmax_cross_entropy_with_logits",
  "sparse_categorical_crossentropy",
  "categorical_crossentropy",
]);

// How InferenceModel.predict decides from the `onnxtrain.loss` metadata (a loss name, or its config as JSON where
// it holds more than the name): "argmax", a threshold for binary cross-entropy, or "values".
function decision(metadata, outputNames) {
  const text = metadata["onnxtrain.loss"];
  if (text === undefined) {
    const softmax = outputNames.includes("logits") && outputNames.includes("probabilities");
    return softmax ? { kind: "argmax" } : { kind: "values" };
  }
  const config = text.startsWith("{") ? JSON.parse(text) : { name: text };
  if (SOFTMAX_LOSSES.has(config.name)) return { kind: "argmax" };
  if (config.name === "binary_crossentropy") return { kind: "threshold", at: config.from_logits ? 0 : 0.5 };
  return { kind: "values" };
}

// The flat `values` of one example as nested arrays of shape `dims` (one number for an empty shape).
function nested(values, dims) {
  if (dims.length === 0) return values[0];
  const size = dims.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: dims[0] }, (_, i) => nested(values.subarray(i * size, (i + 1) * size), dims.slice(1)));
}

function argmax(values, offset, length) {
  let best = 0;
  for (let i = 1; i < length; i++) if (values[offset + i] > values[offset + best]) best = i;
  return best;
}

async function main(argv) {
  const [modelPath, imagesPath] = argv.filter((a, i) => !a.startsWith("--") && argv[i - 1] !== "--input-scale");
  const scaleAt = argv.indexOf("--input-scale");
  if (!modelPath || !imagesPath) throw new Error("usage: node predict.mjs model.onnx images.npy [--input-scale S]");

  const model = readFileSync(modelPath);
  const metadata = onnxMetadata(model);
  const images = readNpy(imagesPath);
  const session = await ort.InferenceSession.create(model);
  const input = session.inputMetadata[0];
  const shape = batchShape(images, input, imagesPath);
  let ids = null; // the Embedding table the input feeds, where the model's metadata says
  if (metadata["onnxtrain.token_ids"] !== undefined) ids = JSON.parse(metadata["onnxtrain.token_ids"])[input.name] ?? null;
  let data = images.data;
  const type = input.type;
  if (type === "float32" && images.descr[1] === "f") {
    const given = data;
    data = given instanceof Float32Array ? given : Float32Array.from(given); // float64 beyond float32's range: inf
    checkFinite(data, (i) => given[i], shape, imagesPath, null); // before the ids: a NaN is no bad id, as in Python
  }
  if (ids !== null) checkTokenIds(data, shape, ids, imagesPath);
  if (type === "int64" || type === "int32") {
    data = integerData(data, shape, type, imagesPath);
  } else if (type !== "float32") {
    throw new Error(`${modelPath}: input '${input.name}' has type ${type}; this example feeds float32, int64 and int32 inputs`);
  } else if (images.descr[1] === "f" || ids !== null) {
    data = data instanceof Float32Array ? data : Float32Array.from(data, Number); // token ids: as they are
  } else {
    const scaleText = scaleAt >= 0 ? argv[scaleAt + 1] : metadata.input_scale;
    if (scaleText === undefined) {
      const kind = data.constructor.name.replace("Array", "").toLowerCase();
      throw new Error(`${kind} pixels need --input-scale: ${modelPath} has no input_scale metadata (not exported by onnxtrain?)`);
    }
    const scale = Number(scaleText);
    if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`the input scale must be a positive number, got ${scaleText}`);
    const pixels = data;
    checkPixels(pixels, images.descr, scale, shape, imagesPath);
    data = scalePixels(pixels, scale);
    checkFinite(data, (i) => Number(pixels[i]), shape, imagesPath, scale); // a huge --input-scale overflows
  }
  const [count, ...exampleShape] = shape;
  const exampleSize = exampleShape.reduce((a, b) => a * b, 1);
  const predictions = [];
  const probabilities = session.outputNames.includes("probabilities") ? [] : null;
  const decide = decision(metadata, session.outputNames);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const batch = data.subarray(start * exampleSize, (start + n) * exampleSize);
    const tensor = new ort.Tensor(type, batch, [n, ...exampleShape]);
    const outputs = await session.run({ [input.name]: tensor });
    // the model's output: `logits` (then `probabilities` follows a classifier's), or a sigmoid's `probabilities` alone
    const logits = outputs.logits ?? outputs[session.outputNames[0]];
    const unitDims = logits.dims.slice(1);
    const units = unitDims.reduce((a, b) => a * b, 1);
    for (let row = 0; row < n; row++) {
      const values = logits.data.subarray(row * units, (row + 1) * units);
      if (decide.kind === "argmax") {
        predictions.push(argmax(logits.data, row * units, units));
      } else if (decide.kind === "threshold" && units === 1) {
        predictions.push(values[0] > decide.at ? 1 : 0);
      } else {
        predictions.push(nested(values, unitDims));
      }
      if (probabilities) probabilities.push(Array.from(outputs.probabilities.data.subarray(row * units, (row + 1) * units)));
    }
  }
  console.log(JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames, predictions, probabilities }));
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error.message ?? error);
  process.exit(1);
});
