// The compiled metrics fit and evaluate report, as Python's onnxtrain/_named_metrics.py computes them (Metrics:
// the accuracies, their top-k and the errors; and "equal_values", onnxtrain/_accuracy_metrics.py's Accuracy), from
// bundle.json's `metrics` (onnxtrain/bundle.py `_metrics`): each batch adds to a sum over its examples, the epoch's
// value is sum / examples (RMSE's square root of the mean).
// Metrics onnxtrain-js does not compute (AUC, Precision, functions of one's own, weighted metrics) are listed as
// skipped; a bundle written before `metrics` logs "accuracy", as onnxtrain-js did.

import { accuracy, positionClasses } from "./accuracy.js";

/**
 * @typedef {{name: string, metric: string | null, k?: number, threshold?: number, logits?: boolean,
 *            softmax?: boolean}} MetricEntry bundle.json's
 * @typedef {{name: string, batchSum: (outputs: Float32Array, labels: BigInt64Array | Float32Array, batch: number)
 *            => number, finish: (mean: number) => number}} CompiledMetric
 */

const EPSILON = 1e-7; // Keras' epsilon, MSLE's floor

/** The index of the largest of values[start, start + count), the first on ties (numpy's argmax). */
function argmax(values, start, count) {
  let best = 0;
  for (let c = 1; c < count; c++) if (values[start + c] > values[start + best]) best = c;
  return best;
}

/** Whether class `own` is among the k highest of values[start, start + count) (ties counted in, Keras' in_top_k). */
function inTopK(values, start, count, own, k) {
  let above = 0;
  for (let c = 0; c < count; c++) if (values[start + c] > values[start + own]) above++;
  return above < k;
}

/** The softmax of each row of `units` values (float64, from the largest down), as Python's loss.probabilities. */
function softmax(outputs, units) {
  const out = new Float64Array(outputs.length);
  for (let start = 0; start < outputs.length; start += units) {
    let largest = -Infinity;
    for (let c = 0; c < units; c++) largest = Math.max(largest, outputs[start + c]);
    let sum = 0;
    for (let c = 0; c < units; c++) sum += out[start + c] = Math.exp(outputs[start + c] - largest);
    for (let c = 0; c < units; c++) out[start + c] /= sum;
  }
  return out;
}

/**
 * The sum over a batch's examples of one metric's per-example value (a hit, a share of hits, a mean error).
 * @param {MetricEntry} entry
 * @param {{loss: string, trainsOnLogits: boolean, outputShape: number[]}} model
 * @returns {(outputs: Float32Array, labels: BigInt64Array | Float32Array, batch: number) => number}
 */
function batchSum(entry, model) {
  const classes = model.outputShape.at(-1);
  const k = entry.k ?? 5;
  switch (entry.metric) {
    case "accuracy": {
      const settings = { loss: model.loss, trainsOnLogits: model.trainsOnLogits, classes: positionClasses(model.outputShape) };
      return (outputs, labels, batch) => accuracy(outputs, labels, batch, settings) * batch;
    }
    case "sparse_categorical_accuracy":
    case "sparse_top_k_categorical_accuracy":
    case "categorical_accuracy":
    case "top_k_categorical_accuracy": {
      const top = entry.metric.includes("top_k") ? k : 0;
      // a class per position of each example for class indices, and for categorical accuracy's targets shaped like
      // an output of several axes (not one sigmoid per unit); else one over each example's units (Python's flat)
      const perPosition =
        entry.metric.startsWith("sparse") ||
        (entry.metric === "categorical_accuracy" && model.outputShape.length > 1 && model.loss !== "binary_crossentropy");
      return (outputs, labels, batch) => {
        const size = perPosition ? classes : outputs.length / batch;
        const positions = outputs.length / batch / size;
        let hits = 0;
        for (let p = 0; p < outputs.length / size; p++) {
          const own = labels instanceof BigInt64Array ? Number(labels[p]) : argmax(labels, p * size, size);
          // the argmax's index (the first on ties, numpy's), or within the top k (ties counted in, Keras')
          if (top === 0 ? argmax(outputs, p * size, size) === own : inTopK(outputs, p * size, size, own, top)) hits++;
        }
        return hits / positions;
      };
    }
    case "binary_accuracy": {
      const t = entry.threshold ?? 0.5;
      const threshold = entry.logits ? (t === 0.5 ? 0 : Math.log(t) - Math.log1p(-t)) : t;
      return (outputs, labels, batch) => {
        let hits = 0;
        for (let i = 0; i < outputs.length; i++) if (outputs[i] > threshold === labels[i] > 0.5) hits++;
        return (hits / outputs.length) * batch;
      };
    }
    case "mae":
    case "mse":
    case "root_mean_squared_error":
    case "msle":
      return (outputs, labels, batch) => {
        const predicted = entry.softmax ? softmax(outputs, classes) : outputs;
        const units = outputs.length / batch;
        const log = (v) => Math.log1p(Math.max(v, EPSILON));
        let total = 0;
        for (let i = 0; i < outputs.length; i++) {
          // class indices are one-hot targets here, as Python's metrics read them
          const target = labels instanceof BigInt64Array ? (Number(labels[Math.floor(i / classes)]) === i % classes ? 1 : 0) : labels[i];
          const error = entry.metric === "msle" ? log(predicted[i]) - log(target) : predicted[i] - target;
          total += entry.metric === "mae" ? Math.abs(error) : error * error;
        }
        return total / units;
      };
    case "equal_values":
      // Keras' Accuracy class: the share of an example's values equal to their targets (class indices compared
      // with every unit of their position, as Keras compares a label column with the output); the softmax rounded
      // to float32, as Python computes it in the outputs' dtype
      return (outputs, labels, batch) => {
        const predicted = entry.softmax ? softmax(outputs, classes).map(Math.fround) : outputs;
        let equal = 0;
        for (let i = 0; i < outputs.length; i++) {
          const target = labels instanceof BigInt64Array ? Number(labels[Math.floor(i / classes)]) : labels[i];
          if (predicted[i] === target) equal++;
        }
        return equal / (outputs.length / batch);
      };
    default:
      return null;
  }
}

/**
 * The metrics a trainer reports, from bundle.json: those it computes (`compiled`, in the bundle's order) and the
 * names of those it does not (`skipped`).
 * @param {import("./index.js").BundleMetadata} metadata
 * @param {boolean} trainsOnLogits
 * @returns {{compiled: CompiledMetric[], skipped: string[]}}
 */
export function metricsOf(metadata, trainsOnLogits) {
  /** @type {MetricEntry[]} */
  const entries = metadata.metrics ?? [{ name: "accuracy", metric: "accuracy" }];
  const model = { loss: metadata.loss, trainsOnLogits, outputShape: metadata.output_shape };
  const compiled = [];
  const skipped = [];
  for (const entry of entries) {
    const sum = entry.metric === null ? null : batchSum(entry, model);
    if (sum === null) skipped.push(entry.name);
    else {
      const root = entry.metric === "root_mean_squared_error";
      compiled.push({ name: entry.name, batchSum: sum, finish: (mean) => (root ? Math.sqrt(mean) : mean) });
    }
  }
  return { compiled, skipped };
}

/**
 * Running sums of the compiled metrics over the examples seen (an epoch's, or an evaluation's).
 * @param {CompiledMetric[]} compiled
 */
export function metricSums(compiled) {
  const sums = compiled.map(() => 0);
  let examples = 0;
  return {
    /** Add a batch's outputs and labels. */
    add(outputs, labels, batch) {
      compiled.forEach((m, k) => (sums[k] += m.batchSum(outputs, labels, batch)));
      examples += batch;
    },
    /** The metrics' values by name, over the examples added so far (NaN before any). */
    values() {
      return Object.fromEntries(compiled.map((m, k) => [m.name, examples > 0 ? m.finish(sums[k] / examples) : NaN]));
    },
  };
}
