"""Dropout and SpatialDropout1D/2D/3D: the identity outside training; in training, masks that are the documented pure
function of (seed, layer, step, element) (`onnxtrain/layers/_dropout.py`), checked against its numpy twin and
statistically."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
from layer_harness import LayerCase, check_resumed_fit_of_layer, table_tests

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import (
    Dense,
    Dropout,
    Flatten,
    Input,
    Layer,
    MaxPooling2D,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from onnxtrain.layers import _dropout as spec
from onnxtrain.layers._layout import channels_last, emit_layer
from onnxtrain.portable._graphs import ParameterInputBuilder


def identity(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x


# A random-label fit's loss through a dropout layer need not fall in 3 epochs (trains=False); the layer's
# training is checked below on a problem it can learn.
CASES = [
    LayerCase("dropout", lambda: Dropout(0.5), (6,), (6,), 0, identity, trains=False),
    LayerCase("dropout_image", lambda: Dropout(0.2, seed=3), (4, 4, 3), (4, 4, 3), 0, identity, trains=False),
    LayerCase(
        "dropout_noise_shape",
        lambda: Dropout(0.3, noise_shape=(None, 1, 3)),
        (5, 3),
        (5, 3),
        0,
        identity,
        trains=False,
    ),
    LayerCase("spatial_dropout1d", lambda: SpatialDropout1D(0.25), (5, 3), (5, 3), 0, identity, trains=False),
    LayerCase("spatial_dropout2d", lambda: SpatialDropout2D(0.25), (4, 4, 3), (4, 4, 3), 0, identity, trains=False),
    LayerCase(
        "spatial_dropout3d", lambda: SpatialDropout3D(0.25), (2, 3, 4, 3), (2, 3, 4, 3), 0, identity, trains=False
    ),
]


test_dropout_forward_is_the_identity_and_matches_keras, test_dropout_trains_and_exports = table_tests(CASES)


def test_a_model_with_dropout_learns_and_predicts_without_it(blobs):
    x, y = blobs
    with Sequential.of(Input(4, 3), Flatten(), Dense(32), Dropout(0.4), Dense(3, activation="linear"), seed=2) as m:
        m.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", metric="accuracy", engine="portable")
        losses = m.fit(x, y, epochs=6, batch_size=16, verbose=0).history["loss"]
        assert losses[-1] < 0.5 * losses[0], losses
        _, training_logits = m._trainer.engine.train_step(x[:16], y[:16])  # the step's forward drops units
        _, eval_logits = m._trainer.engine.eval_step(x[:16], y[:16])
        weights = m.get_weights()
    hidden = np.maximum(x[:16].reshape(16, -1) @ weights["dense_1.kernel"] + weights["dense_1.bias"], 0)
    np.testing.assert_allclose(eval_logits, hidden @ weights["dense_2.kernel"] + weights["dense_2.bias"], atol=1e-4)
    assert not np.allclose(training_logits, eval_logits, atol=1e-3)


# --- the mask ----------------------------------------------------------------------------------------------
def scramble(v: np.ndarray | int, constants: tuple[int, ...]) -> np.ndarray:
    v = (np.asarray(v, np.int64) * spec.MULTIPLIER + constants[0]) % spec.P
    for c in constants[1:]:
        v = (v * v + c) % spec.P
    return v


def reference_keep(name: str, seed: int | None, rate: float, step: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """The module docstring's mask in numpy: bool (n, *shape), channels last."""
    layer = spec.layer_key(name, seed)
    step_key = scramble(step % spec.P + layer, spec.STEP)
    row = scramble(np.arange(n) + step_key, spec.ROW) % spec.Q
    local = scramble(np.arange(math.prod(shape)), spec.LOCAL) % spec.Q
    key = row[:, None] + local[None, :]
    return ((key * key) % spec.P >= math.ceil(rate * spec.P)).reshape(n, *shape)


def training_forward(layers: list[Layer], x: np.ndarray, steps: list[int]) -> list[np.ndarray]:
    """The training graph's output of `layers` (after an Input) for `x` at each step."""
    Sequential.of(Input(*x.shape[1:]), *layers)
    b = ParameterInputBuilder({}, 17, 8, training=True)
    value = b.add_input("input", np.float32, (None, *x.shape[1:]))
    for layer in layers:
        value = emit_layer(b, layer, value)
    output_shape = layers[-1].output_shape
    assert output_shape is not None

    b.add_output(channels_last(b, value, len(output_shape) + 1), "y", np.float32, (None, *output_shape))
    session = ort.InferenceSession(b.build().SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    feeds = [{"input": x, "step": np.array(step, np.int64)} for step in steps]
    return [session.run(None, {k: v for k, v in feed.items() if k in inputs})[0] for feed in feeds]


def test_the_mask_is_the_documented_function_of_seed_layer_step_and_element():
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(3, 4, 5, 6)).astype(np.float32)
    steps = [0, 1, 2**40 + 17]
    for step, y in zip(steps, training_forward([Dropout(0.3, seed=5)], x, steps), strict=True):
        keep = reference_keep("dropout_1", 5, 0.3, step, 3, (4, 5, 6))
        np.testing.assert_array_equal(y != 0, keep)
        np.testing.assert_allclose(y[keep], x[keep] / 0.7, rtol=1e-6)


def test_a_channels_first_input_gets_the_same_mask_as_a_channels_last_one():
    # MaxPooling2D(1) is the identity, and hands Dropout a channels-first value.
    x = np.random.default_rng(1).uniform(0.5, 1.5, size=(4, 3, 5, 2)).astype(np.float32)
    (direct,) = training_forward([Dropout(0.5, name="d")], x, [3])
    (pooled,) = training_forward([MaxPooling2D(1), Dropout(0.5, name="d")], x, [3])
    np.testing.assert_array_equal(pooled, direct)
    np.testing.assert_array_equal(direct != 0, reference_keep("d", None, 0.5, 3, 4, (3, 5, 2)))


def test_spatial_dropout_draws_once_per_example_and_channel():
    x = np.ones((50, 3, 4, 8), np.float32)
    layer = SpatialDropout2D(0.5, name="spatial")
    (y,) = training_forward([layer], x, [0])
    assert (y == y[:, :1, :1, :]).all()  # constant over height and width
    keep = reference_keep("spatial", None, 0.5, 0, 50, (1, 1, 8))
    np.testing.assert_array_equal(y[:, :1, :1, :] != 0, keep)
    assert 0 < keep.mean() < 1


@pytest.mark.parametrize(
    ("spatial_dropout", "shape"),
    [(SpatialDropout1D, (50, 6, 8)), (SpatialDropout3D, (50, 2, 3, 4, 8))],
    ids=["1d", "3d"],
)
def test_spatial_dropout_1d_and_3d_draw_once_per_example_and_channel(spatial_dropout, shape):
    x = np.ones(shape, np.float32)
    (y,) = training_forward([spatial_dropout(0.5, name="spatial")], x, [0])
    first = y[(slice(None), *(slice(0, 1) for _ in shape[1:-1]))]
    assert (y == first).all()  # constant over the steps (1-D) or the volume (3-D)
    keep = reference_keep("spatial", None, 0.5, 0, 50, (*(1 for _ in shape[1:-1]), 8))
    np.testing.assert_array_equal(first != 0, keep)
    assert 0 < keep.mean() < 1


def test_noise_shape_shares_the_mask_along_its_unit_axes():
    x = np.ones((20, 5, 3), np.float32)
    (y,) = training_forward([Dropout(0.5, noise_shape=(None, 1, 3))], x, [4])
    assert (y == y[:, :1, :]).all()
    (shared,) = training_forward([Dropout(0.5, noise_shape=(1, 5, 3))], x, [4])
    assert (shared == shared[:1]).all()


def test_mask_statistics():
    """Keep fraction, determinism, and no correlation between neighbours, examples, steps or layers."""
    rate, n, d = 0.3, 100, 1000  # 10^5 elements
    x = np.ones((n, d), np.float32)
    first = Dropout(rate, name="dropout_1")
    s0, s1, s0_again = training_forward([first], x, [0, 1, 0])
    (other_layer,) = training_forward([Dropout(rate, name="dropout_2")], x, [0])
    keep0, keep1 = s0 != 0, s1 != 0
    sigma = math.sqrt(rate * (1 - rate) / keep0.size)
    for keep in (keep0, keep1, other_layer != 0):
        assert abs(keep.mean() - (1 - rate)) < 4 * sigma, keep.mean()
    np.testing.assert_array_equal(s0, s0_again)
    assert (keep0 != keep1).mean() > 0.3  # two independent masks differ in 2 * 0.3 * 0.7 = 42% of elements

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])

    assert abs(corr(keep0[:, :-1], keep0[:, 1:])) < 0.01  # neighbouring elements
    assert abs(corr(keep0[:-1], keep0[1:])) < 0.01  # the same element of neighbouring examples
    assert abs(corr(keep0, keep1)) < 0.01  # consecutive steps
    assert abs(corr(keep0, other_layer != 0)) < 0.01  # two layers


def test_rate_zero_emits_no_mask():
    x = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
    (y,) = training_forward([Dropout(0.0)], x, [0])
    np.testing.assert_array_equal(y, x)


def test_a_resumed_run_draws_the_same_masks(tmp_path):
    check_resumed_fit_of_layer(lambda: Dropout(0.5), tmp_path)


BAD = [
    (
        lambda: Dropout(1.0),
        InvalidArgumentError,
        r"Dropout\(rate=...\) expects a number in \[0, 1\). Received: rate=1.0",
    ),
    (lambda: Dropout(-0.1), InvalidArgumentError, r"Received: rate=-0.1"),
    (lambda: Dropout("half"), InvalidArgumentError, r"Received: rate='half'"),
    (lambda: Dropout(0.5, seed=-1), InvalidArgumentError, r"Dropout\(seed=...\) expects None or an int >= 0"),
    (lambda: Dropout(0.5, noise_shape=3), InvalidArgumentError, r"noise_shape=3"),
    (lambda: SpatialDropout2D(2), InvalidArgumentError, r"SpatialDropout2D\(rate=...\)"),
    (
        lambda: Sequential.of(Input(5, 3), Dropout(0.5, noise_shape=(None, 2, 3))),
        ShapeError,
        r"each entry must be None, 1 or the input's size. Received: input shape \[None, 5, 3\]",
    ),
    (lambda: Sequential.of(Input(5, 3), Dropout(0.5, noise_shape=(None, 3))), ShapeError, r"expected 3 entries"),
    (
        lambda: Sequential.of(Input(5, 3), SpatialDropout2D(0.5)),
        ShapeError,
        r"SpatialDropout2D layer '\w+' expects inputs of shape \[None, height, width, channels\]",
    ),
    (
        lambda: Sequential.of(Input(5, 3, 2), SpatialDropout1D(0.5)),
        ShapeError,
        r"SpatialDropout1D layer '\w+' expects inputs of shape \[None, steps, channels\]\. Received: input shape "
        r"\[None, 5, 3, 2\]",
    ),
    (
        lambda: Sequential.of(Input(5, 3), SpatialDropout3D(0.5)),
        ShapeError,
        r"SpatialDropout3D layer '\w+' expects inputs of shape \[None, depth, height, width, channels\]",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_dropout_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
