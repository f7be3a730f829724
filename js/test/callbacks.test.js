// fit's callbacks as TF.js and Keras users write them: class instances that keep state in fields, hooks as class
// methods, setModel / setParams; misspelled hooks refused; yieldEvery and onYield.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Trainer } from "../src/index.js";
import { loadBatches } from "../tools/steps.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const BUNDLE = join(FIXTURES, "bundle");
const { x, y } = await loadBatches(async (name) => new Uint8Array(await readFile(join(FIXTURES, "batches", name))));
const load = () => Trainer.load(ort, BUNDLE);

/** Keras' EarlyStopping, as a TF.js user writes it: state in fields, hooks as methods, the model from setModel. */
class EarlyStopping {
  constructor(patience) {
    this.patience = patience;
    this.best = Infinity;
    this.wait = 0;
    this.model = null;
    this.params = null;
    this.seen = [];
  }

  setModel(model) {
    this.model = model;
  }

  setParams(params) {
    this.params = params;
  }

  onEpochEnd(epoch, logs) {
    this.seen.push(epoch);
    if (logs.loss < this.best - 1) {
      this.best = logs.loss;
      this.wait = 0;
    } else if (++this.wait >= this.patience) {
      this.model.stopTraining = true; // TF.js' way
    }
  }
}

test("a class instance with state is a callback: its methods are found and called on it, setModel and setParams too", async () => {
  const trainer = await load();
  const early = new EarlyStopping(2);
  const history = await trainer.fit(x, y, { epochs: 10, batchSize: 16, seed: 1, validationSplit: 0.25, callbacks: [early] });
  // the first epoch sets best; no later one improves by 1: stopped after the patience of 2
  assert.deepEqual(history.epoch, [0, 1, 2]);
  assert.deepEqual(early.seen, [0, 1, 2]);
  assert.equal(early.model, trainer);
  assert.deepEqual(early.params, {
    epochs: 10,
    initialEpoch: 0,
    samples: 60,
    steps: 4,
    batchSize: 16,
    verbose: 0,
    doValidation: true,
    metrics: ["loss", "accuracy", "val_loss", "val_accuracy"],
  });

  // a subclass's inherited hooks, and hooks as own fields next to state
  class Counting extends EarlyStopping {
    onBatchEnd() {
      this.batches = (this.batches ?? 0) + 1;
    }
  }
  const counting = new Counting(100);
  const plain = { count: 0, onEpochBegin() { this.count++; } };
  await (await load()).fit(x, y, { epochs: 2, batchSize: 40, callbacks: [counting, plain] });
  assert.deepEqual([counting.batches, counting.seen, plain.count], [4, [0, 1], 2]);
});

test("a name like a hook's that is not one, or not a function, is refused naming it; other fields are not", async () => {
  const trainer = await load();
  class Misspelled {
    constructor() {
      this.best = 0;
    }
    onEpochEnds() {}
  }
  await assert.rejects(
    trainer.fit(x, y, { callbacks: [new Misspelled()] }),
    /^TypeError: fit expects the hooks of callbacks\[0\] to be among onTrainBegin, .*onYield \(other fields are the callback's own, but one named like a hook is most likely a misspelled hook\)\. Received: callbacks\[0\]\.onEpochEnds$/,
  );
  await assert.rejects(trainer.fit(x, y, { callbacks: { onTrainBatchEnd() {} } }), /Received: callbacks\.onTrainBatchEnd$/);
  await assert.rejects(trainer.fit(x, y, { callbacks: { onEpochEnd: "log" } }), /^TypeError: fit expects callbacks\.onEpochEnd to be a function\. Received: "log"$/);
  await assert.rejects(trainer.fit(x, y, { callbacks: [() => {}] }), /^TypeError: fit expects callbacks\[0\] to be an object with hooks .*Received: a function$/);
  assert.equal(trainer.stepCount, 0);
  // fields that do not look like hooks (one, only, on, onset) are the callback's own
  await trainer.fit(x, y, { batchSize: 80, callbacks: { one: 1, only: "x", on: true, onset: 2, model: null } });
  assert.equal(trainer.stepCount, 1);
});

test("yieldEvery 'batch' yields to the event loop after each batch and calls onYield; 'never' does not", async () => {
  const yields = [];
  const trainer = await load();
  await trainer.fit(x, y, {
    epochs: 2,
    batchSize: 40,
    yieldEvery: "batch",
    callbacks: { onYield: (epoch, batch, logs) => void yields.push([epoch, batch, typeof logs.loss]) },
  });
  assert.deepEqual(yields, [[0, 0, "number"], [0, 1, "number"], [1, 0, "number"], [1, 1, "number"]]);
  yields.length = 0;
  await trainer.fit(x, y, { epochs: 2, batchSize: 40, yieldEvery: "never", callbacks: { onYield: () => void yields.push(1) } });
  await trainer.fit(x, y, { epochs: 2, batchSize: 40, yieldEvery: "epoch", callbacks: { onYield: () => void yields.push(1) } });
  assert.deepEqual(yields, []); // onYield follows batch yields only, as TF.js'
  for (const bad of ["sometimes", -1, NaN, true]) {
    await assert.rejects(
      trainer.fit(x, y, { yieldEvery: bad }),
      /^RangeError: fit expects yieldEvery to be 'auto', 'batch', 'epoch', 'never' or milliseconds >= 0\. Received: /,
    );
  }
});
