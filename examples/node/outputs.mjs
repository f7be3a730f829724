// The outputs: which of the graph's outputs are the model's own, and how each example's prediction and
// probabilities are decided from them, as onnxtrain's InferenceModel decides (onnxtrain/inference.py).

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
export function outputPlans(metadata, outputNames) {
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
export function decideExample(plan, outputs, row) {
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

// Whether a plan gives probabilities: not for a regression, whose `probabilities` predict.mjs prints as null.
export const givesProbabilities = (plan) => Boolean(plan.companion !== null || plan.rule?.soft);
