// The compiled metrics of bundle.json computed as Python's onnxtrain/_named_metrics.py and
// onnxtrain/_accuracy_metrics.py compute them, worked by hand (test/taggers.test.js and tests/test_bundle_metrics.py
// compare whole runs with Python's).

import assert from "node:assert/strict";
import { test } from "node:test";
import { metricSums, metricsOf } from "../src/metrics.js";

/** The metric of `entry` under `loss` and `outputShape`, its value over one batch. */
function valueOf(entry, { loss = "mse", outputShape, logits = false }, outputs, labels, batch) {
  const { compiled, skipped } = metricsOf({ metrics: [{ name: "m", ...entry }], loss, output_shape: outputShape }, logits);
  assert.deepEqual(skipped, []);
  const sums = metricSums(compiled);
  sums.add(outputs, labels, batch);
  return sums.values().m;
}

test("equal_values (Keras' Accuracy): the share of an example's values equal to their targets", () => {
  const outputs = Float32Array.of(0, 1.5, 0, 2, 0, 0);
  const targets = Float32Array.of(0, 1.5, 1, 2, 0, 3); // 2 of 3, then 2 of 3
  assert.equal(valueOf({ metric: "equal_values" }, { outputShape: [3] }, outputs, targets, 2), 2 / 3);
});

test("equal_values compares class indices with every unit of their position, on the softmax where Python does", () => {
  // positions of 2 classes; index 1 equals a unit holding 1, index 0 a unit holding 0
  const outputs = Float32Array.of(0, 1, 1, 1, 2, 0);
  const labels = BigInt64Array.of(1n, 1n, 0n); // units equal: 1 of 2, 2 of 2, 1 of 2 -> 4 / 6 of one example
  const sparse = { loss: "sparse_categorical_crossentropy", outputShape: [3, 2] };
  assert.equal(valueOf({ metric: "equal_values" }, sparse, outputs, labels, 1), 4 / 6);
  // the softmax of [0, 200] is [0, 1] in float32 (exp(-200) rounds to 0), so one unit of each of two positions
  const saturated = Float32Array.of(0, 200, 200, 0);
  const entry = { metric: "equal_values", softmax: true };
  assert.equal(valueOf(entry, { ...sparse, outputShape: [2] }, saturated, BigInt64Array.of(1n, 1n), 2), 0.5);
});

test("a metric a reader does not know is skipped, as one bundle.json marks null", () => {
  const metadata = { metrics: [{ name: "new", metric: "not_yet_known" }, { name: "auc", metric: null }], loss: "mse" };
  const { compiled, skipped } = metricsOf({ ...metadata, output_shape: [1] }, false);
  assert.deepEqual([compiled, skipped], [[], ["new", "auc"]]);
});
