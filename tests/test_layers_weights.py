"""Keras' layer-level weights API (`layer.get_weights()`, `layer.set_weights([...])`, `layer.weights`, ...): Keras'
order, the checks and their messages, a compiled model's engine kept in step, and the transpose that a weight in
another layout (a Keras convolution kernel) needs, named by every `set_weights`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from layer_harness import forward

from onnxtrain import Model, Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.layers import (
    LSTM,
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Embedding,
    Flatten,
    Input,
    LayerNormalization,
    MultiHeadAttention,
    SeparableConv2D,
)

# layer, input shape, Keras' names of its weights in Keras' get_weights() order
KERAS_ORDER = [
    (lambda: Dense(3), (4,), ["kernel", "bias"]),
    (lambda: Dense(3, use_bias=False), (4,), ["kernel"]),
    (lambda: Conv2D(2, 3), (5, 5, 1), ["kernel", "bias"]),
    (lambda: SeparableConv2D(4, 3), (5, 5, 2), ["depthwise_kernel", "pointwise_kernel", "bias"]),
    (lambda: BatchNormalization(), (3,), ["gamma", "beta", "moving_mean", "moving_variance"]),
    (lambda: LayerNormalization(), (3,), ["gamma", "beta"]),
    (lambda: Embedding(7, 2), (3,), ["embeddings"]),
    (lambda: LSTM(2), (4, 3), ["kernel", "recurrent_kernel", "bias"]),
    (
        lambda: MultiHeadAttention(2, 3),
        (4, 6),
        [f"{part}.{w}" for part in ("query", "key", "value", "attention_output") for w in ("kernel", "bias")],
    ),
]


@pytest.mark.parametrize(("make", "input_shape", "names"), KERAS_ORDER, ids=[n[0] for _, _, n in KERAS_ORDER])
def test_get_weights_lists_a_layers_weights_in_keras_order(make, input_shape, names):
    layer = make()
    model = Sequential.of(Input(*input_shape), layer, seed=0)
    assert [weight.name for weight in layer.weights] == names
    assert [weight.path for weight in layer.weights] == [f"{layer.name}.{name}" for name in names]
    weights = model.get_weights()
    got = layer.get_weights()
    for name, value in zip(names, got, strict=True):
        np.testing.assert_array_equal(value, weights[f"{layer.name}.{name}"])
    got[0][...] = 7  # a copy
    assert not (layer.params[names[0]] == 7).all()


def test_trainable_and_non_trainable_weights_are_keras():
    norm = BatchNormalization()
    Sequential.of(Input(3), norm, seed=0)
    assert [w.name for w in norm.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in norm.non_trainable_weights] == ["moving_mean", "moving_variance"]
    norm.trainable = False
    assert norm.trainable_weights == [] and len(norm.non_trainable_weights) == 4
    weight = norm.weights[0]
    assert weight.shape == (3,) and weight.dtype == "float32"
    np.testing.assert_array_equal(np.asarray(weight), norm.get_weights()[0])


def test_set_weights_replaces_every_weight_and_the_forward_follows():
    dense = Dense(2, activation="linear")
    model = Sequential.of(Input(3), dense, seed=0)
    kernel, bias = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([1.0, -1.0], np.float32)
    dense.set_weights([kernel, bias])
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(forward(model, x), x @ kernel + bias, rtol=1e-6)


def test_a_layer_of_a_compiled_model_reads_and_writes_its_engine():
    dense = Dense(2, activation="linear", name="head")
    model = Sequential.of(Input(3), dense, seed=0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    with model:
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, np.ones((16, 2), np.float32), epochs=1, verbose=0)
        trained = model.get_weights()
        np.testing.assert_array_equal(dense.get_weights()[0], trained["head.kernel"])  # the engine's, after fit
        kernel, bias = np.eye(3, 2, dtype=np.float32), np.zeros(2, np.float32)
        dense.set_weights([kernel, bias])
        np.testing.assert_array_equal(model.get_weights()["head.kernel"], kernel)
        np.testing.assert_allclose(model.predict(x), x @ kernel, rtol=1e-6)  # the engine computes with them


def test_a_nested_model_called_as_a_layer_lists_its_layers_weights():
    inner_input = Input(3)
    encoder = Model(inner_input, Dense(2, name="code")(Dense(4, name="hidden")(inner_input)), name="encoder")
    x = Input(3)
    model = Model(x, Dense(1, name="out")(encoder(x)), seed=0)
    block = model.get_layer("encoder")
    assert block is encoder  # Keras: the nested Model itself, its weights by its own names
    assert [w.path for w in block.weights] == ["hidden.kernel", "hidden.bias", "code.kernel", "code.bias"]
    assert [w.path for w in model.weights][:4] == [f"encoder.{w.path}" for w in block.weights]
    replacement = [np.full(w.shape, 0.5, np.float32) for w in block.weights]
    with model:
        model.compile(optimizer="sgd", loss="mse")
        block.set_weights(replacement)
        assert (model.get_weights()["encoder.code.kernel"] == 0.5).all()  # the outer model's engine
    assert (encoder.get_weights()["code.kernel"] == 0.5).all()


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        (
            [np.ones((3, 2))],
            InvalidArgumentError,
            r"^Dense layer 'd'.set_weights expects 2 arrays, in get_weights\(\) ",
        ),
        (
            [np.ones((3, 2))] * 3,
            InvalidArgumentError,
            r"expects 2 arrays, in get_weights\(\) order \(kernel \(3, 2\), bias \(2,\)\). Received: 3 arrays",
        ),
        (
            {"kernel": np.ones((3, 2))},
            InvalidTypeError,
            r"expects a list of arrays in get_weights\(\) order. Received: dict \(model.set_weights takes a dict",
        ),
        (
            [np.ones((3, 3)), np.ones(2)],
            InvalidArgumentError,
            r"^Dense layer 'd'.set_weights: d.kernel expects shape \(3, 2\). Received: \(3, 3\)$",
        ),
        ([np.ones((3, 2)), np.array([1.0, np.nan])], InvalidArgumentError, r"d.bias expects finite float32 values"),
        ([np.ones((3, 2)), np.array(["a", "b"])], InvalidTypeError, r"d.bias expects a float or integer array"),
    ],
)
def test_bad_layer_set_weights_name_the_layer_and_what_it_takes(weights, error, message):
    dense = Dense(2, name="d")
    Sequential.of(Input(3), dense, seed=0)
    with pytest.raises(error, match=message):
        dense.set_weights(weights)


def test_a_layer_has_no_weights_before_a_model_makes_them():
    with pytest.raises(InvalidArgumentError, match=r"^Dense layer has no weights yet: a layer makes them when a model"):
        Dense(2).set_weights([np.ones((3, 2)), np.ones(2)])
    assert Dense(2).get_weights() == [] and Flatten().weights == []


# --- another layout: the transpose that maps it ------------------------------------------------------------------
HINT = "Its axes are the expected ones in another order: if it is this weight in another layout, value.transpose"
PERMUTED = [  # layer, input shape, weight, the shape given, the transpose named
    (lambda: Conv2D(2, 3, name="c"), (8, 8, 1), "kernel", (3, 3, 1, 2), (3, 2, 0, 1)),
    (lambda: Conv2DTranspose(4, 3, name="c"), (5, 5, 2), "kernel", (3, 3, 4, 2), (3, 2, 0, 1)),
    (lambda: Conv2D(2, (3, 5), name="c"), (8, 8, 3), "kernel", (3, 5, 3, 2), (3, 2, 0, 1)),
    (lambda: Dense(2, name="c"), (3,), "kernel", (2, 3), (1, 0)),
]


@pytest.mark.parametrize(("make", "input_shape", "weight", "given", "order"), PERMUTED)
def test_a_weight_in_another_layout_is_refused_naming_the_transpose_that_maps_it(
    make, input_shape, weight, given, order
):
    layer = make()
    model = Sequential.of(Input(*input_shape), layer, seed=0)
    expected = layer.params[weight]
    keras_like = np.random.default_rng(0).normal(size=given).astype(np.float32)
    assert keras_like.transpose(order).shape == expected.shape  # the hint is right
    message = re.escape(f"expects shape {expected.shape}. Received: {given}. {HINT}{order}")
    doc = r'docs/layers.md, "Weights: order and layout"'
    for set_weights in (
        lambda: model.set_weights({f"c.{weight}": keras_like}),
        lambda: layer.set_weights([keras_like if name == weight else v for name, v in layer.params.items()]),
    ):
        with pytest.raises(InvalidArgumentError, match=message) as refused:
            set_weights()
        assert doc in str(refused.value)
    with pytest.raises(ShapeError, match=re.escape(f"{HINT}{order}")):
        model.graph.set_params_by_name({f"c.{weight}": keras_like})


def test_a_weight_of_other_sizes_gets_no_transpose_hint():
    dense = Dense(2, name="d")
    Sequential.of(Input(3), dense, seed=0)
    with pytest.raises(InvalidArgumentError) as refused:
        dense.set_weights([np.ones((4, 2)), np.ones(2)])
    assert "transpose" not in str(refused.value)
