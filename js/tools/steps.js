// Fixed batches for parity runs (written by Python: tests/js_harness.py) and a timed loop of train steps over
// them; the same module runs in Node.js (tools/parity.mjs) and in the browser (test/browser/harness.js).

/**
 * @typedef {{steps: number, batchSize: number, x: Float32Array, y: BigInt64Array | Float32Array,
 *            features: number, labelWidth: number}} Batches
 */

/**
 * Read batches.json, x.bin (float32) and y.bin (int64 or float32, as batches.json says).
 * @param {(name: string) => Promise<Uint8Array>} read
 * @returns {Promise<Batches>}
 */
export async function loadBatches(read) {
  const spec = JSON.parse(new TextDecoder().decode(await read("batches.json")));
  const copy = async (name) => {
    const bytes = await read(name);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  };
  const x = new Float32Array(await copy(spec.x));
  const yBuffer = await copy(spec.y);
  const y = spec.label_dtype === "int64" ? new BigInt64Array(yBuffer) : new Float32Array(yBuffer);
  const examples = spec.steps * spec.batch_size;
  return {
    steps: spec.steps,
    batchSize: spec.batch_size,
    x,
    y,
    features: x.length / examples,
    labelWidth: y.length / examples,
  };
}

/**
 * Run one train step per batch, in order; time them.
 * @param {import("../src/index.js").Trainer} trainer
 * @param {Batches} batches
 * @param {number} [steps] at most batches.steps
 * @returns {Promise<{seconds: number, losses: number[]}>}
 */
export async function runSteps(trainer, batches, steps = batches.steps) {
  const { batchSize, features, labelWidth } = batches;
  const losses = [];
  const start = performance.now();
  for (let k = 0; k < steps; k++) {
    const x = batches.x.slice(k * batchSize * features, (k + 1) * batchSize * features);
    const y = batches.y.slice(k * batchSize * labelWidth, (k + 1) * batchSize * labelWidth);
    const { loss } = await trainer.step(x, y);
    losses.push(loss);
  }
  return { seconds: (performance.now() - start) / 1000, losses };
}

/**
 * The first batch's evaluation logits, as plain numbers (for JSON).
 * @param {import("../src/index.js").Trainer} trainer
 * @param {Batches} batches
 */
export async function evaluateFirstBatch(trainer, batches) {
  const { batchSize, features, labelWidth } = batches;
  const result = await trainer.evaluate(
    batches.x.subarray(0, batchSize * features),
    batches.y.subarray(0, batchSize * labelWidth),
  );
  return { loss: result.loss, accuracy: result.accuracy, logits: Array.from(result.logits) };
}
