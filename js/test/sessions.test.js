// The sessions a Trainer opens run without ONNX Runtime's Pad_Fusion, as Python's do: a Conv -> ZeroPadding2D ->
// MaxPooling2D(padding="same") bundle (fixtures/padpool, written by fixtures/make_fixture.py) evaluates, predicts
// and steps as Python does, under onnxruntime-node and onnxruntime-web (its WebAssembly backend, here in Node.js;
// tests/test_web.py runs it in Chromium).

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { DISABLED_OPTIMIZERS, Trainer, sessionOptions, unpackState } from "../src/index.js";
import { loadBatches, runSteps } from "../tools/steps.js";

const PADPOOL = fileURLToPath(new URL("./fixtures/padpool/", import.meta.url));
const read = (...path) => readFile(join(PADPOOL, ...path));
const batches = await loadBatches(async (name) => new Uint8Array(await read("batches", name)));
const size = batches.batchSize * batches.features;
const firstX = batches.x.subarray(0, size);
const firstY = batches.y.subarray(0, batches.batchSize);
const pythonLogits = JSON.parse(await read("logits.json")); // InferenceModel's, on the first batch
ortWeb.env.wasm.numThreads = 1;
const RUNTIMES = [
  ["onnxruntime-node", ortNode, "cpu"],
  ["onnxruntime-web", ortWeb, "wasm"],
];

const largestDifference = (a, b) => Math.max(...Array.from(a, (v, i) => Math.abs(Number(v) - Number(b[i]))));
const argmax = (values, units) =>
  Array.from({ length: values.length / units }, (_, row) => {
    const slice = Array.from(values.slice(row * units, (row + 1) * units));
    return slice.indexOf(Math.max(...slice));
  });

/** The model.onnx logits of the first batch in a session opened with `options`. */
async function exportedLogits(ort, model, options) {
  const session = await ort.InferenceSession.create(model, options);
  try {
    const outputs = await session.run({ input: new ort.Tensor("float32", firstX, [batches.batchSize, 6, 6, 2]) });
    return outputs.logits.data;
  } finally {
    await session.release();
  }
}

const KEY = "optimization.disable_specified_optimizers";
const MERGES = [
  ["no options", undefined, { extra: { [KEY]: "Pad_Fusion" } }],
  ["empty options", {}, { extra: { [KEY]: "Pad_Fusion" } }],
  [
    "other options kept",
    { executionProviders: ["wasm"], graphOptimizationLevel: "extended", extra: { session: { intra_op: { allow_spinning: "0" } } } },
    {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "extended",
      extra: { session: { intra_op: { allow_spinning: "0" } }, [KEY]: "Pad_Fusion" },
    },
  ],
  ["a flat list of the caller's", { extra: { [KEY]: "ConstantFolding; Pad_Fusion;" } }, { extra: { [KEY]: "ConstantFolding;Pad_Fusion" } }],
  [
    "a nested list of the caller's, moved to the flat key",
    { extra: { optimization: { disable_specified_optimizers: "NopElimination", enable_gelu_approximation: "1" } } },
    { extra: { optimization: { enable_gelu_approximation: "1" }, [KEY]: "NopElimination;Pad_Fusion" } },
  ],
  [
    "both lists",
    { extra: { [KEY]: "A", optimization: { disable_specified_optimizers: "B;A" } } },
    { extra: { optimization: {}, [KEY]: "A;B;Pad_Fusion" } },
  ],
];

for (const [name, given, expected] of MERGES) {
  test(`sessionOptions adds Pad_Fusion to the disabled optimizers: ${name}`, () => {
    const before = structuredClone(given);
    assert.deepEqual(sessionOptions(given), expected);
    assert.deepEqual(given, before); // the caller's object is left as it was
  });
}

const REFUSALS = [
  ["a string", "wasm", /^sessionOptions expects an object of ort.InferenceSession options .*Received: "wasm"$/],
  ["null", null, /^sessionOptions expects an object .*Received: null$/],
  ["an array", [1], /^sessionOptions expects an object .*Received: an array of 1$/],
  ["extra a string", { extra: "x" }, /^sessionOptions.extra expects an object of session config entries. Received: "x"$/],
];

for (const [name, given, message] of REFUSALS) {
  test(`sessionOptions refuses ${name}, naming what it received`, () => {
    assert.throws(() => sessionOptions(given), { name: "TypeError", message });
  });
}

test("Trainer.load refuses session options that are not an object before reading the bundle", async () => {
  await assert.rejects(Trainer.load(ortNode, PADPOOL + "no-such-folder", { sessionOptions: "cpu" }), {
    name: "TypeError",
    message: /^Trainer.load's options.sessionOptions expects an object .*Received: "cpu"$/,
  });
});

test("the fixture exercises Pad_Fusion: a session of default options gives other logits than Python's", async () => {
  assert.deepEqual(DISABLED_OPTIMIZERS, ["Pad_Fusion"]);
  const model = await read("bundle", "model.onnx");
  for (const [, ort] of RUNTIMES) {
    // if this fails, ONNX Runtime fixed Pad_Fusion's MaxPool (microsoft/onnxruntime#21556): src/sessions.js may go
    assert.ok(largestDifference(await exportedLogits(ort, model, {}), pythonLogits) > 1);
    assert.ok(largestDifference(await exportedLogits(ort, model, sessionOptions()), pythonLogits) < 1e-5);
  }
});

for (const [runtime, ort, provider] of RUNTIMES) {
  test(`${runtime}: a padded pool evaluates, predicts and steps as Python does`, async () => {
    const trainer = await Trainer.load(ort, join(PADPOOL, "bundle"), { sessionOptions: { executionProviders: [provider] } });
    try {
      const { logits } = await trainer.evaluate(firstX, firstY);
      assert.ok(largestDifference(logits, pythonLogits) < 1e-5);
      assert.deepEqual(Array.from(await trainer.predict(firstX)), argmax(pythonLogits, 3));
      const soft = await trainer.predictSoftly(firstX);
      assert.ok(largestDifference(await trainer.predict(firstX, { probabilities: true }), soft) === 0);
      await runSteps(trainer, batches);
      const after = JSON.parse(await read("after", "bundle.json"));
      const python = unpackState(await read("after", "state.bin"), after.tensors);
      const state = trainer.getState().tensors;
      for (const name of trainer.metadata.trainable) assert.ok(largestDifference(state.get(name), python.get(name)) < 1e-5, name);
      const exported = await exportedLogits(ort, trainer.exportModel(), sessionOptions());
      assert.ok(largestDifference(exported, (await trainer.evaluate(firstX, firstY)).logits) < 1e-5);
    } finally {
      await trainer.release();
    }
  });
}
