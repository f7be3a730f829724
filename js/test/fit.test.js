// Trainer.fit: the same steps as a loop of step calls over the same batches, seeded shuffling, History, callbacks
// (awaited, stopping), non-finite losses and the checks of its arguments. (tests/test_js.py compares fit with
// Python's fit.)

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { mulberry32, shuffledOrder, takeRows } from "../src/batches.js";
import { NonFiniteLossError, Trainer } from "../src/index.js";
import { loadBatches } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const { x, y } = await loadBatches(async (name) => new Uint8Array(await readFile(join(FIXTURES, "batches", name))));
const FEATURES = 16; // the fixture's input shape [4, 4, 1]
const EXAMPLES = y.length; // 80

const load = () => Trainer.load(ort, BUNDLE);
const examples = (start, end) => [x.subarray(start * FEATURES, end * FEATURES), y.subarray(start, end)];
const sameState = (a, b) => {
  for (const [name, values] of a.getState().tensors) assert.deepEqual(b.getState().tensors.get(name), values, name);
};

test("fit without shuffling runs the steps a loop over the same batches runs, last partial batch included", async () => {
  const looped = await load();
  const losses = [];
  for (let epoch = 0; epoch < 2; epoch++) {
    for (let start = 0; start < EXAMPLES; start += 24) losses.push((await looped.step(...examples(start, Math.min(EXAMPLES, start + 24)))).loss);
  }
  const trainer = await load();
  const running = [];
  const history = await trainer.fit(x, y, {
    epochs: 2,
    batchSize: 24,
    shuffle: false,
    callbacks: { onBatchEnd: (batch, logs) => void running.push([batch, logs.loss]) },
  });
  assert.equal(trainer.stepCount, 8); // 80 examples: batches of 24, 24, 24 and 8, twice
  sameState(trainer, looped);
  // the epoch's loss is the mean over its examples (each batch's mean weighted by its size), as Python's
  const sizes = [24, 24, 24, 8];
  const mean = (values) => values.reduce((sum, v, k) => sum + v * sizes[k], 0) / EXAMPLES;
  assert.deepEqual(history.epoch, [0, 1]);
  assert.deepEqual(Object.keys(history.history), ["loss", "accuracy"]);
  assert.ok(Math.abs(history.history.loss[0] - mean(losses.slice(0, 4))) < 1e-12);
  assert.ok(Math.abs(history.history.loss[1] - mean(losses.slice(4))) < 1e-12);
  // onBatchEnd: 0-based batches, the running mean of the epoch so far (Keras 3's and Python's logs)
  assert.deepEqual(running.map(([batch]) => batch), [0, 1, 2, 3, 0, 1, 2, 3]);
  assert.equal(running[0][1], losses[0]);
  assert.ok(Math.abs(running[1][1] - (losses[0] + losses[1]) / 2) < 1e-12);
  assert.equal(running[3][1], history.history.loss[0]);
  const accuracy = history.history.accuracy[0];
  assert.ok(accuracy >= 0 && accuracy <= 1 && Number.isInteger(accuracy * EXAMPLES));
});

test("a seeded shuffle repeats: the same seed gives the same run, another seed another", async () => {
  const run = async (seed) => {
    const trainer = await load();
    const history = await trainer.fit(x, y, { epochs: 2, batchSize: 16, seed });
    return { trainer, history };
  };
  const [a, b, c] = await Promise.all([run(7), run(7), run(8)]);
  assert.deepEqual(a.history, b.history);
  sameState(a.trainer, b.trainer);
  assert.notDeepEqual(a.history.history.loss, c.history.history.loss);
  const unshuffled = await (await load()).fit(x, y, { epochs: 2, batchSize: 16, shuffle: false });
  assert.notDeepEqual(a.history.history.loss, unshuffled.history.loss);
});

test("each epoch's order is a permutation of its own, from mulberry32 seeded with (seed, epoch)", () => {
  const first = shuffledOrder(EXAMPLES, 7, 0);
  assert.deepEqual([...first].sort((p, q) => p - q), Array.from({ length: EXAMPLES }, (_, i) => i));
  assert.notDeepEqual(first, shuffledOrder(EXAMPLES, 7, 1));
  assert.deepEqual(first, shuffledOrder(EXAMPLES, 7, 0));
  const random = mulberry32(1);
  const draws = Array.from({ length: 1000 }, random);
  assert.ok(draws.every((v) => v >= 0 && v < 1));
  assert.ok(Math.abs(draws.reduce((s, v) => s + v, 0) / 1000 - 0.5) < 0.05);
  assert.equal(mulberry32(1)(), draws[0]); // the same in every engine: no Math.random
  // a gathered batch holds the rows the order names
  const rows = { data: x, shape: [EXAMPLES, 4, 4, 1] };
  const batch = takeRows(rows, 2, 5, first);
  assert.deepEqual(batch.shape, [3, 4, 4, 1]);
  assert.deepEqual(batch.data.subarray(FEATURES, 2 * FEATURES), x.subarray(first[3] * FEATURES, (first[3] + 1) * FEATURES));
});

test("initialEpoch resumes a seeded run: its epochs are shuffled as the uninterrupted run's", async () => {
  const whole = await load();
  const all = await whole.fit(x, y, { epochs: 3, batchSize: 16, seed: 3 });
  const resumed = await load();
  const first = await resumed.fit(x, y, { epochs: 1, batchSize: 16, seed: 3 });
  const rest = await resumed.fit(x, y, { epochs: 3, initialEpoch: 1, batchSize: 16, seed: 3 });
  assert.deepEqual(rest.epoch, [1, 2]);
  assert.deepEqual([...first.history.loss, ...rest.history.loss], all.history.loss);
  sameState(whole, resumed);
});

test("validationData adds val_loss and val_accuracy: evaluate's, over every validation example", async () => {
  const trainer = await load();
  const [xv, yv] = examples(60, 80);
  const logs = [];
  const history = await trainer.fit(...examples(0, 60), {
    epochs: 2,
    batchSize: 16,
    seed: 1,
    validationData: [xv, yv],
    callbacks: { onEpochEnd: (epoch, epochLogs) => void logs.push({ ...epochLogs }) },
  });
  assert.deepEqual(Object.keys(history.history), ["loss", "accuracy", "val_loss", "val_accuracy"]);
  const evaluation = await trainer.evaluate(xv, yv); // one batch of 20: validation ran in batches of 16 and 4
  assert.ok(Math.abs(history.history.val_loss[1] - evaluation.loss) < 1e-6);
  assert.ok(Math.abs(history.history.val_accuracy[1] - evaluation.accuracy) < 1e-12);
  const recorded = Object.fromEntries(Object.entries(history.history).map(([key, values]) => [key, values[1]]));
  assert.deepEqual(logs[1], recorded); // what onEpochEnd received is what the History holds
});

test("callbacks are awaited in order, and stop fit by returning false or setting stopTraining", async () => {
  const events = [];
  const sleep = () => new Promise((resolve) => setTimeout(resolve, 5));
  const trainer = await load();
  await trainer.fit(x, y, {
    epochs: 2,
    batchSize: 40,
    callbacks: [
      {
        onTrainBegin: () => void events.push("train"),
        onEpochBegin: (epoch) => void events.push(`epoch ${epoch}`),
        onBatchEnd: async (batch) => {
          await sleep();
          events.push(`batch ${batch} step ${trainer.stepCount}`);
        },
        onEpochEnd: async (epoch) => {
          await sleep();
          events.push(`end ${epoch}`);
        },
        onTrainEnd: (logs) => void events.push(`done ${Object.keys(logs)}`),
      },
    ],
  });
  assert.deepEqual(events, [
    ...["train", "epoch 0", "batch 0 step 1", "batch 1 step 2", "end 0"],
    ...["epoch 1", "batch 0 step 3", "batch 1 step 4", "end 1", "done loss,accuracy"],
  ]);

  const byReturn = await load();
  const stopped = await byReturn.fit(x, y, { epochs: 5, batchSize: 8, callbacks: { onBatchEnd: (batch) => batch !== 2 } });
  assert.equal(byReturn.stepCount, 3); // stopped after the third batch; that epoch still ends and is recorded
  assert.deepEqual(stopped.epoch, [0]);
  assert.equal(byReturn.stopTraining, true);

  const byFlag = await load();
  const flagged = await byFlag.fit(x, y, {
    epochs: 5,
    batchSize: 40,
    callbacks: { onEpochEnd: (epoch) => { if (epoch === 1) byFlag.stopTraining = true; } },
  });
  assert.deepEqual(flagged.epoch, [0, 1]);
  assert.equal(byFlag.stepCount, 4);
  await byFlag.fit(x, y, { batchSize: 80 }); // a new fit starts with stopTraining reset
  assert.equal(byFlag.stepCount, 5);
});

test("a non-finite loss stops fit with NonFiniteLossError and leaves the weights of the last finite step", async () => {
  const trainer = await load();
  const huge = Float32Array.from(x);
  huge.fill(3e38, 32 * FEATURES, 40 * FEATURES); // finite x, but the logits of the fifth batch overflow
  await trainer.fit(...examples(0, 32), { batchSize: 8, shuffle: false });
  const error = await trainer.fit(huge, y, { epochs: 2, batchSize: 8, shuffle: false }).catch((e) => e);
  assert.ok(error instanceof NonFiniteLossError, String(error));
  // batches counted from 0, as onBatchEnd counts them, with the ordinal
  assert.match(error.message, /^The loss became NaN at epoch 0, batch 4 \(the 5th of 10\); training stopped and the weights of the last finite step were kept/);
  assert.equal(error.weightsFinite, true);
  assert.deepEqual(error.history, { epoch: [], history: {} });
  assert.equal(trainer.stepCount, 4 + 4); // the four batches before it
  const reference = await load(); // the same eight finite steps
  for (let k = 0; k < 2; k++) await reference.fit(...examples(0, 32), { batchSize: 8, shuffle: false });
  sameState(trainer, reference);

  // a callback that stops on it makes a graceful stop, the epoch's loss NaN (Python's TerminateOnNaN)
  const graceful = await load();
  const history = await graceful.fit(huge, y, {
    batchSize: 8,
    shuffle: false,
    callbacks: { onBatchEnd: (batch, logs) => Number.isFinite(logs.loss) },
  });
  assert.equal(graceful.stepCount, 4);
  assert.ok(Number.isNaN(history.history.loss[0]));
});

test("fit refuses bad options and data before any step, naming the argument and the value", async () => {
  const trainer = await load();
  const refused = (options, pattern, data = [x, y]) => assert.rejects(trainer.fit(...data, options), pattern);
  await refused({ epochs: 0 }, { name: "RangeError", message: "fit expects epochs to be a whole number >= 1. Received: epochs=0" });
  await refused({ batchSize: "8" }, { name: "TypeError", message: 'fit expects batchSize to be a whole number >= 1. Received: "8" (a string)' });
  await refused({ batchSize: 2.5 }, /fit expects batchSize to be a whole number >= 1. Received: batchSize=2.5/);
  await refused({ seed: -1 }, /fit expects seed to be a whole number in \[0, 2\*\*32\). Received: -1/);
  await refused({ shuffle: "yes" }, /fit expects shuffle to be true or false. Received: "yes"/);
  await refused({ epoch: 3 }, /fit takes the options epochs, batchSize, shuffle, seed, initialEpoch, validationData, validationSplit, callbacks, verbose, yieldEvery. Received: epoch/);
  await refused(
    { callbacks: { onEpochEnds() {} } },
    /^TypeError: fit expects the hooks of callbacks to be among onTrainBegin, .*onTrainEnd, onYield \(.*misspelled hook\). Received: callbacks.onEpochEnds$/,
  );
  await refused({ callbacks: [{ onBatchEnd: 1 }] }, /fit expects callbacks\[0\].onBatchEnd to be a function. Received: 1/);
  await refused({ validationData: x }, /fit expects validationData to be \[x, labels\]. Received: a Float32Array of 1280 values/);
  await refused({ validationData: [x, y.subarray(1)] }, /validationData\[1\] expects 80 values \(shape \[80\]\); received 79/);
  await refused({}, /labels expects 80 values \(shape \[80\]\); received 79/, [x, y.subarray(1)]);
  const outside = Int32Array.from(y, (v, i) => (i === 1 ? 5 : Number(v)));
  await refused({}, /labels for loss 'softmax_cross_entropy_with_logits' expects class indices in \[0, 2\].*Received: labels\[1\]=5 /, [x, outside]);
  await refused({}, /x expects finite values. Received: x\[2, 0, 1, 0\]=NaN/, [Float32Array.from(x, (v, i) => (i === 33 ? NaN : v)), y]);
  assert.equal(trainer.stepCount, 0);
  const running = trainer.fit(x, y, { batchSize: 40 });
  await assert.rejects(trainer.fit(x, y), /fit was called while another fit runs on this trainer: await the first one/);
  await running;
  assert.equal(trainer.stepCount, 2);
});

test("validationSplit holds out the last fraction before shuffling, as validationData of those examples would", async () => {
  const split = await load();
  const history = await split.fit(x, y, { epochs: 2, batchSize: 16, seed: 3, validationSplit: 0.25 });
  const given = await load();
  const [xTrain, yTrain] = examples(0, 60);
  const expected = await given.fit(xTrain, yTrain, { epochs: 2, batchSize: 16, seed: 3, validationData: examples(60, 80) });
  assert.deepEqual(history, expected);
  sameState(split, given);
  // Python's count: round(n * split), halves to even (10 * 0.25 = 2.5 holds out 2, as Python's round does)
  let samples;
  await (await load()).fit(...examples(0, 10), {
    validationSplit: 0.25,
    callbacks: { setParams: (params) => void (samples = params.samples) },
  });
  assert.equal(samples, 8);
  const trainer = await load();
  const refused = (options, pattern) => assert.rejects(trainer.fit(x, y, options), pattern);
  await refused({ validationSplit: 1 }, /^RangeError: fit expects validationSplit to be a number in \[0, 1\), the fraction held out\. Received: 1$/);
  await refused({ validationSplit: "0.2" }, /Received: "0.2"$/);
  await refused({ validationSplit: 0.001 }, /^RangeError: fit expects validationSplit to leave training and validation examples\. Received: validationSplit=0.001 of 80 examples$/);
  await refused({ validationSplit: 0.2, validationData: examples(0, 8) }, /^TypeError: fit takes validationData or validationSplit, not both/);
  assert.equal(trainer.stepCount, 0);
});

test("verbose 1 or 2 logs a line per epoch as Python's fit(verbose=2); 0, the default, logs nothing", async () => {
  const lines = [];
  const log = console.log;
  console.log = (line) => void lines.push(line);
  try {
    const trainer = await load();
    await trainer.fit(x, y, { epochs: 2, batchSize: 32, seed: 1 });
    assert.deepEqual(lines, []);
    const history = await trainer.fit(x, y, { epochs: 2, batchSize: 32, seed: 1, verbose: 1, validationData: examples(0, 8) });
    assert.equal(lines.length, 2);
    const figures = (k) => ["loss", "accuracy", "val_loss", "val_accuracy"].map((key) => `${key}: ${history.history[key][k].toFixed(4)}`);
    assert.match(lines[0], new RegExp(`^Epoch 1/2 - 3 batches - \\d+\\.\\d\\ds - ${figures(0).join(" - ")}$`));
    assert.match(lines[1], new RegExp(`^Epoch 2/2 - 3 batches - \\d+\\.\\d\\ds - ${figures(1).join(" - ")}$`));
  } finally {
    console.log = log;
  }
  await assert.rejects((await load()).fit(x, y, { verbose: 3 }), /^RangeError: fit expects verbose to be 0 \(silent\), 1 or 2 \(a line per epoch\)\. Received: 3$/);
});

test("a learning rate that overflows the weights: NonFiniteLossError says they are not finite, and a saved state restores", async () => {
  const trainer = await load();
  await trainer.fit(...examples(0, 16), { batchSize: 8, shuffle: false });
  const saved = trainer.stateBytes();
  trainer.learningRate = 3e38; // float32 holds it; Adam's first update makes every weight infinite
  const error = await trainer.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false }).catch((e) => e);
  assert.ok(error instanceof NonFiniteLossError, String(error));
  assert.equal(error.weightsFinite, false);
  assert.match(
    error.message,
    /^The loss became NaN at epoch 0, batch 1 \(the 2nd of 5\); training stopped, and the weights are not finite any more: dense_1\.kernel \(96 of 96 values\), .* hold NaN or infinity, written by an update whose loss was still finite\. .*restore a state saved before \(trainer\.setState\(trainer\.stateFromBytes\(saved\)\)\) or load the bundle again \(Trainer\.load\), then train with a lower learning rate \(it is 3e\+38\)/,
  );
  assert.throws(() => trainer.setState(trainer.getState()), /^RangeError: setState: dense_1\.kernel expects finite values .*Received: dense_1\.kernel\[0\]=-?Infinity \(a state taken after training diverged: restore a state saved before/);
  trainer.setState(trainer.stateFromBytes(saved)); // recoverable
  trainer.learningRate = 0.001;
  const history = await trainer.fit(x, y, { batchSize: 16, shuffle: false });
  assert.ok(Number.isFinite(history.history.loss[0]));

  // the last update of an epoch breaks them with a finite loss: seen at the epoch's end, before validation
  const last = await load();
  last.learningRate = 3e38;
  const atEnd = await last.fit(...examples(0, 16), { batchSize: 16, validationData: examples(16, 32) }).catch((e) => e);
  assert.ok(atEnd instanceof NonFiniteLossError && atEnd.weightsFinite === false, String(atEnd));
  assert.match(atEnd.message, /^Training stopped at the end of epoch 0, whose losses were all finite, and the weights are not finite any more: /);
  assert.equal(last.stepCount, 1);
});
