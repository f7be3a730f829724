"""The gradient that flows back through a layer: d loss / d input of Input -> layer -> (Flatten) -> Dense, by
`onnxtrain.autodiff` against central finite differences of the same graph.

The layer harness trains a layer's own parameters; this checks what a layer without any hands to the layers before
it. Float32 graphs, so the differences use a wide step and tolerance; a few elements are checked, not all, and
none within a step of a kink.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from layer_harness import LayerCase, sample

from onnxtrain import Sequential, autodiff, emit
from onnxtrain.layers import Dense, Flatten, Input, Layer
from onnxtrain.losses import SoftmaxCrossEntropyWithLogits


def check_input_gradient(case: LayerCase, elements: int = 12, eps: float = 1e-2) -> None:
    layers: list[Layer] = [Input(*case.input_shape), case.make()]
    if len(case.output_shape) > 1:
        layers.append(Flatten())
    layers.append(Dense(3, activation="linear"))
    model = Sequential(layers, seed=3)
    proto = autodiff.gradients(emit.loss_model(model.layers, SoftmaxCrossEntropyWithLogits()), [emit.INPUT_NAME])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = sample(case, n=4, seed=4)
    labels = np.random.default_rng(5).integers(0, 3, len(x))

    def loss(values: np.ndarray) -> float:
        return float(session.run([emit.LOSS_NAME], {emit.INPUT_NAME: values, emit.LABELS_NAME: labels})[0])

    (gradient,) = session.run([f"{emit.INPUT_NAME}_grad"], {emit.INPUT_NAME: x, emit.LABELS_NAME: labels})
    assert gradient.shape == x.shape

    def central(index: tuple[int, ...], step: float) -> float:
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        return (loss(up) - loss(down)) / (2 * step)

    checked = 0
    for flat in np.random.default_rng(6).permutation(x.size):
        index = tuple(int(i) for i in np.unravel_index(flat, x.shape))
        numeric, finer = central(index, eps), central(index, eps / 2)
        if abs(numeric - finer) > 1e-4 + 1e-2 * abs(numeric):
            continue  # a kink (ReLU's, a threshold's) within eps: the differences depend on the step
        np.testing.assert_allclose(gradient[index], numeric, rtol=1e-2, atol=2e-4, err_msg=f"{case.id} at {index}")
        checked += 1
        if checked == elements:
            break
    assert checked >= min(elements, x.size // 2), f"{case.id}: only {checked} elements away from kinks"
