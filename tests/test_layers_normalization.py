"""BatchNormalization and LayerNormalization through the shared harness, BatchNormalization's moving statistics
against a numpy simulation of the batches, and the forms emitted for old opsets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from layer_harness import LayerCase, table_tests

from onnxtrain import InferenceModel, Sequential
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.layers import (
    LSTM,
    BatchNormalization,
    Cropping1D,
    Dense,
    Flatten,
    GroupNormalization,
    Input,
    Layer,
    LayerNormalization,
    UnitNormalization,
    UpSampling1D,
)
from onnxtrain.optimizers import SGD, Adam


def batch_norm_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Inference mode: the moving statistics, per channel of Keras' `axis`."""
    axis = layer.axis % x.ndim
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    p = {k: v.astype(np.float64).reshape(shape) for k, v in layer.params.items()}
    y = (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + layer.epsilon)
    return y * p.get("gamma", 1.0) + p.get("beta", 0.0)


def layer_norm_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    axes = tuple(sorted(a % x.ndim for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis])))
    shape = [x.shape[a] if a in axes else 1 for a in range(1, x.ndim)]
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + layer.epsilon)
    if layer.scale:
        y = y * layer.params["gamma"].reshape(shape)
    if layer.center:
        y = y + layer.params["beta"].reshape(shape)
    return y


def keras_weights(*names: str) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    """Keras' weight list (gamma, beta, moving_mean, moving_variance, less those the layer lacks) by our names."""
    return lambda weights: dict(zip(names, weights, strict=True))


BN = ("gamma", "beta", "moving_mean", "moving_variance")


def batch_norm(case_id: str, make, input_shape, params: int, names=BN, trains: bool = True) -> LayerCase:
    return LayerCase(
        case_id, make, input_shape, input_shape, params, batch_norm_reference, keras_weights(*names), trains
    )


def layer_norm(case_id: str, make, input_shape, params: int, names=("gamma", "beta")) -> LayerCase:
    case = LayerCase(case_id, make, input_shape, input_shape, params, layer_norm_reference, keras_weights(*names))
    case.tolerance = (1e-5, 2e-5)
    return case


CASES = [
    batch_norm("batch_norm", lambda: BatchNormalization(), (5,), 20),
    batch_norm("batch_norm_image", lambda: BatchNormalization(momentum=0.9, epsilon=1e-2), (4, 4, 3), 12),
    # The harness fits random labels for 12 steps: with these two the loss, under batch statistics, need not fall
    # (trains=False); test_batch_normalization_learns checks that they learn.
    batch_norm("batch_norm_axis1", lambda: BatchNormalization(axis=1), (4, 3, 2), 16, trains=False),
    batch_norm(
        "batch_norm_plain",
        lambda: BatchNormalization(center=False, scale=False),
        (3, 3, 2),
        4,
        ("moving_mean", "moving_variance"),
    ),
    batch_norm(
        "batch_norm_sequence",
        lambda: BatchNormalization(scale=False),
        (6, 4),
        12,
        ("beta", "moving_mean", "moving_variance"),
        trains=False,
    ),
    layer_norm("layer_norm", lambda: LayerNormalization(), (6,), 12),
    layer_norm("layer_norm_image", lambda: LayerNormalization(axis=[1, 2, 3]), (3, 3, 2), 36),
    layer_norm("layer_norm_trailing", lambda: LayerNormalization(axis=[-2, -1], epsilon=1e-5), (2, 3, 4), 24),
    layer_norm("layer_norm_axis1", lambda: LayerNormalization(axis=1), (4, 3), 8),
    layer_norm("layer_norm_no_center", lambda: LayerNormalization(center=False), (2, 5), 5, ("gamma",)),
    layer_norm("layer_norm_no_scale", lambda: LayerNormalization(scale=False), (2, 5), 5, ("beta",)),
]


test_normalization_forward_matches_numpy_and_keras, test_normalization_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize(
    "layer", [BatchNormalization(axis=1), BatchNormalization(scale=False)], ids=["axis1", "no_scale"]
)
def test_batch_normalization_learns(layer: BatchNormalization, blobs):
    x, y = blobs
    with Sequential.of(Input(4, 3), layer, Flatten(), Dense(3, activation="linear"), seed=2) as m:
        m.compile(optimizer=Adam(0.01), loss="softmax_cross_entropy_with_logits", engine="portable")
        before = m.get_weights()
        history = m.fit(x, y, epochs=5, batch_size=16, verbose=0).history
        after = m.get_weights()
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    assert not np.array_equal(after["batch_normalization_1.beta"], before["batch_normalization_1.beta"])


# --- BatchNormalization's moving statistics ------------------------------------------------------------------
MOMENTUM, EPSILON = 0.8, 1e-3


def image_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3, 3, 2)) * np.array([1.0, 3.0]) + np.array([2.0, -1.0])
    return x.astype(np.float32), rng.integers(0, 3, 40)


def bn_model(**kwargs: object) -> Sequential:
    layers = [Input(3, 3, 2), BatchNormalization(momentum=MOMENTUM, epsilon=EPSILON, **kwargs), Flatten()]
    return Sequential.of(*layers, Dense(3, activation="linear"), seed=3)


def normalized(x: np.ndarray, mean: np.ndarray, var: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """Input -> BatchNormalization (with these statistics) -> Flatten -> Dense, in numpy."""
    bn = "batch_normalization_1"
    y = (x - mean) / np.sqrt(var + EPSILON) * w[f"{bn}.gamma"] + w[f"{bn}.beta"]
    return y.reshape(len(x), -1) @ w["dense_1.kernel"] + w["dense_1.bias"]


@pytest.mark.parametrize("opset", [13, 17])
def test_moving_statistics_follow_the_batches_as_keras_moves_them(opset: int):
    x, y = image_data()
    with bn_model() as m:
        m.compile(optimizer=SGD(0.05), loss="softmax_cross_entropy_with_logits", engine="portable", opset=opset)
        m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        weights = m.get_weights()
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(2):
        for batch in np.split(x.astype(np.float64), 5):
            mean = MOMENTUM * mean + (1 - MOMENTUM) * batch.mean(axis=(0, 1, 2))
            var = MOMENTUM * var + (1 - MOMENTUM) * batch.var(axis=(0, 1, 2))  # biased, as Keras
    np.testing.assert_allclose(weights["batch_normalization_1.moving_mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights["batch_normalization_1.moving_variance"], var, rtol=1e-5, atol=1e-6)


def test_training_normalizes_with_the_batch_and_evaluation_and_the_export_with_the_moving_statistics(tmp_path):
    x, y = image_data()
    with bn_model() as m:
        m.compile(optimizer=SGD(0.05), loss="softmax_cross_entropy_with_logits", engine="portable")
        m.fit(x, y, epochs=3, batch_size=8, verbose=0)
        w = m.get_weights()
        _, eval_logits = m._trainer.engine.eval_step(x, y)
        m.export(tmp_path / "model.onnx")
        _, train_logits = m._trainer.engine.train_step(x, y)  # the forward runs on the weights before the step
    bn = "batch_normalization_1"
    moving = normalized(x, w[f"{bn}.moving_mean"], w[f"{bn}.moving_variance"], w)
    batch = normalized(x, x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)), w)
    np.testing.assert_allclose(eval_logits, moving, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(train_logits, batch, rtol=1e-4, atol=1e-4)
    assert np.abs(moving - batch).max() > 0.1  # the two forms differ
    exported = InferenceModel.load(tmp_path / "model.onnx")
    probabilities = np.exp(moving - moving.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        exported.predict_softly(x), probabilities / probabilities.sum(1, keepdims=True), atol=1e-5
    )


def test_opset_13_trains_as_opset_17_does():
    # Opset 13 has no training mode: the batch statistics come from Reduce ops and feed the inference form, whose
    # gradient flows through them. Both forms must give the same step.
    x, y = image_data()
    results = []
    for opset in (13, 17):
        with bn_model() as m:
            m.compile(optimizer=SGD(0.05), loss="softmax_cross_entropy_with_logits", engine="portable", opset=opset)
            m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
            results.append(m.get_weights())
    for name, value in results[1].items():
        np.testing.assert_allclose(results[0][name], value, rtol=1e-4, atol=1e-5, err_msg=name)


def test_a_frozen_batch_normalization_keeps_and_uses_its_moving_statistics():
    x, y = image_data()
    with bn_model(trainable=False) as m:
        m.compile(optimizer=SGD(0.05), loss="softmax_cross_entropy_with_logits", engine="portable")
        before = m.get_weights()
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
        after = m.get_weights()
        _, train_logits = m._trainer.engine.train_step(x, y)
    for local in ("gamma", "beta", "moving_mean", "moving_variance"):
        name = f"batch_normalization_1.{local}"
        np.testing.assert_array_equal(after[name], before[name])
    bn = "batch_normalization_1"
    expected = normalized(x, after[f"{bn}.moving_mean"], after[f"{bn}.moving_variance"], after)
    np.testing.assert_allclose(train_logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.training
def test_the_ort_training_engine_refuses_batch_normalization():
    with bn_model() as m, pytest.raises(UnsupportedError, match=r"ort-training engine cannot train.*moving_mean"):
        m.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="ort-training")


@pytest.mark.parametrize("opset", [13, 17])
def test_layer_normalization_trains_alike_at_every_opset(opset: int):
    # Opset 17 emits the LayerNormalization op, 13 Reduce ops: the same function and gradient.
    x, y = image_data()
    with Sequential.of(Input(3, 3, 2), LayerNormalization(), Flatten(), Dense(3, activation="linear"), seed=3) as m:
        m.compile(optimizer=SGD(0.05), loss="softmax_cross_entropy_with_logits", engine="portable", opset=opset)
        m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        weights = m.get_weights()
    with Sequential.of(Input(3, 3, 2), LayerNormalization(), Flatten(), Dense(3, activation="linear"), seed=3) as m:
        m.compile(optimizer=SGD(0.05), loss="softmax_cross_entropy_with_logits", engine="portable", opset=18)
        m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        for name, value in m.get_weights().items():
            np.testing.assert_allclose(weights[name], value, rtol=1e-4, atol=1e-5, err_msg=name)


BAD = [
    (lambda: BatchNormalization(momentum=1.5), InvalidArgumentError, r"momentum=...\) expects a number in \[0, 1\]"),
    (lambda: BatchNormalization(epsilon=0), InvalidArgumentError, r"epsilon=...\) expects a number in \(0, inf\]"),
    (lambda: BatchNormalization(axis=1.0), InvalidArgumentError, r"BatchNormalization\(axis=...\) expects an int"),
    (lambda: BatchNormalization(center=1), InvalidArgumentError, r"center=...\) expects a bool"),
    (lambda: BatchNormalization(gamma_initializer="onez"), Exception, r"Could not interpret initializer 'onez'"),
    (
        lambda: Sequential.of(Input(4, 3), BatchNormalization(axis=3)),
        ShapeError,
        r"got axis=3, which is no feature axis of inputs of shape \[None, 4, 3\]",
    ),
    (lambda: Sequential.of(Input(4), BatchNormalization(axis=0)), ShapeError, r"axis=0"),
    (lambda: LayerNormalization(axis=[]), InvalidArgumentError, r"expects an int or a non-empty list of ints"),
    (lambda: LayerNormalization(axis="last"), InvalidArgumentError, r"Received: axis='last'"),
    (lambda: Sequential.of(Input(4, 3), LayerNormalization(axis=[1, -2])), InvalidArgumentError, r"an axis twice"),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_normalization_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (lambda: GroupNormalization(groups=5), (4, 8), r"^GroupNormalization layer has groups=5"),
        (lambda: UnitNormalization(axis=3), (4, 8), r"^UnitNormalization layer got axis=3"),
        (lambda: Cropping1D(3), (4, 8), r"^Cropping1D layer with cropping=\[3, 3\]"),
        (lambda: UpSampling1D(2), (4,), r"^UpSampling1D layer expects sequences"),
        (lambda: LSTM(2), (4,), r"^LSTM layer expects input"),
    ],
)
def test_shape_errors_of_an_unnamed_layer_say_layer_without_a_name(layer, shape, message):
    with pytest.raises(ShapeError, match=message):
        layer().compute_output_shape(shape)
