// Trainer.load's sources and its errors: each names the file or URL, what was received and what was expected, and
// leaves nothing open.

import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";

const BUNDLE = fileURLToPath(new URL("./fixtures/bundle/", import.meta.url));

/** The fixture bundle as a {read(name)} source, with `replace` giving some files' bytes instead. */
const bundleWith = (replace) => ({
  read: async (name) => replace[name] ?? new Uint8Array(await readFile(join(BUNDLE, name))),
});

test("a file: URL (new URL('./bundle/', import.meta.url)) loads in Node.js", async () => {
  const trainer = await Trainer.load(ort, pathToFileURL(BUNDLE));
  assert.equal(trainer.stepCount, 0);
  assert.equal((await Trainer.load(ort, String(pathToFileURL(BUNDLE)))).metadata.name, "sequential");
});

test("a folder that is not a bundle, or the path of bundle.json, says what to pass and how to make a bundle", async () => {
  const saved = await mkdtemp(join(tmpdir(), "onnxtrain-js-model-"));
  await writeFile(join(saved, "config.json"), "{}");
  await assert.rejects(Trainer.load(ort, saved), /bundle.json failed: ENOENT.*expects a training bundle folder.*onnxtrain bundle MODEL_DIR BUNDLE_DIR/);
  await assert.rejects(Trainer.load(ort, join(BUNDLE, "bundle.json")), /expects the folder that holds bundle.json. Received the file path .*bundle.json/);
});

test("an unreachable URL names the URL and keeps the cause", async () => {
  const error = await Trainer.load(ort, "http://127.0.0.1:9/bundle/").catch((e) => e);
  assert.match(error.message, /^fetching http:\/\/127.0.0.1:9\/bundle\/bundle.json failed: /);
  assert.ok(error.cause instanceof Error);
});

test("a bundle.json that is not JSON and a truncated .onnx are refused naming the file", async () => {
  await assert.rejects(Trainer.load(ort, bundleWith({ "bundle.json": Uint8Array.of(8, 1, 2) })), /bundle.json is not JSON/);
  const step = new Uint8Array(await readFile(join(BUNDLE, "train_step.onnx")));
  await assert.rejects(
    Trainer.load(ort, bundleWith({ "train_step.onnx": step.subarray(0, 500) })),
    /ONNX Runtime could not load train_step.onnx: .*Write the bundle again/,
  );
});

test("session options ONNX Runtime cannot honour are named as the fault, not the bundle", async () => {
  // DirectML exists only in Windows builds of onnxruntime-node: here it fails as a provider a machine lacks would
  const error = await Trainer.load(ort, BUNDLE, { sessionOptions: { executionProviders: ["dml"] } }).catch((e) => e);
  assert.match(
    error.message,
    /^ONNX Runtime could not open .*train_step.onnx with Trainer.load's options.sessionOptions \{"executionProviders":\["dml"\]\}: .*dml.*\. The bundle opens with the default options, so an option is at fault, most often an execution provider this package or machine lacks .*leave it out/,
  );
  assert.doesNotMatch(error.message, /Write the bundle again/);
  assert.ok(error.cause instanceof Error);
  // a damaged file stays the file's fault, whatever the options
  const step = new Uint8Array(await readFile(join(BUNDLE, "train_step.onnx")));
  await assert.rejects(
    Trainer.load(ort, bundleWith({ "train_step.onnx": step.subarray(0, 500) }), { sessionOptions: { intraOpNumThreads: 1 } }),
    /ONNX Runtime could not load train_step.onnx: .*Write the bundle again/,
  );
});

test("a train_step.onnx of another graph is refused at load, naming what it lacks", async () => {
  const model = new Uint8Array(await readFile(join(BUNDLE, "model.onnx")));
  await assert.rejects(
    Trainer.load(ort, bundleWith({ "train_step.onnx": model })),
    /train_step.onnx expects the graph bundle.json describes \(model 'sequential'\). Received: a graph that lacks the inputs dense_1.kernel, .*; lacks the outputs loss, updated.dense_1.kernel/,
  );
  await assert.rejects(Trainer.load(ort, bundleWith({ "eval.onnx": model })), /eval.onnx expects the graph .*lacks the inputs labels/);
});

test("load refuses an ort argument that is not an ONNX Runtime module", async () => {
  await assert.rejects(Trainer.load(undefined, BUNDLE), /expects the onnxruntime-node or onnxruntime-web module as ort .*Received: undefined/);
  await assert.rejects(Trainer.load({}, BUNDLE), { name: "TypeError", message: /Received: an Object without InferenceSession.create/ });
});

test("a Trainer comes from load only; release is idempotent and refuses later steps", async () => {
  assert.throws(() => new Trainer(), /new Trainer\(\) is not supported: use `await Trainer.load\(ort, source\)`/);
  const trainer = await Trainer.load(ort, BUNDLE);
  await trainer.release();
  await trainer.release();
  await assert.rejects(trainer.step(new Float32Array(16), [0]), /this Trainer was released: load another with Trainer.load/);
});
