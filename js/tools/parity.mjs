// node tools/parity.mjs BUNDLE BATCHES OUT [STEPS] (env ONNXTRAIN_JS_THREADS, ONNXTRAIN_JS_WARMUP): train a bundle on fixed batches with onnxruntime-node and
// write OUT/state.bin (the trainer's state, the bundle's layout), OUT/model.onnx (exportModel) and OUT/result.json
// (seconds, losses, the first batch's eval logits). tests/test_js.py and tools/js_parity.py compare it with Python.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";
import { evaluateFirstBatch, loadBatches, runSteps } from "./steps.js";

const [bundle, batchesDir, out, stepsArg] = process.argv.slice(2);
if (out === undefined) {
  console.error("usage: node tools/parity.mjs BUNDLE BATCHES OUT [STEPS]");
  process.exit(2);
}
const threads = Number(process.env.ONNXTRAIN_JS_THREADS ?? 0);
const sessionOptions = threads > 0 ? { intraOpNumThreads: threads } : {};
const warmup = Number(process.env.ONNXTRAIN_JS_WARMUP ?? 0); // untimed steps on a trainer of their own first
const batches = await loadBatches(async (name) => new Uint8Array(await readFile(join(batchesDir, name))));
if (warmup > 0) {
  const scratch = await Trainer.load(ort, bundle, { sessionOptions });
  await runSteps(scratch, batches, warmup);
  await scratch.release();
}
const trainer = await Trainer.load(ort, bundle, { sessionOptions });
const steps = stepsArg === undefined ? batches.steps : Number(stepsArg);
const { seconds, losses } = await runSteps(trainer, batches, steps);
const evaluation = await evaluateFirstBatch(trainer, batches);
await mkdir(out, { recursive: true });
await writeFile(join(out, "state.bin"), trainer.stateBytes());
await writeFile(join(out, "model.onnx"), trainer.exportModel());
const result = { runtime: `onnxruntime-node ${ort.env.versions?.common ?? ""}`.trim(), steps, seconds, losses, evaluation };
await writeFile(join(out, "result.json"), JSON.stringify(result));
await trainer.release();
console.log(JSON.stringify({ steps, seconds, loss: losses.at(-1) }));
