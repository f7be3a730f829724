"""Keras' `layer.build(input_shape)` (a batch shape, no generator: the transfer-learning guide's first cell) beside
onnxtrain's `build(shape, rng)`, and Keras' `activity_regularizer`, taken by every layer at None and refused otherwise
with one message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from onnxtrain import Model
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import (
    GRU,
    Add,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    MultiHeadAttention,
)


def test_keras_build_makes_the_weights_from_a_batch_shape() -> None:
    layer = Dense(3)
    layer.build((None, 4))
    assert [w.shape for w in layer.weights] == [(4, 3), (3,)]
    assert layer.built and layer.input_shape == (4,) and layer.output_shape == (3,)
    assert len(layer.trainable_weights) == 2


def test_a_keras_built_layer_keeps_its_weights_in_a_model() -> None:
    layer = Dense(3)
    layer.build((8, 4))  # a batch size is taken as Keras takes it; models leave it free
    kernel = layer.get_weights()[0]
    x = Input(4)
    model = Model(x, layer(x), seed=0)
    np.testing.assert_array_equal(model.get_weights()["dense_1.kernel"], kernel)


def test_keras_build_draws_a_fresh_seed_each_time_and_a_second_build_keeps_the_weights() -> None:
    first, second = Dense(3), Dense(3)
    first.build((None, 4))
    second.build((None, 4))
    assert not np.array_equal(first.get_weights()[0], second.get_weights()[0])
    kept = first.get_weights()[0]
    first.build((None, 4))
    np.testing.assert_array_equal(first.get_weights()[0], kept)


def test_onnxtrains_own_build_still_takes_a_shape_and_a_generator() -> None:
    layer = Dense(3)
    layer.build((4,), np.random.default_rng(0))
    other = Dense(3)
    other.build((4,), np.random.default_rng(0))
    np.testing.assert_array_equal(layer.params["kernel"], other.params["kernel"])


LAYERS: dict[str, tuple[Any, Any, list[tuple[int, ...]]]] = {
    "conv": (lambda: Conv2D(2, 3), (None, 5, 5, 1), [(2, 1, 3, 3), (2,)]),  # ONNX's kernel layout
    "batch_normalization": (BatchNormalization, (None, 6), [(6,)] * 4),
    "embedding": (lambda: Embedding(10, 4), (None, 7), [(10, 4)]),
    "gru": (lambda: GRU(2), (None, 5, 3), None),
    "add": (Add, [(None, 4), (None, 4)], []),
}


@pytest.mark.parametrize(("make", "shape", "weights"), LAYERS.values(), ids=LAYERS.keys())
def test_keras_build_of_other_layers(make: Any, shape: Any, weights: list[tuple[int, ...]] | None) -> None:
    layer = make()
    layer.build(shape)
    if weights is None:
        assert layer.weights
    else:
        assert [w.shape for w in layer.weights] == weights


def test_a_layer_without_weights_stays_unbuilt_for_any_shape() -> None:
    layer = Flatten()
    layer.build((None, 2, 3))
    assert not layer.built and layer.weights == []
    assert layer(Input(4, 5)).shape == (20,)


BAD_BUILDS = [
    (
        lambda: Dense(3).build((4,)),
        r"Dense layer.build\(input_shape\) expects Keras' batch shape.*Received: input_shape=\(4,\)",
    ),
    (lambda: Dense(3).build((None, None)), r"a positive int for each dimension.*input_shape\[1\]=None"),
    (lambda: Dense(3).build("4"), r"expects Keras' batch shape"),
    (lambda: Add().build((None, 4)), r"Add layer.build\(input_shape\) takes a list of batch shapes"),
]


@pytest.mark.parametrize(("build", "message"), BAD_BUILDS)
def test_bad_keras_builds_are_refused_naming_the_value(build: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        build()


def test_a_keras_build_for_another_shape_than_the_first_call_is_refused() -> None:
    layer = Dense(3)
    layer(Input(4))
    with pytest.raises(Exception, match=r"built for inputs of shape \[None, 4\]"):
        layer.build((None, 5))


# --- activity_regularizer -----------------------------------------------------------------------------------------
ACTIVITY: dict[str, tuple[Any, str]] = {
    "dense": (lambda **kw: Dense(3, **kw), "kernel_regularizer, bias_regularizer"),
    "conv": (lambda **kw: Conv2D(2, 3, **kw), "kernel_regularizer, bias_regularizer"),
    "embedding": (lambda **kw: Embedding(10, 4, **kw), "embeddings_regularizer"),
    "dropout": (lambda **kw: Dropout(0.5, **kw), "; Dropout takes no weight regularizer"),
    "gru": (lambda **kw: GRU(2, **kw), "kernel_regularizer, recurrent_regularizer, bias_regularizer"),
    "attention": (lambda **kw: MultiHeadAttention(2, 3, **kw), "kernel_regularizer, bias_regularizer"),
}


@pytest.mark.parametrize(("make", "penalties"), ACTIVITY.values(), ids=ACTIVITY.keys())
def test_activity_regularizer_is_taken_at_none_and_refused_otherwise(make: Any, penalties: str) -> None:
    layer = make(activity_regularizer=None)
    assert "activity_regularizer" not in layer.get_config()
    message = (
        r"\(activity_regularizer=\.\.\.\) supports only activity_regularizer=None \(weight penalties only"
        rf"[:;]? ?{penalties.removeprefix('; ')}\)\. Received: activity_regularizer='l2'"
    )
    with pytest.raises(UnsupportedError, match=message):
        make(activity_regularizer="l2")
