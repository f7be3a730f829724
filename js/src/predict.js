// Trainer.predict: the current weights' outputs through the eval session the trainer already holds (the graph
// evaluate runs, whose logits the exported model.onnx gives for the same weights), decided as Python's
// InferenceModel.predict decides them by the bundle's loss.

import { takeRows, inputRows } from "./batches.js";
import { describe } from "./inputs.js";

/**
 * @typedef {import("./index.js").PredictOptions} PredictOptions
 */

const product = (shape) => shape.reduce((n, d) => n * d, 1);
const SOFTMAX_LOSSES = new Set([
  "softmax_cross_entropy_with_logits",
  "sparse_categorical_crossentropy",
  "categorical_crossentropy",
]);

/**
 * How predict decides, by the bundle's loss (Python's Loss.decide): the argmax of the last axis for the softmax
 * cross-entropies, the one unit above 0.5 (0 on logits) for binary cross-entropy of one unit, the outputs as they
 * are otherwise (several sigmoid units: a reconstruction or multi-label scores, as Keras' predict returns them).
 * @param {string} loss
 * @returns {"argmax" | "threshold" | "raw"}
 */
export function decisionOf(loss) {
  if (SOFTMAX_LOSSES.has(loss)) return "argmax";
  return loss === "binary_crossentropy" ? "threshold" : "raw";
}

/** The softmax of each row of `units` values, computed in float64 from the largest value down (no overflow). */
function softmax(outputs, units) {
  const out = new Float32Array(outputs.length);
  for (let start = 0; start < outputs.length; start += units) {
    let largest = -Infinity;
    for (let c = 0; c < units; c++) largest = Math.max(largest, outputs[start + c]);
    let sum = 0;
    for (let c = 0; c < units; c++) sum += (out[start + c] = Math.exp(outputs[start + c] - largest));
    for (let c = 0; c < units; c++) out[start + c] /= sum;
  }
  return out;
}

/** The logistic sigmoid of each value, exp of non-positive numbers only (no overflow), as Python's. */
const sigmoid = (outputs) =>
  Float32Array.from(outputs, (z) => {
    const e = Math.exp(-Math.abs(z));
    return z >= 0 ? 1 / (1 + e) : e / (1 + e);
  });

/** The index of the largest of each row of `units` values, the first on ties (numpy's argmax). */
function argmax(outputs, units) {
  const out = new Int32Array(outputs.length / units);
  for (let row = 0; row < out.length; row++) {
    let best = 0;
    for (let c = 1; c < units; c++) if (outputs[row * units + c] > outputs[row * units + best]) best = c;
    out[row] = best;
  }
  return out;
}

/** predict's options, checked: Python's batch size (1024) by default. */
function predictOptions(options) {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`predict expects options {batchSize, probabilities}. Received: ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((name) => name !== "batchSize" && name !== "probabilities");
  if (unknown.length > 0) throw new TypeError(`predict takes the options batchSize, probabilities. Received: ${unknown.join(", ")}`);
  const batchSize = options.batchSize ?? 1024;
  if (typeof batchSize !== "number" || !Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`predict expects batchSize to be a whole number >= 1. Received: ${describe(batchSize)}`);
  }
  const probabilities = options.probabilities ?? false;
  if (typeof probabilities !== "boolean") {
    throw new TypeError(`predict expects probabilities to be true or false. Received: ${describe(probabilities)}`);
  }
  return { batchSize, probabilities };
}

/**
 * The eval graph's outputs (its `logits`) for every example of x, `batchSize` examples per session run, all in
 * one queued task so that no step runs between two batches.
 * @param {import("./trainer.js").Trainer} trainer
 * @param {unknown} x
 * @param {number} batchSize
 * @returns {Promise<Float32Array>} examples one after the other (none for x of no examples)
 */
async function evalOutputs(trainer, x, batchSize) {
  const { metadata, ort } = trainer;
  const { inputs, count } = inputRows(x, metadata, "x", { allowEmpty: true, warn: trainer._warnOnce });
  const size = product(metadata.output_shape);
  const outputs = new Float32Array(count * size); // empty for no examples (no session run), as Keras and TF.js give
  const labels = metadata.labels;
  const labelSize = product(labels.shape.slice(1));
  // the eval graph needs labels; only logits are fetched, so ONNX Runtime skips the loss they feed
  const zeros = new (labels.dtype === "int64" ? BigInt64Array : Float32Array)(Math.min(count, batchSize) * labelSize);
  const name = metadata.outputs.logits;
  await trainer._enqueue(async () => {
    for (let start = 0; start < count; start += batchSize) {
      const end = Math.min(count, start + batchSize);
      const feeds = {};
      inputs.forEach((rows, k) => {
        const { data, shape } = takeRows(rows, start, end);
        feeds[metadata.inputs[k].name] = new ort.Tensor(metadata.inputs[k].dtype, data, shape);
      });
      const shape = [end - start, ...labels.shape.slice(1)];
      feeds[labels.name] = new ort.Tensor(labels.dtype, zeros.subarray(0, (end - start) * labelSize), shape);
      const results = await trainer._eval.run(trainer._withState(trainer._eval, feeds), [name]);
      outputs.set(results[name].data, start * size);
    }
  });
  return outputs;
}

/**
 * Predictions of the current weights (see Trainer.predict).
 * @param {import("./trainer.js").Trainer} trainer
 * @param {unknown} x
 * @param {PredictOptions} [options]
 * @returns {Promise<Int32Array | Float32Array>}
 */
export async function predict(trainer, x, options = {}) {
  const { batchSize, probabilities } = predictOptions(options);
  const { loss } = trainer.metadata;
  const decision = decisionOf(loss);
  if (probabilities && decision === "raw") {
    throw new Error(
      `predictSoftly needs a classification loss (softmax cross-entropy or binary cross-entropy). Received: loss ` +
        `'${loss}' (model '${trainer.metadata.name}'); use predict() for regression outputs.`,
    );
  }
  const outputs = await evalOutputs(trainer, x, batchSize);
  const units = trainer.metadata.output_shape.at(-1);
  if (decision === "argmax") return probabilities ? softmax(outputs, units) : argmax(outputs, units);
  if (decision === "threshold") {
    if (probabilities) return trainer._trainsOnLogits ? sigmoid(outputs) : outputs;
    if (units !== 1) return outputs;
    const threshold = trainer._trainsOnLogits ? 0 : 0.5;
    return Int32Array.from(outputs, (p) => (p > threshold ? 1 : 0));
  }
  return outputs;
}
