// A per-position tagger (a class per step: output [3, 4]) trained and evaluated in Node.js reports the metrics
// Python's fit and evaluate report (test/fixtures/taggers/<case>/python.json, written by make_fixture.py): each
// accuracy scored per position, under sparse cross-entropy with class indices [N, 3] and under categorical
// cross-entropy with one-hot targets [N, 3, 4], the metrics given by name and by class.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/taggers/", import.meta.url));

/** The case's bundle and Python's run; the labels as class indices (int64) or float targets. */
async function load(name) {
  const python = JSON.parse(await readFile(join(FIXTURES, name, "python.json"), "utf8"));
  const labels = name === "sparse" ? BigInt64Array.from(python.labels, BigInt) : Float32Array.from(python.labels);
  return { trainer: await Trainer.load(ort, join(FIXTURES, name, "bundle")), python, x: Float32Array.from(python.x), labels };
}

/** `actual` within float32 rounding of `expected`, key for key. */
function assertClose(actual, expected, what) {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), what);
  for (const [key, values] of Object.entries(expected)) {
    [values].flat().forEach((value, k) => {
      const got = [actual[key]].flat()[k];
      assert.ok(Math.abs(got - value) <= 2e-5 * Math.abs(value) + 1e-7, `${what} ${key}[${k}]: ${got}, Python ${value}`);
    });
  }
}

for (const name of ["sparse", "onehot"]) {
  test(`a ${name} tagger's fit and evaluate report Python's History and evaluate, each accuracy per position`, async () => {
    const { trainer, python, x, labels } = await load(name);
    assert.deepEqual(trainer.skippedMetrics, []);
    const { epochs, batch_size: batchSize, validation_split: validationSplit } = python.fit;
    const history = await trainer.fit(x, labels, { epochs, batchSize, validationSplit, shuffle: false });
    assertClose(history.history, python.history, "History");
    const evaluated = await trainer.evaluate(x, labels);
    delete evaluated.logits;
    assertClose(evaluated, { accuracy: python.evaluate.acc ?? python.evaluate.accuracy, ...python.evaluate }, "evaluate");
  });
}
