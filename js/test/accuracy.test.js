// evaluate's accuracy against Python's "accuracy" metric (onnxtrain/metrics.py), worked by hand.

import assert from "node:assert/strict";
import { test } from "node:test";
import { accuracy, positionClasses } from "../src/accuracy.js";

const binary = { loss: "binary_crossentropy", trainsOnLogits: false };

test("class indices: the argmax, the first on ties", () => {
  const logits = Float32Array.of(0.1, 0.7, 0.2, 0.5, 0.5, 0, 0, 0, 1);
  assert.equal(accuracy(logits, BigInt64Array.of(1n, 0n, 0n), 3, { loss: "softmax_cross_entropy_with_logits" }), 2 / 3);
});

test("binary cross-entropy: each unit against 0.5 on probabilities, 0 on logits, a share per example", () => {
  const targets = Float32Array.of(1, 0, 1, 1);
  assert.equal(accuracy(Float32Array.of(0.9, 0.2, 0.4, 0.5), targets, 4, binary), 0.5); // 0.5 is not > 0.5
  assert.equal(accuracy(Float32Array.of(0.1, 2, -0.4, 3), targets, 4, { ...binary, trainsOnLogits: true }), 0.5);
  // two units per example: hits 2 and 1 of 2, so (2 + 1) / 2 / 2 examples
  assert.equal(accuracy(Float32Array.of(0.9, 0.1, 0.9, 0.9), Float32Array.of(1, 0, 0, 1), 2, binary), 0.75);
});

test("other float targets: argmax against the target's argmax, or 0.5 for one unit as Python", () => {
  const mse = { loss: "mse", trainsOnLogits: false };
  assert.equal(accuracy(Float32Array.of(0.2, 0.8, 0.6, 0.4), Float32Array.of(0, 1, 0, 1), 2, mse), 0.5);
  assert.equal(accuracy(Float32Array.of(0.7, 0.2), Float32Array.of(1, 1), 2, mse), 0.5);
});

test("a class per position (a tagger's [steps, classes]): each step a hit or a miss, as Python", () => {
  const tagger = { loss: "categorical_crossentropy", trainsOnLogits: true, classes: 2 };
  // two examples of three steps: right, wrong, right | right, right, right -> (2/3 + 1) / 2
  const outputs = Float32Array.of(0.9, 0.1, 0.2, 0.8, 0.3, 0.7, 1, 0, 0, 1, 1, 0);
  const targets = Float32Array.of(1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0);
  assert.ok(Math.abs(accuracy(outputs, targets, 2, tagger) - 5 / 6) < 1e-12);
  assert.equal(accuracy(outputs, targets, 2, { ...tagger, classes: undefined }), 1); // one argmax over all steps
  assert.equal(positionClasses([3, 2]), 2);
  assert.equal(positionClasses([10]), undefined);
});

test("class indices per position (a tagger's [steps, classes], labels [steps]): each step's argmax, as Python", () => {
  const tagger = { loss: "sparse_categorical_crossentropy", trainsOnLogits: true, classes: 2 };
  // two examples of three steps: right, wrong, right | wrong, wrong, right -> (2/3 + 1/3) / 2
  const outputs = Float32Array.of(0.9, 0.1, 0.2, 0.8, 0.3, 0.7, 1, 0, 0, 1, 1, 0);
  const labels = BigInt64Array.of(0n, 0n, 1n, 1n, 0n, 0n);
  assert.equal(accuracy(outputs, labels, 2, tagger), 0.5);
  // one class per example (no positions): the argmax over each example's 3 units, 0, 0, 0 and 0
  assert.equal(accuracy(outputs, BigInt64Array.of(0n, 0n, 2n, 1n), 4, { ...tagger, classes: undefined }), 0.5);
});

test("binary cross-entropy over steps: each unit on its target's side, not an argmax per step", () => {
  const tagger = { ...binary, classes: 2 };
  const outputs = Float32Array.of(0.9, 0.6, 0.2, 0.1);
  assert.equal(accuracy(outputs, Float32Array.of(1, 0, 0, 0), 1, tagger), 0.75);
});

