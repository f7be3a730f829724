// evaluate's accuracy, as Python's "accuracy" metric computes it (onnxtrain/metrics.py, Metrics.ACCURACY): the
// argmax for class indices; for float targets, each unit on its target's side of the threshold for binary
// cross-entropy or a one-unit output (0 on logits, 0.5 on probabilities), else argmax against the target's argmax:
// per position where the output has a class per position (a tagger's [steps, classes]), each step one hit or miss.

/** Index of the largest of `values[start, start + count)`, the first on ties (numpy's argmax). */
function argmax(values, start, count) {
  let best = 0;
  for (let c = 1; c < count; c++) if (values[start + c] > values[start + best]) best = c;
  return best;
}

/**
 * The share of the batch predicted right (Python's per-unit share for binary targets).
 * @param {Float32Array} outputs the eval graph's logits output, [batch, units]
 * @param {BigInt64Array | Float32Array} labels the labels tensor's data: class indices, or targets like `outputs`
 * @param {number} batch examples in the batch
 * @param {{loss: string, trainsOnLogits: boolean, classes?: number}} model the bundle's loss; whether the outputs
 *   are logits; the classes of each position where the output has more than one axis (`positionClasses`)
 * @returns {number}
 */
export function accuracy(outputs, labels, batch, { loss, trainsOnLogits, classes }) {
  const units = outputs.length / batch;
  let right = 0;
  if (labels instanceof BigInt64Array) {
    for (let i = 0; i < batch; i++) if (BigInt(argmax(outputs, i * units, units)) === labels[i]) right++;
  } else if (loss === "binary_crossentropy" || units === 1) {
    const threshold = trainsOnLogits ? 0 : 0.5;
    for (let i = 0; i < outputs.length; i++) if ((outputs[i] > threshold) === (labels[i] > 0.5)) right++;
    right /= units;
  } else if (classes !== undefined && classes < units) {
    for (let at = 0; at < outputs.length; at += classes) {
      if (argmax(outputs, at, classes) === argmax(labels, at, classes)) right++;
    }
    right /= units / classes;
  } else {
    for (let i = 0; i < batch; i++) if (argmax(outputs, i * units, units) === argmax(labels, i * units, units)) right++;
  }
  return right / batch;
}

/**
 * The classes of each position for `accuracy`: the last axis of a per-example output shape of more than one axis
 * (the bundle's `output_shape`), else undefined (one class per example).
 * @param {number[]} outputShape
 * @returns {number | undefined}
 */
export function positionClasses(outputShape) {
  return outputShape.length > 1 ? outputShape[outputShape.length - 1] : undefined;
}
