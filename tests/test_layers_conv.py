"""The convolution layers through the shared layer harness (numpy references, Keras fixtures, training on both
engines, export), their bad arguments, their configs and the channels-first graphs they emit."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from layer_harness import LayerCase, check_keras, check_reference, check_training_and_export, forward

from onnxtrain import Sequential, emit, initializers, regularizers
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.layers import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    Convolution2D,
    ConvPadding,
    Dense,
    DepthwiseConv2D,
    Flatten,
    Input,
    Layer,
    SeparableConv2D,
)


# --- numpy references: channels-last float64, written from Keras' definitions ---------------------------
def keras_pads(size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """Keras' (TensorFlow's) padding before and after one axis of a convolution's input."""
    extent = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return extent - 1, 0
    total = max((-(-size // stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def conv_nd(x, kernel, strides, dilations, padding, groups):
    """y[n, *o, m] = sum over the group's channels c and offsets j of x_padded[n, *(o * s + j * d), c] w[m, c, *j]
    with `kernel` in ONNX's (M, C / groups, *K) layout."""
    rank = x.ndim - 2
    sizes = kernel.shape[2:]
    pads = [keras_pads(x.shape[1 + a], sizes[a], strides[a], dilations[a], padding) for a in range(rank)]
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(x.shape[1 + a] - (sizes[a] - 1) * dilations[a] - 1) // strides[a] + 1 for a in range(rank)]
    m, c = kernel.shape[0] // groups, kernel.shape[1]
    y = np.zeros((len(x), *out, kernel.shape[0]))
    for j in np.ndindex(*sizes):
        window = tuple(slice(j[a] * dilations[a], None, strides[a]) for a in range(rank))
        patch = x[(slice(None), *window)][(slice(None), *(slice(0, o) for o in out))]
        for g in range(groups):
            w = kernel[(slice(g * m, (g + 1) * m), slice(None), *j)]  # (m, c)
            y[..., g * m : (g + 1) * m] += patch[..., g * c : (g + 1) * c] @ w.T
    return y


def conv_transpose_2d(x, kernel, strides, dilations, padding, output_padding):
    """Scatter x[n, i, c] * w[c, m, j] into y[n, i * s + j * d, m], then keep Keras' output window: its size from
    Keras' deconv_output_length, its start where TensorFlow's forward convolution of that size would pad."""
    sizes = kernel.shape[2:]
    extents = [(k - 1) * d + 1 for k, d in zip(sizes, dilations, strict=True)]
    lengths, starts = [], []
    for a in range(2):
        i, s, e = x.shape[1 + a], strides[a], extents[a]
        if output_padding is None:
            length = i * s if padding == "same" else i * s + max(e - s, 0)
        else:
            length = (i - 1) * s + e - 2 * (e // 2 if padding == "same" else 0) + output_padding[a]
        lengths.append(length)
        starts.append(max((i - 1) * s + e - length, 0) // 2 if padding == "same" else 0)
    full = np.zeros(
        (len(x), *((x.shape[1 + a] - 1) * strides[a] + extents[a] + lengths[a] for a in range(2)), kernel.shape[1])
    )
    for j in np.ndindex(*sizes):
        offset = tuple(
            slice(j[a] * dilations[a], j[a] * dilations[a] + (x.shape[1 + a] - 1) * strides[a] + 1, strides[a])
            for a in range(2)
        )
        full[(slice(None), *offset)] += x @ kernel[(slice(None), slice(None), *j)]
    return full[:, starts[0] : starts[0] + lengths[0], starts[1] : starts[1] + lengths[1]]


def activate(name: str, y: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(y, 0.0)
    if name == "tanh":
        return np.tanh(y)
    if name == "softmax":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    assert name == "linear", name
    return y


def with_bias_and_activation(layer, y):
    if layer.use_bias:
        y = y + layer.params["bias"]
    return activate(layer.activation.name, y)


def conv_reference(layer, x):
    y = conv_nd(x, layer.params["kernel"], layer.strides, layer.dilation_rate, layer.padding, layer.groups)
    return with_bias_and_activation(layer, y)


def depthwise_reference(layer, x):
    kernel = layer.params["kernel"] if "kernel" in layer.params else layer.params["depthwise_kernel"]
    return conv_nd(x, kernel, layer.strides, layer.dilation_rate, layer.padding, groups=x.shape[-1])


def separable_reference(layer, x):
    y = conv_nd(depthwise_reference(layer, x), layer.params["pointwise_kernel"], (1, 1), (1, 1), "valid", 1)
    return with_bias_and_activation(layer, y)


def conv_transpose_reference(layer, x):
    args = layer.strides, layer.dilation_rate, layer.padding, layer.output_padding
    return with_bias_and_activation(layer, conv_transpose_2d(x, layer.params["kernel"], *args))


# --- Keras weights -> onnxtrain's parameters -------------------------------------------------------------
def keras_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras' (*K, in, out) convolution kernel (Conv2DTranspose: (*K, out, in)) in ONNX's (out, in, *K) order
    (ConvTranspose: (in, out, *K))."""
    rank = kernel.ndim - 2
    return kernel.transpose(rank + 1, rank, *range(rank))


def keras_depthwise(kernel: np.ndarray) -> np.ndarray:
    """Keras' (*K, C, multiplier) depthwise kernel as ONNX's grouped (C * multiplier, 1, *K)."""
    *sizes, c, multiplier = kernel.shape
    return kernel.transpose(2, 3, 0, 1).reshape(c * multiplier, 1, *sizes)


def conv_keras(weights):
    return {"kernel": keras_kernel(weights[0]), **({"bias": weights[1]} if len(weights) > 1 else {})}


def depthwise_keras(weights):
    return {"kernel": keras_depthwise(weights[0]), **({"bias": weights[1]} if len(weights) > 1 else {})}


def separable_keras(weights):
    params = {"depthwise_kernel": keras_depthwise(weights[0]), "pointwise_kernel": keras_kernel(weights[1])}
    return params | ({"bias": weights[2]} if len(weights) > 2 else {})


def row(
    id: str,
    make: Callable[[], Layer],
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    params: int,
    keras: bool = True,
) -> LayerCase:
    family = {
        Conv1D: (conv_reference, conv_keras),
        Conv2D: (conv_reference, conv_keras),
        DepthwiseConv2D: (
            lambda layer, x: with_bias_and_activation(layer, depthwise_reference(layer, x)),
            depthwise_keras,
        ),
        SeparableConv2D: (separable_reference, separable_keras),
        Conv2DTranspose: (conv_transpose_reference, conv_keras),
    }
    reference, weights = family[type(make())]
    return LayerCase(
        id, make, input_shape, output_shape, params, reference, weights, tolerance=(1e-5, 1e-5), extra={"keras": keras}
    )


CASES = [
    row("conv2d_same", lambda: Conv2D(4, 3), (6, 5, 2), (6, 5, 4), 4 * 2 * 9 + 4),
    row(
        "conv2d_valid_strided",
        lambda: Conv2D(3, (3, 2), strides=2, padding="valid", activation="linear"),
        (7, 6, 2),
        (3, 3, 3),
        3 * 2 * 6 + 3,
    ),
    row("conv2d_same_strided", lambda: Conv2D(3, 3, strides=2, activation="tanh"), (7, 6, 2), (4, 3, 3), 57),
    row(
        "conv2d_dilated_nobias",
        lambda: Conv2D(2, 3, dilation_rate=2, use_bias=False, activation="linear"),
        (7, 7, 3),
        (7, 7, 2),
        2 * 3 * 9,
    ),
    row("conv2d_groups", lambda: Conv2D(4, 3, padding="valid", groups=2), (5, 5, 4), (3, 3, 4), 4 * 2 * 9 + 4),
    row("conv2d_softmax", lambda: Conv2D(3, 1, activation="softmax"), (3, 4, 2), (3, 4, 3), 9),
    # Keras refuses strides and dilation together; ONNX computes them, so only numpy checks it.
    row("conv2d_strided_dilated", lambda: Conv2D(2, 3, strides=2, dilation_rate=2), (9, 8, 2), (5, 4, 2), 38, False),
    row("conv1d_same", lambda: Conv1D(3, 3), (8, 2), (8, 3), 3 * 2 * 3 + 3),
    row(
        "conv1d_valid_strided",
        lambda: Conv1D(2, 4, strides=3, padding="valid", activation="linear"),
        (11, 3),
        (3, 2),
        2 * 3 * 4 + 2,
    ),
    row(
        "conv1d_causal_dilated",
        lambda: Conv1D(2, 3, padding="causal", dilation_rate=2, activation="linear"),
        (9, 2),
        (9, 2),
        14,
    ),
    row("conv_depthwise_same", lambda: DepthwiseConv2D(3), (6, 6, 3), (6, 6, 3), 3 * 9 + 3),
    row(
        "conv_depthwise_multiplier_strided",
        lambda: DepthwiseConv2D((3, 2), strides=2, padding="valid", depth_multiplier=2, activation="linear"),
        (7, 6, 2),
        (3, 3, 4),
        4 * 6 + 4,
    ),
    row(
        "conv_depthwise_dilated_nobias",
        lambda: DepthwiseConv2D(3, dilation_rate=2, use_bias=False, activation="linear"),
        (7, 7, 2),
        (7, 7, 2),
        2 * 9,
    ),
    row("conv_separable_same", lambda: SeparableConv2D(4, 3), (6, 6, 3), (6, 6, 4), 27 + 12 + 4),
    row(
        "conv_separable_multiplier_strided",
        lambda: SeparableConv2D(3, 3, strides=2, padding="valid", depth_multiplier=2, activation="linear"),
        (7, 7, 2),
        (3, 3, 3),
        36 + 12 + 3,
    ),
    row(
        "conv_separable_dilated_nobias",
        lambda: SeparableConv2D(2, 3, dilation_rate=2, use_bias=False),
        (7, 7, 2),
        (7, 7, 2),
        18 + 4,
    ),
    row("conv2d_transpose_same", lambda: Conv2DTranspose(3, 3), (4, 4, 2), (4, 4, 3), 2 * 3 * 9 + 3),
    row(
        "conv2d_transpose_same_strided",
        lambda: Conv2DTranspose(2, 3, strides=2, activation="linear"),
        (3, 4, 3),
        (6, 8, 2),
        3 * 2 * 9 + 2,
    ),
    row("conv2d_transpose_even_kernel", lambda: Conv2DTranspose(2, 4, strides=2), (3, 3, 1), (6, 6, 2), 34),
    row(
        "conv2d_transpose_valid_strided",
        lambda: Conv2DTranspose(2, (3, 2), strides=(2, 3), padding="valid"),
        (3, 3, 2),
        (7, 9, 2),
        2 * 2 * 6 + 2,
    ),
    row(
        "conv2d_transpose_output_padding",
        lambda: Conv2DTranspose(2, 3, strides=2, output_padding=1, activation="linear"),
        (3, 3, 2),
        (6, 6, 2),
        2 * 2 * 9 + 2,
    ),
    row(
        "conv2d_transpose_valid_output_padding",
        lambda: Conv2DTranspose(2, 2, strides=3, padding="valid", output_padding=(1, 2)),
        (3, 2, 1),
        (9, 7, 2),
        1 * 2 * 4 + 2,
    ),
    row(
        "conv2d_transpose_dilated_nobias",
        lambda: Conv2DTranspose(2, 3, dilation_rate=2, use_bias=False),
        (4, 4, 2),
        (4, 4, 2),
        2 * 2 * 9,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conv_forward_matches_numpy_and_keras(case: LayerCase):
    check_reference(case)
    if case.extra["keras"]:
        assert check_keras(case), f"no Keras fixture for {case.id}: run tools/keras_fixtures.py --only {case.id}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_conv_trains_and_exports(case: LayerCase, engine: str, tmp_path):
    # ORT 1.19 builds ConvTransposeGrad but has no CPU kernel for it: the ort-training engine refuses
    # Conv2DTranspose with an UnsupportedError (which the harness accepts), naming the op.
    check_training_and_export(case, tmp_path, engine)


@pytest.mark.training
def test_ort_training_names_the_gradient_kernel_it_lacks():
    with Sequential.of(Input(4, 4, 2), Conv2DTranspose(3, 2), Flatten(), Dense(2), seed=1) as model:
        with pytest.raises(UnsupportedError, match=r"no cpu kernel for ConvTransposeGrad \(node .*engine='portable'"):
            model.compile(optimizer="adam", loss="mse", engine="ort-training")


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same"]),
    transpose=st.booleans(),
    extra=st.integers(0, 2),
)
def test_any_window_matches_numpy(size, kernel, stride, dilation, padding, transpose, extra):
    # Shape rules and pads for any geometry: the layer's shape, ONNX Runtime's output and numpy's agree.
    if transpose:
        output_padding = None if extra == 0 else min(extra, stride - 1)
        layer = Conv2DTranspose(2, kernel, stride, padding, output_padding, dilation, activation="linear")
        reference: Callable = conv_transpose_reference
    else:
        extents = [(k - 1) * dilation + 1 for k in kernel]
        assume(padding == "same" or all(e <= n for e, n in zip(extents, size, strict=True)))
        layer = Conv2D(2, kernel, stride, padding, dilation, groups=1 + extra % 2, activation="linear")
        reference = conv_reference
    try:
        model = Sequential.of(Input(*size, 2), layer, seed=0)
    except ShapeError:  # only an empty transposed output is refused
        assert transpose and output_padding == 0
        return
    x = np.random.default_rng(0).uniform(-1, 1, (2, *size, 2)).astype(np.float32)
    y = forward(model, x)
    assert y.shape[1:] == layer.output_shape
    np.testing.assert_allclose(y, reference(layer, x.astype(np.float64)), rtol=1e-5, atol=1e-5)


# --- arguments, defaults and configs -----------------------------------------------------------------------
def test_conv_defaults_are_kotlindls():
    for layer in (Conv2D(8, 3), Conv1D(8, 3), DepthwiseConv2D(3), SeparableConv2D(8, 3), Conv2DTranspose(8, 3)):
        assert layer.padding == "same" and layer.activation.name == "relu" and layer.use_bias
        assert layer.bias_initializer.name == "he_uniform"
        assert layer.strides == layer.dilation_rate == (1,) * layer.rank
    assert Conv2D(8, 3).kernel_initializer.name == "he_normal"
    assert DepthwiseConv2D(3).depthwise_initializer.name == "he_normal"
    assert SeparableConv2D(8, 3).pointwise_initializer.name == "he_normal"


def test_conv_accepts_kotlindl_and_keras_spellings():
    kotlindl = Conv2D(8, 3, strides=(1, 2, 2, 1), dilation_rate=[1, 1, 1, 1], padding=ConvPadding.VALID)
    assert kotlindl.get_config() == Conv2D(8, (3, 3), strides=2, padding="VALID").get_config()
    assert kotlindl.strides == (2, 2) and kotlindl.padding == "valid"
    assert Convolution2D is Conv2D
    assert Conv1D(4, 3, strides=(1, 2, 1)).strides == (2,)


def test_conv_kernels_use_keras_fans():
    # GlorotUniform draws within sqrt(6 / (fan_in + fan_out)); Keras' fans count the kernel's positions.
    cases = [
        (Conv2D(16, 3, groups=2, kernel_initializer="glorot_uniform"), (8, 8, 4), "kernel", 2 * 9 + 16 * 9),
        (
            DepthwiseConv2D(5, depth_multiplier=3, depthwise_initializer="glorot_uniform"),
            (8, 8, 4),
            "kernel",
            4 * 25 + 3 * 25,
        ),
        (SeparableConv2D(6, 3, pointwise_initializer="glorot_uniform"), (8, 8, 40), "pointwise_kernel", 40 + 6),
        (Conv2DTranspose(5, 3, kernel_initializer="glorot_uniform"), (4, 4, 30), "kernel", 5 * 9 + 30 * 9),
    ]
    for layer, shape, param, fans in cases:
        Sequential.of(Input(*shape), layer, seed=1)
        limit = math.sqrt(6 / fans)
        values = np.abs(layer.params[param])
        assert values.max() <= limit and values.max() > 0.9 * limit, (type(layer).__name__, values.max(), limit)


def test_conv_configs_round_trip_through_json():
    import json

    for layer in (
        Conv2DTranspose(3, (2, 3), strides=2, output_padding=(1, 0), activation="tanh", name="up"),
        SeparableConv2D(4, 3, depth_multiplier=2, pointwise_initializer=initializers.GlorotUniform(seed=3)),
        Conv1D(3, 5, padding="causal", groups=1, use_bias=False, trainable=False),
    ):
        rebuilt = Layer.from_config(json.loads(json.dumps(layer.serialize())))
        assert type(rebuilt) is type(layer) and rebuilt.get_config() == layer.get_config()


# every convolution layer class, each defaulting to KotlinDL's ReLU
EVERY_CONVOLUTION: list[Callable[..., Layer]] = [
    lambda **a: Conv1D(3, 2, **a),
    lambda **a: Conv2D(3, 2, **a),
    lambda **a: Conv3D(3, 2, **a),
    lambda **a: Conv1DTranspose(3, 2, **a),
    lambda **a: Conv2DTranspose(3, 2, **a),
    lambda **a: Conv3DTranspose(3, 2, **a),
    lambda **a: DepthwiseConv2D(2, **a),
    lambda **a: SeparableConv2D(3, 2, **a),
]


@pytest.mark.parametrize("make", EVERY_CONVOLUTION, ids=lambda make: type(make()).__name__)
def test_a_convolution_records_whether_its_activation_was_given_through_its_config(make):
    # as Dense: ReLU either way, but only a given one is written, so a rebuilt layer keeps the logits rule's default
    import json

    for arguments, written in [({}, False), ({"activation": "relu"}, True), ({"activation": None}, True)]:
        layer = make(**arguments)
        config = layer.get_config()
        assert layer.activation_given is written and ("activation" in config) is written
        rebuilt = Layer.from_config(json.loads(json.dumps(layer.serialize())))
        assert rebuilt.activation_given is written and rebuilt.activation.name == layer.activation.name
        assert rebuilt.get_config() == config
    layer = make()
    assert layer.activation.name == "relu"
    layer.activation = "relu"  # assigning one gives it, as KotlinDL's tutorial writes it
    assert layer.activation_given and layer.get_config()["activation"] == {"name": "relu"}


REGULARIZED = [  # each layer with every regularizer argument it takes, and the parameter each penalizes
    (lambda **r: Conv2D(3, 3, **r), {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}),
    (lambda **r: Conv1D(3, 3, **r), {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}),
    (lambda **r: DepthwiseConv2D(3, **r), {"depthwise_regularizer": "kernel", "bias_regularizer": "bias"}),
    (
        lambda **r: SeparableConv2D(3, 3, **r),
        {
            "depthwise_regularizer": "depthwise_kernel",
            "pointwise_regularizer": "pointwise_kernel",
            "bias_regularizer": "bias",
        },
    ),
    (lambda **r: Conv2DTranspose(3, 3, **r), {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}),
]


@pytest.mark.parametrize(
    ("make", "arguments"), REGULARIZED, ids=["conv2d", "conv1d", "depthwise", "separable", "transpose"]
)
def test_conv_regularizers_add_their_penalties_to_the_loss(make, arguments, blobs):
    x, y = blobs  # (120, 4, 3): a Conv1D input; the 2-D layers see it as (4, 3, 1)
    x = x if isinstance(make(), Conv1D) else x[..., None]
    factors = dict(zip(arguments, (0.5, 0.25, 0.125), strict=False))
    given = {argument: regularizers.L2(factor) for argument, factor in factors.items()}
    losses_by_model = []
    for kwargs in ({}, given):
        layer = make(**kwargs)
        model = Sequential.of(Input(*x.shape[1:]), layer, Flatten(), Dense(3, activation="linear"), seed=4)
        with model:
            model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
            losses_by_model.append(model.evaluate(x, y, verbose=0).loss)
    penalty = sum(
        factors[argument] * np.sum(np.square(layer.params[p], dtype=np.float64)) for argument, p in arguments.items()
    )
    assert losses_by_model[1] - losses_by_model[0] == pytest.approx(penalty, rel=1e-4)
    assert Layer.from_config(layer.serialize()).get_config() == layer.get_config()
    assert {k: v for k, v in layer.get_config().items() if k.endswith("_regularizer")} == {
        argument: {"name": "l2", "l2": factor} for argument, factor in factors.items()
    }
    assert not any(k.endswith("_regularizer") for k in make().get_config())  # left out when not given


def test_frozen_conv_adds_no_penalty():
    model = Sequential.of(Input(4, 4, 1), Conv2D(2, 3, kernel_regularizer="l2", trainable=False), Flatten(), Dense(2))
    nodes = emit.loss_model(model.layers, model_loss()).graph.node
    assert not [n for n in nodes if "penalty" in n.output[0]]


BAD_CONVS = [
    (lambda: Conv2D(0, 3), InvalidArgumentError, r"Conv2D\(filters=...\) expects a positive int. Received: filters=0"),
    (lambda: Conv2D(4, (3, 0)), InvalidArgumentError, r"kernel_size=...\) expects a positive int or a tuple of 2"),
    (lambda: Conv2D(4, (3, 3, 3)), InvalidArgumentError, r"Received: kernel_size=\(3, 3, 3\)"),
    (lambda: Conv2D(4, 3, strides=(2, 2, 2, 2)), InvalidArgumentError, r"KotlinDL's \(1, n, n, 1\)"),
    (lambda: Conv2D(4, 3, padding="full"), InvalidArgumentError, r"padding=...\) expects one of \['valid', 'same'\]"),
    (lambda: Conv2D(4, 3, padding="causal"), InvalidArgumentError, r"Received: padding='causal'"),
    (lambda: Conv2D(6, 3, groups=4), InvalidArgumentError, r"filters divisible by groups"),
    (lambda: Conv2D(4, 3, use_bias=1), InvalidArgumentError, r"use_bias=...\) expects a bool"),
    (lambda: Conv2D(4, 3, activation="relux"), UnknownIdentifierError, r"Could not interpret activation 'relux'"),
    (lambda: DepthwiseConv2D(3, depth_multiplier=0), InvalidArgumentError, r"Received: depth_multiplier=0"),
    (lambda: Conv2DTranspose(2, 3, strides=2, output_padding=2), InvalidArgumentError, r"below its stride \(2, 2\)"),
    (
        lambda: Sequential.of(Input(784), Conv2D(4, 3)),
        ShapeError,
        r"'conv2_?d_1' expects input of shape \[None, height, width, channels\]. Received: input shape \[None, 784\]",
    ),
    (
        lambda: Sequential.of(Input(2, 2, 1), Conv2D(4, 3, padding="valid")),
        ShapeError,
        r"needs at least 3x3 input positions .* Received: input shape \[None, 2, 2, 1\]. Use padding='same'",
    ),
    (lambda: Sequential.of(Input(5, 5, 3), Conv2D(4, 3, groups=2)), ShapeError, r"input channels divisible by 2"),
    (
        lambda: Sequential.of(Input(1, 1, 1), Conv2DTranspose(2, 2, output_padding=0)),
        ShapeError,
        r"would give an empty output",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD_CONVS)
def test_bad_conv_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


# --- layout ------------------------------------------------------------------------------------------------
def test_consecutive_convolutions_share_one_channels_first_layout():
    model = Sequential.of(
        Input(12, 12, 3),
        Conv2D(4, 3),
        DepthwiseConv2D(3, strides=2),
        SeparableConv2D(5, 3),
        Conv2DTranspose(2, 3, strides=2),
        Flatten(),
        Dense(3),
    )
    for proto in (emit.inference_graph(model.layers), emit.loss_model(model.layers, model_loss())):
        transposes = [n for n in proto.graph.node if n.op_type == "Transpose"]
        assert len(transposes) == 2, [n.name for n in transposes]  # after the input and before Flatten
        onnx.checker.check_model(proto)
        assert not any(a.name == "auto_pad" for n in proto.graph.node for a in n.attribute)


def model_loss():
    from onnxtrain import losses

    return losses.get("softmax_cross_entropy_with_logits")
