// evaluate's accuracy, as Python's "accuracy" metric computes it (onnxtrain/_named_metrics.py, Metrics.ACCURACY):
// for class indices, the argmax against the index, per position where the output has a class per position (a
// tagger's [steps, classes] with labels [steps]); for float targets, per position the argmax against the target's
// argmax where the output has more than one axis (but under binary cross-entropy), else each unit on its target's
// side of the threshold for binary cross-entropy or a one-unit output (0 on logits, 0.5 on probabilities), else the
// argmax over the example's units against the target's. An example scores its share of right positions or units.

/** Index of the largest of `values[start, start + count)`, the first on ties (numpy's argmax). */
function argmax(values, start, count) {
  let best = 0;
  for (let c = 1; c < count; c++) if (values[start + c] > values[start + best]) best = c;
  return best;
}

/**
 * The share of the batch predicted right: each example's share of right positions (or of right units, for binary
 * targets), averaged over the examples.
 * @param {Float32Array} outputs the eval graph's logits output, [batch, ...positions, classes]
 * @param {BigInt64Array | Float32Array} labels the labels tensor's data: class indices ([batch, ...positions]), or
 *   targets like `outputs`
 * @param {number} batch examples in the batch
 * @param {{loss: string, trainsOnLogits: boolean, classes?: number}} model the bundle's loss; whether the outputs
 *   are logits; the classes of each position where the output has more than one axis (`positionClasses`)
 * @returns {number}
 */
export function accuracy(outputs, labels, batch, { loss, trainsOnLogits, classes }) {
  const units = outputs.length / batch;
  let right = 0;
  if (labels instanceof BigInt64Array) {
    const size = classes ?? units; // one index per position of `size` classes
    for (let p = 0; p < outputs.length / size; p++) if (BigInt(argmax(outputs, p * size, size)) === labels[p]) right++;
    right /= units / size;
  } else if (classes !== undefined && loss !== "binary_crossentropy") {
    for (let at = 0; at < outputs.length; at += classes) {
      if (argmax(outputs, at, classes) === argmax(labels, at, classes)) right++;
    }
    right /= units / classes;
  } else if (loss === "binary_crossentropy" || units === 1) {
    const threshold = trainsOnLogits ? 0 : 0.5;
    for (let i = 0; i < outputs.length; i++) if ((outputs[i] > threshold) === (labels[i] > 0.5)) right++;
    right /= units;
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
