// Learning-rate schedules: Keras' six computed as Python computes them (test/fixtures/schedules/rates.json, Python's
// rates at steps 0..59), applied before each step as Python's fit applies them (a run continued from a bundle
// written mid-schedule, against Python's rates, losses and final state), and the schedules refused or replaced.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer, readState } from "../src/index.js";
import { SCHEDULES, scheduleOf } from "../src/schedules.js";
import { loadBatches, runSteps } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/schedules/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const json = async (path) => JSON.parse(await readFile(path, "utf8"));
const rates = await json(join(FIXTURES, "rates.json"));
const python = await json(join(FIXTURES, "python.json"));
const batches = await loadBatches(async (name) => new Uint8Array(await readFile(join(FIXTURES, "batches", name))));

/** A bundle.json's metadata carrying `schedule`, for scheduleOf. */
const carrying = (schedule) => ({ learning_rate: 0.1, learning_rate_schedule: schedule, optimizer: { name: "adam" } });

/** The fixture bundle with bundle.json changed by `change`. */
const bundleWith = (change) => ({
  read: async (name) => {
    const bytes = new Uint8Array(await readFile(join(BUNDLE, name)));
    if (name !== "bundle.json") return bytes;
    const metadata = JSON.parse(new TextDecoder().decode(bytes));
    change(metadata);
    return new TextEncoder().encode(JSON.stringify(metadata));
  },
});

test("Keras' six schedules give Python's rates, to the float32 the step reads", () => {
  assert.deepEqual(new Set(rates.map((r) => r.schedule.class_name)), new Set(SCHEDULES));
  for (const { schedule, rates: expected } of rates) {
    const { rateAt } = scheduleOf(carrying(schedule), undefined);
    expected.forEach((rate, step) => {
      const got = rateAt(step);
      assert.equal(Math.fround(got), Math.fround(rate), `${schedule.class_name} at step ${step}: ${got} vs ${rate}`);
      assert.ok(Math.abs(got - rate) <= 1e-15 * Math.abs(rate), `${schedule.class_name} at step ${step}`);
    });
  }
});

test("a bundle written mid-schedule continues Python's run: its rates, losses and state", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  assert.equal(trainer.stepCount, 3);
  assert.match(trainer.schedule, /^CosineDecayRestarts\(initial_learning_rate=0.05, first_decay_steps=2/);
  assert.equal(trainer.learningRate, trainer.metadata.learning_rate); // the next update's, schedule(3)
  const seen = [];
  for (let k = 0; k < batches.steps; k++) {
    seen.push(trainer.learningRate);
    await runSteps(trainer, { ...batches, x: batches.x.subarray(k * 8 * 16), y: batches.y.subarray(k * 8) }, 1);
  }
  assert.deepEqual(seen.map(Math.fround), python.map((s) => Math.fround(s.rate)));
  const again = await Trainer.load(ort, BUNDLE);
  const { losses } = await runSteps(again, batches);
  losses.forEach((loss, k) => assert.ok(Math.abs(loss - python[k].loss) <= 1e-5 * python[k].loss, `step ${k}: ${loss}`));
  const after = await readFile(join(FIXTURES, "after", "state.bin"));
  const expected = readState(after, trainer.metadata.tensors).tensors;
  for (const [name, values] of again.getState().tensors) {
    const want = expected.get(name);
    values.forEach((v, i) => assert.ok(Math.abs(Number(v) - Number(want[i])) <= 1e-5, `${name}[${i}]: ${v} vs ${want[i]}`));
  }
  assert.equal(again.stepCount, 10);
  const afterMetadata = JSON.parse(await readFile(join(FIXTURES, "after", "bundle.json"), "utf8"));
  assert.equal(again.learningRate, afterMetadata.learning_rate); // Python records the next rate too
  assert.equal(again.stateFromBytes(again.stateBytes()).learningRate, again.learningRate);
});

test("fit applies the schedule before every batch, as step does", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  const x = batches.x;
  const y = batches.y;
  const seen = [];
  await trainer.fit(x, y, { batchSize: 8, shuffle: false, callbacks: { onBatchBegin: () => void seen.push(trainer.learningRate) } });
  assert.deepEqual(seen.map(Math.fround), python.map((s) => Math.fround(s.rate)));
  assert.equal(trainer.learningRateAt(3), python[0].rate);
});

test("under a schedule learningRate cannot be set; {schedule: null} gives a settable rate, a function its own rates", async () => {
  const trainer = await Trainer.load(ort, BUNDLE);
  assert.throws(() => (trainer.learningRate = 0.1), /learningRate cannot be set: the learning rate is the schedule CosineDecayRestarts\(.*\{schedule: null\}/);
  const fixed = await Trainer.load(ort, BUNDLE, { schedule: null });
  assert.equal(fixed.schedule, null);
  assert.equal(fixed.learningRate, fixed.metadata.learning_rate);
  fixed.learningRate = 0.01;
  await runSteps(fixed, batches, 2);
  assert.equal(fixed.learningRate, 0.01);
  const halving = await Trainer.load(ort, BUNDLE, { schedule: (step) => 0.1 * 0.5 ** step });
  assert.equal(halving.learningRate, 0.1 * 0.5 ** 3);
  await runSteps(halving, batches, 1);
  assert.equal(halving.learningRate, 0.1 * 0.5 ** 4);
  const broken = await Trainer.load(ort, BUNDLE, { schedule: (step) => (step > 3 ? NaN : 0.1) });
  await runSteps(broken, batches, 1);
  await assert.rejects(runSteps(broken, batches, 1), /schedule options.schedule returned NaN at step 4; a learning rate must be a finite number >= 0/);
  assert.equal(broken.stepCount, 4); // nothing ran
});

test("a schedule class of one's own is refused at load, saying what to pass; bad options are refused", async () => {
  const custom = bundleWith((m) => (m.learning_rate_schedule = { class_name: "Halving", config: { rate: 0.1, every: 100 } }));
  await assert.rejects(
    Trainer.load(ort, custom),
    /schedule Halving\(rate=0.1, every=100\), which onnxtrain-js cannot compute: it computes Keras' six \(ExponentialDecay, .*\{schedule: \(step\) => rate\}.*\{schedule: null\}/,
  );
  const trainer = await Trainer.load(ort, custom, { schedule: (step) => 0.1 * 0.5 ** Math.floor(step / 100) });
  assert.equal(trainer.learningRate, 0.1);
  await assert.rejects(Trainer.load(ort, BUNDLE, { schedule: 0.1 }), /options.schedule to be a function \(step\) => learning rate, or null.*Received: 0.1/);
  await assert.rejects(Trainer.load(ort, BUNDLE, { schedules: null }), /takes the options sessionOptions, schedule. Received: schedules/);
  const bad = bundleWith((m) => (m.learning_rate_schedule.config.first_decay_steps = "2"));
  await assert.rejects(Trainer.load(ort, bad), /CosineDecayRestarts expects config.first_decay_steps to be a finite number. Received: "2"/);
});

test("a bundle written before learning_rate_schedule takes the schedule from the optimizer's config", async () => {
  const older = bundleWith((m) => delete m.learning_rate_schedule);
  const trainer = await Trainer.load(ort, older);
  assert.equal(trainer.learningRate, python[0].rate);
});
