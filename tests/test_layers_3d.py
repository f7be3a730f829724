"""Keras 3's 3-D layers (Conv3D, Conv3DTranspose, the 3-D poolings, ZeroPadding3D, Cropping3D, UpSampling3D)
through the shared layer harness: numpy and Keras forwards (1e-5), configs, parameter counts, training on both
engines, the export, and the gradient each hands back against finite differences; their bad arguments and their
channels-first graphs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import pytest
from layer_gradients import check_input_gradient
from layer_harness import LayerCase, ToChannelsFirst, table_tests
from test_layers_conv import conv_keras, conv_nd, with_bias_and_activation
from test_layers_pooling import global_reference, pool_reference

from onnxtrain import Sequential, emit
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.layers import (
    AveragePooling2D,
    AveragePooling3D,
    AvgPool3D,
    Conv3D,
    Conv3DTranspose,
    Convolution3D,
    Convolution3DTranspose,
    Cropping3D,
    Dense,
    Flatten,
    GlobalAveragePooling3D,
    GlobalAvgPool3D,
    GlobalMaxPool3D,
    GlobalMaxPooling3D,
    Input,
    Layer,
    MaxPool3D,
    MaxPooling2D,
    MaxPooling3D,
    UpSampling3D,
    ZeroPadding2D,
    ZeroPadding3D,
)


# --- numpy references: channels-last float64 -----------------------------------------------------------------
def conv_transpose_nd(layer: Conv3DTranspose, x: np.ndarray) -> np.ndarray:
    """Scatter x[n, *i, c] * w[c, m, *j] into y[n, *(i * s + j * d), m], then keep Keras' output window (its size
    from Keras' deconv_output_length, its start where TensorFlow's "same" forward convolution would pad)."""
    kernel, rank = layer.params["kernel"], x.ndim - 2
    strides, dilations, padding = layer.strides, layer.dilation_rate, layer.padding
    extents = [(k - 1) * d + 1 for k, d in zip(kernel.shape[2:], dilations, strict=True)]
    lengths, starts = [], []
    for a in range(rank):
        i, s, e = x.shape[1 + a], strides[a], extents[a]
        if layer.output_padding is None:
            length = i * s if padding == "same" else i * s + max(e - s, 0)
        else:
            length = (i - 1) * s + e - 2 * (e // 2 if padding == "same" else 0) + layer.output_padding[a]
        lengths.append(length)
        starts.append(max((i - 1) * s + e - length, 0) // 2 if padding == "same" else 0)
    sizes = [(x.shape[1 + a] - 1) * strides[a] + extents[a] + lengths[a] for a in range(rank)]
    full = np.zeros((len(x), *sizes, kernel.shape[1]))
    for j in np.ndindex(*kernel.shape[2:]):
        offset = tuple(
            slice(j[a] * dilations[a], j[a] * dilations[a] + (x.shape[1 + a] - 1) * strides[a] + 1, strides[a])
            for a in range(rank)
        )
        full[(slice(None), *offset)] += x @ kernel[(slice(None), slice(None), *j)]
    window = tuple(slice(st, st + n) for st, n in zip(starts, lengths, strict=True))
    return with_bias_and_activation(layer, full[(slice(None), *window)])


def conv_reference(layer: Conv3D, x: np.ndarray) -> np.ndarray:
    y = conv_nd(x, layer.params["kernel"], layer.strides, layer.dilation_rate, layer.padding, layer.groups)
    return with_bias_and_activation(layer, y)


def sides_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    if isinstance(layer, ZeroPadding3D):
        return np.pad(x, [(0, 0), *layer.padding, (0, 0)])
    assert isinstance(layer, Cropping3D)
    window = tuple(slice(begin, n - end) for n, (begin, end) in zip(x.shape[1:4], layer.cropping, strict=True))
    return x[(slice(None), *window)]


def upsampling_reference(layer: UpSampling3D, x: np.ndarray) -> np.ndarray:
    for axis, factor in enumerate(layer.size, start=1):
        x = np.repeat(x, factor, axis=axis)
    return x


def row(
    case_id: str, make: Callable[[], Layer], input_shape: tuple[int, ...], output_shape: tuple[int, ...], params: int
) -> LayerCase:
    layer = make()
    reference, weights = {
        Conv3D: (conv_reference, conv_keras),
        Conv3DTranspose: (conv_transpose_nd, conv_keras),
        MaxPooling3D: (pool_reference, None),
        AveragePooling3D: (pool_reference, None),
        GlobalMaxPooling3D: (global_reference, None),
        GlobalAveragePooling3D: (global_reference, None),
        ZeroPadding3D: (sides_reference, None),
        Cropping3D: (sides_reference, None),
        UpSampling3D: (upsampling_reference, None),
    }[type(layer)]
    return LayerCase(case_id, make, input_shape, output_shape, params, reference, weights)  # type: ignore[arg-type]


CASES = [
    row("conv3d_same", lambda: Conv3D(3, 3), (4, 5, 6, 2), (4, 5, 6, 3), 3 * 2 * 27 + 3),
    row(
        "conv3d_valid_strided",
        lambda: Conv3D(2, (2, 3, 2), strides=(1, 2, 2), padding="valid", activation="linear"),
        (4, 5, 6, 2),
        (3, 2, 3, 2),
        2 * 2 * 12 + 2,
    ),
    row("conv3d_same_strided", lambda: Conv3D(2, 3, strides=2, activation="tanh"), (4, 5, 6, 2), (2, 3, 3, 2), 110),
    row(
        "conv3d_dilated_nobias",
        lambda: Conv3D(2, 2, dilation_rate=2, use_bias=False, activation="linear"),
        (4, 5, 6, 2),
        (4, 5, 6, 2),
        2 * 2 * 8,
    ),
    row("conv3d_groups", lambda: Conv3D(4, 2, padding="valid", groups=2), (3, 4, 5, 4), (2, 3, 4, 4), 4 * 2 * 8 + 4),
    row("conv3d_softmax", lambda: Convolution3D(3, 1, activation="softmax"), (2, 3, 4, 2), (2, 3, 4, 3), 9),
    row(
        "conv3d_transpose_same_strided",
        lambda: Conv3DTranspose(2, 3, strides=2, activation="linear"),
        (2, 3, 2, 3),
        (4, 6, 4, 2),
        3 * 2 * 27 + 2,
    ),
    row(
        "conv3d_transpose_valid",
        lambda: Conv3DTranspose(2, (2, 3, 2), strides=(1, 2, 3), padding="valid"),
        (2, 3, 2, 2),
        (3, 7, 6, 2),
        2 * 2 * 12 + 2,
    ),
    row(
        "conv3d_transpose_output_padding",
        lambda: Conv3DTranspose(2, 2, strides=2, output_padding=(1, 0, 1), activation="linear"),
        (2, 2, 3, 1),
        (3, 2, 5, 2),
        1 * 2 * 8 + 2,
    ),
    row(
        "conv3d_transpose_dilated_nobias",
        lambda: Convolution3DTranspose(2, 2, dilation_rate=2, use_bias=False),
        (3, 3, 3, 2),
        (3, 3, 3, 2),
        2 * 2 * 8,
    ),
    row("max_pool3d", lambda: MaxPooling3D(), (4, 5, 6, 2), (2, 2, 3, 2), 0),
    row(
        "max_pool3d_same_strides",
        lambda: MaxPooling3D((3, 2, 2), strides=(2, 1, 2), padding="same"),
        (4, 5, 6, 2),
        (2, 5, 3, 2),
        0,
    ),
    row("max_pool3d_overlapping", lambda: MaxPool3D(2, strides=1), (3, 4, 5, 2), (2, 3, 4, 2), 0),
    row("avg_pool3d", lambda: AveragePooling3D(), (4, 5, 6, 2), (2, 2, 3, 2), 0),
    row("avg_pool3d_same", lambda: AvgPool3D(3, strides=2, padding="same"), (4, 5, 6, 2), (2, 3, 3, 2), 0),
    row("global_avg_pool3d", lambda: GlobalAveragePooling3D(), (4, 5, 6, 2), (2,), 0),
    row("global_avg_pool3d_keepdims", lambda: GlobalAvgPool3D(keepdims=True), (4, 5, 6, 2), (1, 1, 1, 2), 0),
    row("global_max_pool3d", lambda: GlobalMaxPooling3D(), (4, 5, 6, 2), (2,), 0),
    row("global_max_pool3d_keepdims", lambda: GlobalMaxPool3D(keepdims=True), (4, 5, 6, 2), (1, 1, 1, 2), 0),
    row("zero_padding3d_default", lambda: ZeroPadding3D(), (3, 4, 5, 2), (5, 6, 7, 2), 0),
    row("zero_padding3d_mixed", lambda: ZeroPadding3D(((1, 0), 2, (0, 3))), (3, 4, 5, 2), (4, 8, 8, 2), 0),
    row("cropping3d_default", lambda: Cropping3D(), (4, 5, 6, 2), (2, 3, 4, 2), 0),
    row("cropping3d_mixed", lambda: Cropping3D(((1, 0), (0, 2), 1)), (4, 5, 6, 2), (3, 3, 4, 2), 0),
    row("upsampling3d_default", lambda: UpSampling3D(), (2, 3, 2, 2), (4, 6, 4, 2), 0),
    row("upsampling3d_mixed", lambda: UpSampling3D((1, 2, 3)), (2, 3, 2, 2), (2, 6, 6, 2), 0),
]


test_3d_layer_forward_matches_numpy_and_keras, test_3d_layer_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient_through_the_3d_layer_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)


# --- the two engines on a 3-D network --------------------------------------------------------------------------
def volumes(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(n, 4, 5, 6, 2)).astype(np.float32), rng.integers(0, 3, n)


def network(pool: Layer, upsampling: bool = True) -> Sequential:
    return Sequential.of(
        Input(4, 5, 6, 2),
        Conv3D(3, 2, activation="tanh"),
        pool,
        ZeroPadding3D((0, 1, (1, 0))),  # not before the pool: see test_zero_padding_then_pooling_with_pads_...
        *([UpSampling3D((2, 1, 1))] if upsampling else []),
        Cropping3D((1, 0, 0)),
        Conv3D(2, 2, strides=(1, 2, 1), padding="valid", activation="linear"),
        GlobalAveragePooling3D(),
        Dense(3, activation="linear"),
        seed=3,
    )


def test_consecutive_3d_layers_share_one_channels_first_layout():
    model = network(MaxPooling3D((2, 2, 3), strides=(1, 2, 2), padding="same"))
    nodes = emit.inference_graph(model.layers).graph.node
    assert [n.op_type for n in nodes].count("Transpose") == 1  # after the input; GlobalAveragePooling3D flattens


@pytest.mark.training
def test_ort_training_trains_a_3d_network_as_the_portable_engine_does():
    # Conv3D's, MaxPool's (3-D), Pad's, Slice's and GlobalAveragePool's gradients from ONNX Runtime's builder give
    # the same SGD step as onnxtrain.autodiff's.
    x, y = volumes()
    weights = []
    for engine in ("portable", "ort-training"):
        with network(MaxPooling3D((2, 2, 3), strides=(1, 2, 2), padding="same"), upsampling=False) as model:
            model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine=engine)
            model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
            weights.append(model.get_weights())
    for name, value in weights[0].items():
        np.testing.assert_allclose(weights[1][name], value, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.training
def test_ort_training_refuses_average_pooling_3d_after_a_weight():
    # ORT 1.19's AveragePoolGrad is wrong for 3-D windows (tests/test_autodiff_nn_rules.py) and sizes its output
    # by the graph's symbolic batch: refused, not trained.
    with network(AveragePooling3D(2, padding="same")) as model:
        with pytest.raises(UnsupportedError, match=r"cannot differentiate the AveragePool node .*engine='portable'"):
            model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine="ort-training")


@pytest.mark.training
@pytest.mark.parametrize(
    ("make", "kernel"),
    [(lambda: Conv3DTranspose(2, 2), "ConvTransposeGrad"), (lambda: UpSampling3D(), "ResizeGrad")],
    ids=["conv3d_transpose", "upsampling3d"],
)
def test_ort_training_refuses_a_3d_layer_whose_gradient_kernel_it_lacks(make, kernel):
    # Where a weight comes before the layer (a layer reading the model's input needs no gradient kernel).
    with Sequential.of(Input(2, 3, 2, 2), Conv3D(2, 1), make(), Flatten(), Dense(2), seed=1) as model:
        with pytest.raises(UnsupportedError, match=rf"no cpu kernel for {kernel} \(node .*engine='portable'"):
            model.compile(optimizer="adam", loss="mse", engine="ort-training")


@pytest.mark.parametrize(
    ("rank", "pool"), [(3, MaxPooling3D), (3, AveragePooling3D), (2, MaxPooling2D), (2, AveragePooling2D)]
)
def test_zero_padding_then_pooling_with_pads_after_a_convolution(rank, pool):
    """ONNX Runtime's Pad_Fusion folds a zero Pad into the next pool's own pads, where MaxPool pads with -inf and
    AveragePool(count_include_pad=0) leaves pads out of the mean (microsoft/onnxruntime#18136, #21556): onnxtrain's
    sessions run with it disabled (`_runtime.DISABLED_OPTIMIZERS`), so the Pad on channels-first values (after a
    convolution) gives the numbers of the Pad on channels-last ones, which ORT does not fuse."""
    shape = (3, 4, 4, 1) if rank == 3 else (4, 4, 1)
    x = -np.abs(np.random.default_rng(0).normal(size=(4, *shape))).astype(np.float32)
    predictions = []
    for after_conv in (True, False):  # the Pad on channels-first values (fused), or channels-last ones (not)
        layers = [Input(*shape), *([ToChannelsFirst()] if after_conv else [])]
        padding = ZeroPadding3D(1) if rank == 3 else ZeroPadding2D(1)
        with Sequential.of(*layers, padding, pool(3, strides=1, padding="same"), seed=1) as model:
            model.compile(optimizer="sgd", loss="mse")
            predictions.append(model.predict(x))
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ZeroPadding3D(((1, 2), 0, (0, 3))),
        lambda: Cropping3D(((1, 0), (1, 2), 1)),
        lambda: UpSampling3D((2, 1, 3)),
        lambda: MaxPooling3D(2, strides=1),
        lambda: GlobalMaxPooling3D(keepdims=True),
    ],
)
def test_3d_layers_take_channels_first_values_as_they_are(make):
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 6, 3)).astype(np.float32)
    plain = Sequential.of(Input(4, 5, 6, 3), make(), seed=1)
    after_conv = Sequential.of(Input(4, 5, 6, 3), ToChannelsFirst(), make(), seed=1)
    assert [n.op_type for n in emit.inference_graph(after_conv.layers).graph.node].count("Transpose") == 2
    outputs = []
    for model in (plain, after_conv):
        session = ort.InferenceSession(emit.inference_graph(model.layers).SerializeToString())
        outputs.append(session.run(["logits"], {"input": x})[0])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)


# --- arguments, defaults and configs ---------------------------------------------------------------------------
def test_3d_convolutions_keep_kotlindls_defaults_and_spellings():
    for layer in (Conv3D(8, 3), Conv3DTranspose(8, 3)):
        assert layer.padding == "same" and layer.activation.name == "relu" and layer.use_bias
        assert layer.kernel_initializer.name == "he_normal" and layer.bias_initializer.name == "he_uniform"
        assert layer.strides == layer.dilation_rate == (1, 1, 1) and layer.kernel_size == (3, 3, 3)
    kotlindl = Conv3D(4, 3, strides=(1, 2, 2, 1, 1), dilation_rate=[1, 1, 1, 1, 1], padding="VALID")
    assert kotlindl.strides == (2, 2, 1) and kotlindl.get_config() == Conv3D(4, 3, (2, 2, 1), "valid").get_config()
    assert Convolution3D is Conv3D and Convolution3DTranspose is Conv3DTranspose


def test_3d_kernels_use_keras_fans():
    # GlorotUniform draws within sqrt(6 / (fan_in + fan_out)); Keras' fans count the kernel's positions.
    cases = [
        (Conv3D(6, 3, groups=2, kernel_initializer="glorot_uniform"), (4, 4, 4, 4), 2 * 27 + 6 * 27),
        (Conv3DTranspose(5, 2, kernel_initializer="glorot_uniform"), (3, 3, 3, 30), 5 * 8 + 30 * 8),
    ]
    for layer, shape, fans in cases:
        Sequential.of(Input(*shape), layer, seed=1)
        limit, values = math.sqrt(6 / fans), np.abs(layer.params["kernel"])
        assert limit >= values.max() > 0.9 * limit, (type(layer).__name__, values.max(), limit)


def test_3d_poolings_take_keras_defaults_and_aliases():
    for layer in (MaxPooling3D(), AveragePooling3D()):
        assert layer.pool_size == layer.strides == (2, 2, 2) and layer.padding == "valid"
    assert MaxPooling3D(3, strides=(1, 2, 1)).strides == (1, 2, 1)
    assert (MaxPool3D, AvgPool3D, GlobalMaxPool3D, GlobalAvgPool3D) == (
        MaxPooling3D,
        AveragePooling3D,
        GlobalMaxPooling3D,
        GlobalAveragePooling3D,
    )


def test_3d_layer_configs_use_keras_names():
    assert Conv3D(2, (1, 2, 3), groups=2).get_config() == {
        "filters": 2,
        "kernel_size": [1, 2, 3],
        "strides": [1, 1, 1],
        "padding": "same",
        "dilation_rate": [1, 1, 1],
        "groups": 2,  # no "activation": not given (KotlinDL's ReLU), left out as Dense leaves it
        "use_bias": True,
        "kernel_initializer": {"name": "he_normal", "seed": None},
        "bias_initializer": {"name": "he_uniform", "seed": None},
        "name": None,
        "trainable": True,
    }
    assert Conv3DTranspose(2, 2, strides=2, output_padding=1).get_config()["output_padding"] == [1, 1, 1]
    assert MaxPooling3D((1, 2, 3)).get_config()["strides"] == [1, 2, 3]
    assert GlobalMaxPooling3D(keepdims=True).get_config() == {"keepdims": True, "name": None, "trainable": True}
    assert ZeroPadding3D(2).get_config()["padding"] == [[2, 2], [2, 2], [2, 2]]
    assert Cropping3D((1, (0, 2), 3)).get_config()["cropping"] == [[1, 1], [0, 2], [3, 3]]
    assert UpSampling3D(3).get_config() == {"size": [3, 3, 3], "name": None, "trainable": True}
    for layer in (Conv3DTranspose(3, (2, 1, 2), strides=2, output_padding=(1, 0, 1), name="up"), Cropping3D(2)):
        rebuilt = Layer.from_config(json.loads(json.dumps(layer.serialize())))
        assert type(rebuilt) is type(layer) and rebuilt.get_config() == layer.get_config()


KERAS_ONLY = [
    (lambda: Conv3D(2, 3, data_format="channels_first"), r"Conv3D\(data_format='channels_first'\) is not supported"),
    (
        lambda: Conv3DTranspose(2, 3, kernel_constraint="non_neg"),
        r"Conv3DTranspose\(kernel_constraint=...\) is not supported: onnxtrain has no weight constraints.*"
        r"kernel_regularizer='l2'",
    ),
    (lambda: MaxPooling3D(data_format="channels_first"), r"MaxPooling3D\(data_format='channels_first'\)"),
    (lambda: GlobalAveragePooling3D(data_format="channels_first"), r"GlobalAveragePooling3D\(data_format="),
    (lambda: ZeroPadding3D(data_format="channels_first"), r"ZeroPadding3D\(data_format='channels_first'\)"),
    (lambda: Cropping3D(data_format="channels_first"), r"Cropping3D\(data_format='channels_first'\)"),
    (lambda: UpSampling3D(data_format="channels_first"), r"UpSampling3D\(data_format='channels_first'\)"),
]


@pytest.mark.parametrize(("factory", "message"), KERAS_ONLY)
def test_3d_layers_refuse_keras_only_options_by_name(factory, message):
    with pytest.raises(UnsupportedError, match=message):
        factory()


def test_3d_layers_accept_keras_defaults_of_keras_only_options():
    assert Conv3D(2, 3, data_format="channels_last", kernel_constraint=None).get_config() == Conv3D(2, 3).get_config()
    assert UpSampling3D(data_format=None).size == (2, 2, 2)
    with pytest.raises(InvalidTypeError, match=r"UpSampling3D\(\) got an unexpected keyword argument 'interpolation'"):
        UpSampling3D(interpolation="bilinear")  # type: ignore[call-arg]


BAD = [
    (lambda: Conv3D(0, 3), InvalidArgumentError, r"Conv3D\(filters=...\) expects a positive int. Received: filters=0"),
    (
        lambda: Conv3D(2, (3, 3)),
        InvalidArgumentError,
        r"Conv3D\(kernel_size=...\) expects a positive int or a tuple of 3 positive ints. "
        r"Received: kernel_size=\(3, 3\)",
    ),
    (lambda: Conv3D(2, 3, strides=(1, 2, 2, 1)), InvalidArgumentError, r"KotlinDL's \(1, n, n, n, 1\)"),
    (lambda: Conv3D(2, 3, padding="causal"), InvalidArgumentError, r"Received: padding='causal'"),
    (lambda: Conv3D(3, 3, groups=2), InvalidArgumentError, r"filters divisible by groups"),
    (
        lambda: Conv3DTranspose(2, 3, strides=2, output_padding=(1, 2, 0)),
        InvalidArgumentError,
        r"below its stride \(2, 2, 2\). Received: output_padding=\(1, 2, 0\)",
    ),
    (lambda: MaxPooling3D((2, 2)), InvalidArgumentError, r"MaxPooling3D\(pool_size=...\) expects a positive int or "),
    (lambda: AveragePooling3D(2, strides=(1, 0, 1)), InvalidArgumentError, r"Received: strides=\(1, 0, 1\)"),
    (lambda: AveragePooling3D(padding="causal"), InvalidArgumentError, r"expects one of \['valid', 'same'\]"),
    (lambda: GlobalMaxPooling3D(keepdims="yes"), InvalidArgumentError, r"keepdims='yes'"),
    (
        lambda: ZeroPadding3D((1, 2)),
        InvalidArgumentError,
        r"ZeroPadding3D\(padding=...\) expects a non-negative int, or 3 entries \(depth, height, width\).*"
        r"Received: padding=\(1, 2\)",
    ),
    (lambda: ZeroPadding3D(-1), InvalidArgumentError, r"Received: padding=-1"),
    (lambda: Cropping3D((1, (2, -1), 0)), InvalidArgumentError, r"Cropping3D\(cropping=...\).*\(1, \(2, -1\), 0\)"),
    (lambda: Cropping3D((1, (2, 1, 0), 0)), InvalidArgumentError, r"Received: cropping=\(1, \(2, 1, 0\), 0\)"),
    (lambda: UpSampling3D((2, 2)), InvalidArgumentError, r"UpSampling3D\(size=...\) expects a positive int or a tuple"),
    (lambda: UpSampling3D(0), InvalidArgumentError, r"Received: size=0"),
    (
        lambda: Sequential.of(Input(5, 6, 2), Conv3D(2, 3)),
        ShapeError,
        r"expects input of shape \[None, depth, height, width, channels\]. Received: input shape \[None, 5, 6, 2\]",
    ),
    (
        lambda: Sequential.of(Input(2, 5, 6, 1), Conv3D(2, 3, padding="valid")),
        ShapeError,
        r"needs at least 3x3x3 input positions",
    ),
    (
        lambda: Sequential.of(Input(5, 6, 2), MaxPooling3D()),
        ShapeError,
        r"expects inputs of shape \[None, depth, height, width, channels\]. Received: input shape \[None, 5, 6, 2\]",
    ),
    (
        lambda: Sequential.of(Input(1, 4, 4, 2), AveragePooling3D()),
        ShapeError,
        r"needs inputs at least as large as pool_size=\(2, 2, 2\)",
    ),
    (
        lambda: Sequential.of(Input(4, 4, 2), GlobalAveragePooling3D()),
        ShapeError,
        r"\[None, depth, height, width, channels\]",
    ),
    (
        lambda: Sequential.of(Input(4, 4, 2), ZeroPadding3D()),
        ShapeError,
        r"ZeroPadding3D layer 'zero_padding3d_1' expects volumes of shape \[None, depth, height, width, channels\]",
    ),
    (
        lambda: Sequential.of(Input(2, 5, 6, 1), Cropping3D()),
        ShapeError,
        r"leaves nothing of volumes of 2x5x6. Received: input shape \[None, 2, 5, 6, 1\]",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_3d_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
