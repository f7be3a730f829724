// Predict with a model exported by onnxtrain, in Node.js with onnxruntime-node.
//
//   npm ci --ignore-scripts            # the CPU binaries ship in the package; the script only fetches CUDA ones
//   node predict.mjs model.onnx images.npy [--input-scale 0.00392156862745098]
//
// images.npy holds a batch shaped like the model's input: float32 ('<f4') as the model was trained on, or
// uint8 ('|u1') pixels, which are scaled as onnxtrain's own predict does: by the model's `input_scale`
// metadata (1/255 for Fashion-MNIST), or by --input-scale where given (a model exported by another tool has no
// such metadata). A scale of 1/n divides by n in float32, giving exactly the floats the model was trained on.
// A model of token ids (an int64 or int32 input: `Input(dtype="int64")`, or a fine-tuned int64 model) takes
// int64 ('<i8') or int32 ('<i4') ids, fed as they are (a BigInt64Array for int64), never scaled.
// Prints one JSON object: the input and output names, the predicted class index of every image (the argmax of
// `logits`) and, when the model has it, the `probabilities` output.
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
  if (fortran) throw new Error(`${path}: Fortran-ordered arrays are not supported; save a C-ordered one`);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = bytes.byteOffset + headerStart + headerLength;
  if (descr === "<f4") return { shape, data: new Float32Array(bytes.buffer.slice(start, start + 4 * count)) };
  if (descr === "|u1") return { shape, data: new Uint8Array(bytes.buffer.slice(start, start + count)) };
  if (descr === "<i8") return { shape, data: new BigInt64Array(bytes.buffer.slice(start, start + 8 * count)) };
  if (descr === "<i4") return { shape, data: new Int32Array(bytes.buffer.slice(start, start + 4 * count)) };
  throw new Error(`${path}: dtype ${descr} is not supported; save float32, uint8, or int64/int32 token ids`);
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

// onnxtrain's rule (onnxtrain/inputs.py scale_integers): 1/n for a whole n divides by n, else multiply, in float32.
function scalePixels(pixels, scale) {
  const n = Math.round(1 / scale);
  if (2 ** -25 < scale && scale < 1 && n > 1 && n <= 2 ** 24 && (scale === 1 / n || scale === Math.fround(1 / n))) {
    return Float32Array.from(pixels, (v) => v / n); // one double division, rounded once: float32's own quotient
  }
  const factor = Math.fround(scale);
  return Float32Array.from(pixels, (v) => v * factor);
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
  const images = readNpy(imagesPath);
  let data = images.data;
  const ids = data instanceof BigInt64Array ? "int64" : data instanceof Int32Array ? "int32" : null;
  if (!(data instanceof Float32Array) && ids === null) {
    const scaleText = scaleAt >= 0 ? argv[scaleAt + 1] : onnxMetadata(model).input_scale;
    if (scaleText === undefined) {
      throw new Error(`uint8 pixels need --input-scale: ${modelPath} has no input_scale metadata (not exported by onnxtrain?)`);
    }
    const scale = Number(scaleText);
    if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`the input scale must be a positive number, got ${scaleText}`);
    data = scalePixels(data, scale);
  }
  const session = await ort.InferenceSession.create(model);
  const [count, ...exampleShape] = images.shape;
  const exampleSize = exampleShape.reduce((a, b) => a * b, 1);
  const predictions = [];
  const probabilities = session.outputNames.includes("probabilities") ? [] : null;
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const batch = data.subarray(start * exampleSize, (start + n) * exampleSize);
    const tensor = new ort.Tensor(ids ?? "float32", batch, [n, ...exampleShape]); // ids: the model's int input type
    const outputs = await session.run({ [session.inputNames[0]]: tensor });
    const logits = outputs.logits;
    const classes = logits.dims[1];
    for (let row = 0; row < n; row++) {
      predictions.push(argmax(logits.data, row * classes, classes));
      if (probabilities) probabilities.push(Array.from(outputs.probabilities.data.subarray(row * classes, (row + 1) * classes)));
    }
  }
  console.log(JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames, predictions, probabilities }));
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error.message ?? error);
  process.exit(1);
});
