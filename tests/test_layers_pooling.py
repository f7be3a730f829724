"""Pooling layers through the shared harness (numpy and Keras forwards, training on both engines, the export), their
channels-first graphs, and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from layer_harness import LayerCase, forward, table_tests

from onnxtrain import Sequential, emit
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool2D,
    BatchNormalization,
    ConvPadding,
    Dropout,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    Input,
    Layer,
    MaxPool2D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    SpatialDropout2D,
)


def pool_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Keras' pooling in numpy: windows over the spatial axes of channels-last `x`; "same" pads as TensorFlow does
    and leaves the padding out of both the maximum and the mean."""
    kernel, strides = layer.pool_size, layer.strides
    spatial = x.shape[1:-1]
    if layer.padding == "same":
        out = [math.ceil(n / s) for n, s in zip(spatial, strides, strict=True)]
        pads = [max((o - 1) * s + k - n, 0) for o, s, k, n in zip(out, strides, kernel, spatial, strict=True)]
    else:
        out = [(n - k) // s + 1 for n, k, s in zip(spatial, kernel, strides, strict=True)]
        pads = [0] * len(spatial)
    y = np.empty((len(x), *out, x.shape[-1]))
    for position in np.ndindex(*out):
        window = []
        for o, s, k, p, n in zip(position, strides, kernel, pads, spatial, strict=True):
            start = o * s - p // 2
            window.append(slice(max(start, 0), min(start + k, n)))
        values = x[(slice(None), *window, slice(None))].reshape(len(x), -1, x.shape[-1])
        y[(slice(None), *position, slice(None))] = (
            values.max(axis=1) if "Max" in type(layer).__name__ else values.mean(1)
        )
    return y


def global_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, x.ndim - 1))
    reduce = np.max if "Max" in type(layer).__name__ else np.mean
    return reduce(x, axis=axes, keepdims=layer.keepdims)


def pooling(case_id: str, make, input_shape, output_shape) -> LayerCase:
    return LayerCase(case_id, make, input_shape, output_shape, 0, pool_reference)


def global_pooling(case_id: str, make, input_shape, output_shape) -> LayerCase:
    return LayerCase(case_id, make, input_shape, output_shape, 0, global_reference)


CASES = [
    pooling("max_pool2d", lambda: MaxPooling2D(), (6, 6, 3), (3, 3, 3)),
    pooling("max_pool2d_same", lambda: MaxPooling2D((3, 3), strides=1, padding="same"), (5, 5, 2), (5, 5, 2)),
    pooling("max_pool2d_strides", lambda: MaxPooling2D((3, 2), strides=(2, 1)), (7, 5, 2), (3, 4, 2)),
    pooling("max_pool2d_same_odd", lambda: MaxPool2D(2, padding="SAME"), (5, 7, 2), (3, 4, 2)),
    pooling("max_pool1d", lambda: MaxPooling1D(2), (7, 3), (3, 3)),
    pooling("max_pool1d_same", lambda: MaxPooling1D(3, strides=2, padding="same"), (7, 3), (4, 3)),
    pooling("avg_pool2d", lambda: AveragePooling2D(), (6, 6, 3), (3, 3, 3)),
    pooling("avg_pool2d_same", lambda: AvgPool2D(3, strides=2, padding="same"), (5, 6, 2), (3, 3, 2)),
    pooling("avg_pool1d", lambda: AveragePooling1D(3, strides=1), (6, 2), (4, 2)),
    pooling("avg_pool1d_same", lambda: AveragePooling1D(2, padding="same"), (7, 3), (4, 3)),
    global_pooling("global_avg_pool2d", lambda: GlobalAveragePooling2D(), (4, 5, 3), (3,)),
    global_pooling("global_avg_pool2d_keepdims", lambda: GlobalAveragePooling2D(keepdims=True), (4, 5, 3), (1, 1, 3)),
    global_pooling("global_max_pool2d", lambda: GlobalMaxPooling2D(), (4, 5, 3), (3,)),
    global_pooling("global_avg_pool1d", lambda: GlobalAveragePooling1D(), (6, 4), (4,)),
    global_pooling("global_max_pool1d", lambda: GlobalMaxPooling1D(), (6, 4), (4,)),
    global_pooling("global_max_pool1d_keepdims", lambda: GlobalMaxPooling1D(keepdims=True), (6, 4), (1, 4)),
]


test_pooling_forward_matches_numpy_and_keras, test_pooling_trains_and_exports = table_tests(CASES)


def test_poolings_normalization_and_dropout_between_them_stay_channels_first():
    # One Transpose into channels-first after the input and one back before Flatten, none between the layers.
    model = Sequential.of(
        Input(8, 8, 2),
        MaxPooling2D(),
        BatchNormalization(),
        AveragePooling2D(padding="same"),
        Dropout(0.5),
        SpatialDropout2D(0.5),
        MaxPooling2D(1),
        Flatten(),
        seed=1,
    )
    transposes = [n for n in emit.inference_graph(model.layers).graph.node if n.op_type == "Transpose"]
    assert len(transposes) == 2


def test_aliases_are_the_keras_classes():
    assert MaxPool2D is MaxPooling2D and AvgPool2D is AveragePooling2D


BAD = [
    (lambda: MaxPooling2D(0), InvalidArgumentError, r"MaxPooling2D\(pool_size=...\) expects a positive int or a tuple"),
    (lambda: MaxPooling2D((2, 2, 2)), InvalidArgumentError, r"Received: pool_size=\(2, 2, 2\)"),
    (lambda: MaxPooling2D((2, 2, 2, 1)), InvalidArgumentError, r"or KotlinDL's \(1, n, n, 1\). Received: pool_size="),
    (lambda: MaxPooling1D((1, 0, 1)), InvalidArgumentError, r"KotlinDL's \(1, n, 1\). Received: pool_size=\(1, 0, 1\)"),
    (lambda: AvgPool2D(2, strides=(2, 2, 2, 2)), InvalidArgumentError, r"Received: strides=\(2, 2, 2, 2\)"),
    (lambda: MaxPooling1D(2, strides=0), InvalidArgumentError, r"MaxPooling1D\(strides=...\) expects a positive int"),
    (
        lambda: AveragePooling2D(padding="full"),
        InvalidArgumentError,
        r"expects one of \['valid', 'same'\]. Received: padding=",
    ),
    (lambda: GlobalMaxPooling2D(keepdims=1), InvalidArgumentError, r"keepdims=1"),
    (
        lambda: Sequential.of(Input(1, 5, 2), MaxPooling2D()),
        ShapeError,
        r"needs inputs at least as large as pool_size=\(2, 2\). Received: input shape \[None, 1, 5, 2\]",
    ),
    (
        lambda: Sequential.of(Input(6, 2), MaxPooling2D()),
        ShapeError,
        r"expects inputs of shape \[None, height, width, channels\]. Received: input shape \[None, 6, 2\]",
    ),
    (
        lambda: Sequential.of(
            Input(
                6,
            ),
            GlobalAveragePooling1D(),
        ),
        ShapeError,
        r"\[None, steps, channels\]",
    ),
]


KOTLINDL_SPELLINGS = [  # (KotlinDL's spelling, Keras' spelling of the same pooling, per-example input shape)
    (lambda: MaxPool2D(pool_size=(1, 2, 2, 1), strides=(1, 2, 2, 1)), lambda: MaxPooling2D(2), (6, 6, 2)),
    (lambda: AvgPool2D((1, 2, 2, 1), (1, 2, 2, 1)), lambda: AveragePooling2D(2), (6, 6, 2)),
    (lambda: MaxPool2D(2, 2, padding=ConvPadding.VALID), lambda: MaxPooling2D(2, 2, padding="valid"), (5, 5, 1)),
    (lambda: AvgPool2D(3, 2, padding=ConvPadding.SAME), lambda: AveragePooling2D(3, 2, padding="same"), (5, 6, 2)),
    (lambda: MaxPooling1D((1, 3, 1), (1, 2, 1), ConvPadding.SAME), lambda: MaxPooling1D(3, 2, "same"), (7, 3)),
    (lambda: AveragePooling3D((1, 2, 2, 2, 1), (1, 1, 1, 1, 1)), lambda: AveragePooling3D(2, 1), (3, 4, 4, 2)),
    (lambda: MaxPooling3D(2, padding=ConvPadding.SAME), lambda: MaxPooling3D(2, padding="same"), (3, 5, 4, 1)),
]


@pytest.mark.parametrize(("kotlindl", "keras", "input_shape"), KOTLINDL_SPELLINGS)
def test_poolings_take_kotlindl_pool_size_strides_and_padding(kotlindl, keras, input_shape):
    layer, expected = kotlindl(), keras()
    assert layer.get_config() == expected.get_config()
    model = Sequential.of(Input(*input_shape), layer, seed=0)
    x = np.random.default_rng(0).normal(size=(3, *input_shape)).astype(np.float32)
    np.testing.assert_allclose(forward(model, x), pool_reference(layer, x.astype(np.float64)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_pooling_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
