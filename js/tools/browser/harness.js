// window.runParity(bundleUrl, batchesUrl, {threads, steps}): train a bundle on fixed batches with onnxruntime-web
// and return the state (base64 of state.bin's layout), the exported model (base64), timings and eval logits.
// window.onnxtrain: {ort, Trainer}, for a test's own calls.
// Served from the repository root, so that onnxruntime-web comes from js/node_modules.

import * as ort from "../../node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs";
import { Trainer } from "../../src/index.js";
import { evaluateFirstBatch, loadBatches, runSteps } from "../steps.js";

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetching ${url} failed: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// Call once per page load: onnxruntime-web reads numThreads when it first initializes its WebAssembly.
// `warmup` steps run first on a trainer of their own (compiling the wasm, warming the JIT), untimed.
window.runParity = async (bundleUrl, batchesUrl, { threads = 1, steps, warmup = 0 } = {}) => {
  ort.env.wasm.numThreads = threads;
  const options = { sessionOptions: { executionProviders: ["wasm"] } };
  const batches = await loadBatches((name) => fetchBytes(new URL(name, new URL(batchesUrl, location.href))));
  if (warmup > 0) {
    const scratch = await Trainer.load(ort, bundleUrl, options);
    await runSteps(scratch, batches, warmup);
    await scratch.release();
  }
  const trainer = await Trainer.load(ort, bundleUrl, options);
  const { seconds, losses } = await runSteps(trainer, batches, steps ?? batches.steps);
  const evaluation = await evaluateFirstBatch(trainer, batches);
  const result = {
    runtime: `onnxruntime-web ${ort.env.versions?.web ?? ""}`.trim(),
    threads: ort.env.wasm.numThreads,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    steps: steps ?? batches.steps,
    seconds,
    losses,
    evaluation,
    state: base64(trainer.stateBytes()),
    model: base64(trainer.exportModel()),
  };
  await trainer.release();
  return result;
};
window.onnxtrain = { ort, Trainer }; // for tests that drive a Trainer from page.evaluate
window.harnessReady = true;
