"""Normalization takes Keras' own weight list [mean, variance, count] (Keras 3.15's get_weights(): count is an int32
scalar, always 0 in Keras 3), dropping the count, at layer level and in a model's Keras list; a third array that is
no count is refused naming it."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Dense, Input, Normalization

MEAN = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
VARIANCE = np.array([4.0, 1.0, 0.25, 9.0], np.float32)
KERNEL = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
BIAS = np.array([0.1, -0.2, 0.3], np.float32)
X = np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4)
COUNTS = [np.array(0, np.int32), np.array(0.0, np.float32), np.int64(120), 7]


def model() -> Sequential:
    return Sequential.of(Input(4), Normalization(name="norm"), Dense(3, activation="linear", name="head"), seed=0)


def expected(x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    return (x - mean) / np.sqrt(variance) @ KERNEL + BIAS


@pytest.mark.parametrize("count", COUNTS, ids=repr)
def test_a_models_keras_list_drops_the_normalizations_count(count):
    net = model()
    net.set_weights([MEAN, VARIANCE, count, KERNEL, BIAS])
    weights = net.get_weights()
    np.testing.assert_array_equal(weights["norm.mean"], MEAN)
    np.testing.assert_array_equal(weights["norm.variance"], VARIANCE)
    np.testing.assert_allclose(net.predict(X), expected(X, MEAN, VARIANCE), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("count", COUNTS, ids=repr)
def test_a_layers_keras_list_drops_the_count_in_a_model_and_after_adapt(count):
    net = model()
    net.get_layer("norm").set_weights([MEAN, VARIANCE, count])
    net.get_layer("head").set_weights([KERNEL, BIAS])
    np.testing.assert_allclose(net.predict(X), expected(X, MEAN, VARIANCE), rtol=1e-5, atol=1e-6)
    alone = Normalization()
    alone.adapt(X)
    alone.set_weights((MEAN, VARIANCE, count))
    np.testing.assert_array_equal(alone.get_weights()[0], MEAN)
    np.testing.assert_array_equal(alone.get_weights()[1], VARIANCE)


def test_two_normalizations_drop_a_count_each():
    linear = {"activation": "linear"}
    net = Sequential.of(
        Input(4), Normalization(name="a"), Dense(4, **linear), Normalization(name="b"), Dense(3, **linear), seed=0
    )
    mid = np.eye(4, dtype=np.float32)
    zero = np.array(0, np.int32)
    net.set_weights([MEAN, VARIANCE, zero, mid, np.zeros(4, np.float32), MEAN, VARIANCE, zero, KERNEL, BIAS])
    once = (X - MEAN) / np.sqrt(VARIANCE)
    np.testing.assert_allclose(net.predict(X), expected(once, MEAN, VARIANCE), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("third", "message"),
    [
        (np.zeros(4, np.float32), r"whose count is a scalar whole number >= 0 .* a third array of shape \(4,\)"),
        (np.array(-1, np.int32), r"a third array of shape \(\), dtype int32: -1"),
        (np.array(0.5, np.float32), r"a third array of shape \(\), dtype float32: 0.5"),
        (True, r"a third array of shape \(\), dtype bool: True"),
        ("count", r"a third array of type str"),
    ],
    ids=["vector", "negative", "fraction", "bool", "string"],
)
def test_a_third_array_that_is_no_count_is_refused_naming_it(third, message):
    net = model()
    with pytest.raises(
        InvalidArgumentError, match=r"Normalization layer 'norm'.set_weights expects \[mean, variance\]"
    ):
        net.get_layer("norm").set_weights([MEAN, VARIANCE, third])
    with pytest.raises(InvalidArgumentError, match=message):
        net.get_layer("norm").set_weights([MEAN, VARIANCE, third])
    model_error = InvalidTypeError if isinstance(third, str) else InvalidArgumentError  # (not an array at all)
    with pytest.raises(model_error, match=r"set_weights with a list expects"):
        net.set_weights([MEAN, VARIANCE, third, KERNEL, BIAS])
