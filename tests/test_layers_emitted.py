"""Mistakes in a custom layer's `emit`, reported where the graph is made and naming the layer (not as a loss "of
unknown shape" or a TypeError inside onnx): nothing returned, a name no node computes, an op type ONNX lacks, an
output of another rank or size than `compute_output_shape` says."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.errors import InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.layers import Conv2D, Dense, Flatten, Input, Layer
from onnxtrain.layers._layout import channels_first, mark_channels_first


class SaysFive(Layer):
    """Says (5,), passes (8,) through."""

    def compute_output_shape(self, input_shape):
        return (5,)

    def emit(self, builder, x):
        return x


class LosesARank(Layer):
    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return builder.reduce("ReduceSum", x, [1], keepdims=False)


class UnknownOp(Layer):
    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return builder.node("NotAnOp", [x])


class ReturnsNone(Layer):
    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        builder.node("Relu", [x])


class ReturnsANumber(ReturnsNone):
    def emit(self, builder, x):
        return 3


class ReturnsAStranger(ReturnsNone):
    def emit(self, builder, x):
        return "somewhere"


MISTAKES = [
    (
        SaysFive,
        ShapeError,
        r"^SaysFive layer 'says_five_1' emits a value of shape \[None, 8\], and its compute_output_shape says "
        r"\[None, 5\]: the layers after it were built for that shape",
    ),
    (LosesARank, ShapeError, r"emits a value of shape \[None\], and its compute_output_shape says \[None, 8\]"),
    (
        UnknownOp,
        UnsupportedError,
        r"^Layer 'unknown_op_1' emits op type 'NotAnOp', which ONNX's default domain \(ai.onnx\) does not define in "
        r"opset 17",
    ),
    (
        ReturnsNone,
        InvalidTypeError,
        r"^ReturnsNone layer 'returns_none_1': emit\(builder, x\) must return the name \(a str\) of the value it "
        r"computes, e.g. `return builder.node\('Relu', \[x\]\)`, or x itself. Received: None \(emit returned nothing\)",
    ),
    (ReturnsANumber, InvalidTypeError, r"must return the name \(a str\).* Received: 3 \(int\)"),
    (ReturnsAStranger, InvalidTypeError, r"Received: 'somewhere', which no node computes"),
]


@pytest.mark.parametrize(("layer_class", "error", "message"), MISTAKES, ids=[m[0].__name__ for m in MISTAKES])
def test_an_emit_mistake_is_one_error_naming_the_layer_when_the_graph_is_made(layer_class, error, message):
    model = Sequential.of(Input(8), layer_class(), Dense(3), seed=0)
    x, y = np.zeros((4, 8), np.float32), np.zeros(4, np.int64)
    with model, pytest.raises(error, match=message):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)


class ChannelsFirstScale(Layer):
    """Keeps a convolution's channels-first layout, as it says (`mark_channels_first`): checked in that layout."""

    accepts_channels_first = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return mark_channels_first(builder, builder.node("Mul", [channels_first(builder, x, 4), builder.constant(2.0)]))


class Squeezes(Layer):
    """Says its shape right, from a Reshape whose size shape inference cannot tell: nothing to check."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def emit(self, builder, x):
        return builder.node("Reshape", [x, builder.add_initializer("shape", np.array([0, -1], np.int64))])


@pytest.mark.parametrize("layer_class", [ChannelsFirstScale, Squeezes])
def test_a_custom_layer_that_says_its_shape_right_trains(layer_class):
    model = Sequential.of(Input(6, 6, 1), Conv2D(2, 3), layer_class(), Flatten(), Dense(2, activation="linear"), seed=0)
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 1)).astype(np.float32)
    with model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        assert np.isfinite(model.fit(x, np.arange(8) % 2, epochs=1, verbose=0).history["loss"][0])
