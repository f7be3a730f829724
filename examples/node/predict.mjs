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
//
// The pieces beside this file: npy.mjs reads a .npy file; metadata.mjs the model's metadata (input_scale,
// onnxtrain.loss, onnxtrain.token_ids); inputs.mjs checks and converts each input's file as InferenceModel does and
// builds a batch's feeds; outputs.mjs decides each example's predictions and probabilities from the outputs.
import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";
import { batchFeeds, exampleCount, filesOfInputs, inputTensor } from "./inputs.mjs";
import { onnxMetadata } from "./metadata.mjs";
import { decideExample, givesProbabilities, outputPlans } from "./outputs.mjs";

const BATCH = 1024;

// ONNX Runtime's Pad_Fusion folds a ZeroPadding2D (a zero Pad) into the next MaxPool's own pads, which MaxPool
// fills with -inf: a Conv -> ZeroPadding2D -> MaxPooling2D(padding="same") model then computes other numbers
// (microsoft/onnxruntime#21556, still so in 1.30). onnxtrain's Python sessions run without it; so does this one.
// Only that optimizer is off: graphOptimizationLevel "disabled" also gives the right numbers, twice as slowly for
// a small CNN.
const SESSION_OPTIONS = { extra: { "optimization.disable_specified_optimizers": "Pad_Fusion" } };

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

// --- the flow: read the model and its metadata, check and convert the inputs, run in batches, decide each example

async function main(argv) {
  const { modelPath, files, scaleText } = parseArguments(argv);
  const model = readFileSync(modelPath);
  const metadata = onnxMetadata(model);
  const session = await ort.InferenceSession.create(model, SESSION_OPTIONS);
  const paths = filesOfInputs(files, session.inputMetadata, modelPath);
  const inputs = session.inputMetadata.map((input, k) => inputTensor(paths[k], input, metadata, scaleText, modelPath));
  const count = exampleCount(inputs);
  const plans = outputPlans(metadata, session.outputNames);
  const predictions = plans.map(() => []);
  const probabilities = plans.map(() => []);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const outputs = await session.run(batchFeeds(inputs, start, n));
    plans.forEach((plan, k) => {
      for (let row = 0; row < n; row++) {
        const decided = decideExample(plan, outputs, row);
        predictions[k].push(decided.prediction);
        probabilities[k].push(decided.probabilities);
      }
    });
  }
  const soft = (k) => (givesProbabilities(plans[k]) ? probabilities[k] : null); // none: a regression
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
