// Which of a trainer's weights hold NaN or infinity, and that said in a message: what NonFiniteLossError reports
// after an update broke them. Looked at only where fit already knows something went wrong (a loss that is not
// finite) and once per epoch, never per step (Python's onnxtrain/_finite_weights.py).

/**
 * {name, bad, size} of each of `names` whose float values are not all finite, in order.
 * @param {Map<string, {data: ArrayLike<number | bigint>}>} tensors ort.Tensor by name (the trainer's)
 * @param {string[]} names the weights to look at (the trainable ones: a frozen weight may hold an exporter's -inf)
 * @returns {{name: string, bad: number, size: number}[]}
 */
export function nonFiniteWeights(tensors, names) {
  const found = [];
  for (const name of names) {
    const data = tensors.get(name)?.data;
    if (!(data instanceof Float32Array)) continue;
    let bad = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad++;
    if (bad > 0) found.push({ name, bad, size: data.length });
  }
  return found;
}

/**
 * The weights nonFiniteWeights found, for a message: "dense_1.kernel (128 of 128 values), dense_1.bias (...)".
 * @param {{name: string, bad: number, size: number}[]} found
 * @param {number} [limit] weights named before "and k more"
 */
export function describeNonFinite(found, limit = 4) {
  const named = found.map(({ name, bad, size }) => `${name} (${bad} of ${size} values)`);
  const more = named.length > limit ? ` and ${named.length - limit} more` : "";
  return `${named.slice(0, limit).join(", ")}${more}`;
}

/** What to do about weights that are not finite: restore finite ones and train more gently. */
export const RESTORE =
  "restore a state saved before (trainer.setState(trainer.stateFromBytes(saved))) or load the bundle again " +
  "(Trainer.load), then train with a lower learning rate";
