"""Reshape, Permute, RepeatVector, ZeroPadding2D, Cropping2D and UpSampling2D through the layer harness (numpy
references, Keras fixtures, training on both engines), their bad arguments, and the image layers on channels-first
values."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from layer_gradients import check_input_gradient
from layer_harness import LayerCase, ToChannelsFirst, table_tests

from onnxtrain import Sequential, emit
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import (
    Cropping2D,
    Input,
    Permute,
    RepeatVector,
    Reshape,
    UpSampling2D,
    ZeroPadding2D,
)


def pad(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def crop(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right, :]


def linear_weights(size: int, factor: int) -> np.ndarray:
    """Bilinear upsampling of one axis, pixel centers (half-pixel), positions clamped to the image."""
    matrix = np.zeros((size * factor, size))
    for j in range(size * factor):
        position = min(max((j + 0.5) / factor - 0.5, 0.0), size - 1.0)
        left = int(np.floor(position))
        right = min(left + 1, size - 1)
        matrix[j, left] += 1 - (position - left)
        matrix[j, right] += position - left
    return matrix


def cubic_weights(size: int, factor: int) -> np.ndarray:
    """Bicubic upsampling of one axis: Keys' kernel (a = -0.5) on the 4 taps around each pixel center, the taps
    outside the image left out and the others renormalized."""

    def keys(d: float) -> float:
        a, d = -0.5, abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0

    matrix = np.zeros((size * factor, size))
    for j in range(size * factor):
        position = (j + 0.5) / factor - 0.5
        taps = [i for i in range(int(np.floor(position)) - 1, int(np.floor(position)) + 3) if 0 <= i < size]
        weights = np.array([keys(position - i) for i in taps])
        matrix[j, taps] = weights / weights.sum()
    return matrix


def upsample(x: np.ndarray, rows: int, columns: int, weights) -> np.ndarray:
    return np.einsum("ih,nhwc,jw->nijc", weights(x.shape[1], rows), x, weights(x.shape[2], columns))


CASES = [
    LayerCase("reshape_infer", lambda: Reshape((4, -1)), (2, 6), (4, 3), 0, lambda _, x: x.reshape(len(x), 4, 3)),
    LayerCase("reshape_3d", lambda: Reshape((3, 2, 2)), (12,), (3, 2, 2), 0, lambda _, x: x.reshape(len(x), 3, 2, 2)),
    LayerCase("permute_2d", lambda: Permute((2, 1)), (3, 5), (5, 3), 0, lambda _, x: x.transpose(0, 2, 1)),
    LayerCase("permute_3d", lambda: Permute((3, 1, 2)), (2, 3, 4), (4, 2, 3), 0, lambda _, x: x.transpose(0, 3, 1, 2)),
    LayerCase("repeat_vector", lambda: RepeatVector(3), (4,), (3, 4), 0, lambda _, x: np.repeat(x[:, None], 3, 1)),
    LayerCase("zero_padding2d_int", lambda: ZeroPadding2D(1), (3, 4, 2), (5, 6, 2), 0, lambda _, x: pad(x, 1, 1, 1, 1)),
    LayerCase(
        "zero_padding2d_asym",
        lambda: ZeroPadding2D(((1, 2), (0, 3))),
        (3, 4, 2),
        (6, 7, 2),
        0,
        lambda _, x: pad(x, 1, 2, 0, 3),
    ),
    LayerCase("cropping2d_sym", lambda: Cropping2D((1, 1)), (4, 5, 2), (2, 3, 2), 0, lambda _, x: crop(x, 1, 1, 1, 1)),
    LayerCase(
        "cropping2d_asym",
        lambda: Cropping2D(((1, 0), (1, 2))),
        (4, 5, 2),
        (3, 2, 2),
        0,
        lambda _, x: crop(x, 1, 0, 1, 2),
    ),
    LayerCase(
        "upsampling2d_nearest",
        lambda: UpSampling2D((2, 3)),
        (3, 2, 2),
        (6, 6, 2),
        0,
        lambda _, x: np.repeat(np.repeat(x, 2, axis=1), 3, axis=2),
    ),
    LayerCase(
        "upsampling2d_bilinear",
        lambda: UpSampling2D(2, interpolation="bilinear"),
        (3, 4, 2),
        (6, 8, 2),
        0,
        lambda _, x: upsample(x, 2, 2, linear_weights),
    ),
    LayerCase(
        "upsampling2d_bilinear_3x2",
        lambda: UpSampling2D((3, 2), interpolation="bilinear"),
        (3, 4, 2),
        (9, 8, 2),
        0,
        lambda _, x: upsample(x, 3, 2, linear_weights),
    ),
    LayerCase(
        "upsampling2d_bicubic",
        lambda: UpSampling2D((2, 3), interpolation="bicubic"),
        (4, 3, 2),
        (8, 9, 2),
        0,
        lambda _, x: upsample(x, 2, 3, cubic_weights),
    ),
]


test_layer_forward_matches_numpy_and_keras, test_layer_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ZeroPadding2D(((1, 2), (0, 3))),
        lambda: Cropping2D(((1, 0), (1, 2))),
        lambda: UpSampling2D((2, 3)),
        lambda: UpSampling2D(2, interpolation="bilinear"),
        lambda: UpSampling2D((3, 2), interpolation="bicubic"),
    ],
)
def test_image_layers_keep_channels_first_values_channels_first(make):
    # After a convolution the value is channels first: the layer works on it as it is, with no Transpose.
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype(np.float32)
    plain = Sequential.of(Input(5, 6, 3), make(), seed=1)
    after_conv = Sequential.of(Input(5, 6, 3), ToChannelsFirst(), make(), seed=1)
    proto = emit.inference_graph(after_conv.layers)
    assert [n.op_type for n in proto.graph.node].count("Transpose") == 2  # in, and out to the channels-last output
    outputs = []
    for model in (plain, after_conv):
        session = ort.InferenceSession(emit.inference_graph(model.layers).SerializeToString())
        outputs.append(session.run(["logits"], {"input": x})[0])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)


def test_layer_configs_use_keras_names():
    assert Reshape((4, -1)).get_config()["target_shape"] == [4, -1]
    assert ZeroPadding2D(2).get_config()["padding"] == [[2, 2], [2, 2]]
    assert Cropping2D((1, 2)).get_config()["cropping"] == [[1, 1], [2, 2]]
    assert UpSampling2D(3).get_config() == {"size": [3, 3], "interpolation": "nearest", "name": None, "trainable": True}


BAD_LAYERS = [
    (
        lambda: Reshape((2, -1, -1)),
        InvalidArgumentError,
        r"at most one of them -1, without the batch dimension. Received: target_shape=\(2, -1, -1\)",
    ),
    (lambda: Reshape((0, 3)), InvalidArgumentError, r"Reshape\(target_shape=...\) expects a tuple of positive ints"),
    (lambda: Reshape(6), InvalidArgumentError, r"Received: target_shape=6"),
    (
        lambda: Sequential.of(Input(2, 6), Reshape((5, -1))),
        ShapeError,
        r"cannot reshape input \[None, 2, 6\] \(12 values per example\) to target_shape \(5, -1\)",
    ),
    (lambda: Permute((0, 1)), InvalidArgumentError, r"expects a permutation of 1..rank.*Received: dims=\(0, 1\)"),
    (lambda: Permute((1, 1)), InvalidArgumentError, r"Received: dims=\(1, 1\)"),
    (
        lambda: Sequential.of(Input(2, 3, 4), Permute((2, 1))),
        ShapeError,
        r"expects inputs of rank 2 \(batch excluded\). Received: input shape \[None, 2, 3, 4\]",
    ),
    (lambda: RepeatVector(0), InvalidArgumentError, r"RepeatVector\(n=...\) expects a positive int. Received: n=0"),
    (lambda: Sequential.of(Input(2, 3), RepeatVector(2)), ShapeError, r"expects a flat input.*Add Flatten\(\)"),
    (lambda: ZeroPadding2D(-1), InvalidArgumentError, r"ZeroPadding2D\(padding=...\) expects a non-negative int"),
    (lambda: ZeroPadding2D((1, 2, 3)), InvalidArgumentError, r"Received: padding=\(1, 2, 3\)"),
    (lambda: Cropping2D(((1, 2), (3,))), InvalidArgumentError, r"Received: cropping=\(\(1, 2\), \(3,\)\)"),
    (
        lambda: Sequential.of(Input(4, 4), ZeroPadding2D(1)),
        ShapeError,
        r"ZeroPadding2D layer 'zero_padding2d_1' expects images of shape \[None, height, width, channels\]",
    ),
    (
        lambda: Sequential.of(Input(4, 5, 1), Cropping2D(((2, 2), (0, 0)))),
        ShapeError,
        r"leaves nothing of images of 4x5",
    ),
    (lambda: UpSampling2D(0), InvalidArgumentError, r"UpSampling2D\(size=...\) expects a positive int.*size=0"),
    (
        lambda: UpSampling2D(2, interpolation="area"),
        InvalidArgumentError,
        r"expects one of \['nearest', 'bilinear', 'bicubic'\]. Received: interpolation='area'",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD_LAYERS)
def test_bad_reshaping_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient_through_the_layer_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)
