// Predict with a model exported by onnxtrain, in Node.js with onnxruntime-node.
//
//   npm ci --ignore-scripts            # the CPU binaries ship in the package; the script only fetches CUDA ones
//   node predict.mjs model.onnx images.npy [--input-scale 0.00392156862745098]
//
// images.npy holds a batch shaped like the model's input: float32 ('<f4') as the model was trained on, or
// uint8 ('|u1') pixels, which are multiplied by --input-scale (the model's `input_scale` metadata; 1/255 for
// Fashion-MNIST). Prints one JSON object: the input and output names, the predicted class index of every
// image (the argmax of `logits`) and, when the model has it, the `probabilities` output.
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
  throw new Error(`${path}: dtype ${descr} is not supported; save float32 or uint8`);
}

function argmax(values, offset, length) {
  let best = 0;
  for (let i = 1; i < length; i++) if (values[offset + i] > values[offset + best]) best = i;
  return best;
}

async function main(argv) {
  const [modelPath, imagesPath] = argv.filter((a, i) => !a.startsWith("--") && argv[i - 1] !== "--input-scale");
  const scaleAt = argv.indexOf("--input-scale");
  const inputScale = scaleAt >= 0 ? Number(argv[scaleAt + 1]) : 1.0;
  if (!modelPath || !imagesPath) throw new Error("usage: node predict.mjs model.onnx images.npy [--input-scale S]");

  const images = readNpy(imagesPath);
  const data = images.data instanceof Float32Array ? images.data : Float32Array.from(images.data, (v) => v * inputScale);
  const session = await ort.InferenceSession.create(modelPath);
  const [count, ...exampleShape] = images.shape;
  const exampleSize = exampleShape.reduce((a, b) => a * b, 1);
  const predictions = [];
  const probabilities = session.outputNames.includes("probabilities") ? [] : null;
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const batch = data.subarray(start * exampleSize, (start + n) * exampleSize);
    const outputs = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", batch, [n, ...exampleShape]) });
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
