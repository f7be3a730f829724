"""GroupNormalization, UnitNormalization, GaussianNoise, GaussianDropout, ZeroPadding1D, Cropping1D, UpSampling1D
and Conv1DTranspose: the layer harness (numpy references, Keras 3 fixtures, training on both engines), gradients
against finite differences, channels-first inputs, the noise's documented draws and statistics, and bad arguments."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import pytest
from layer_gradients import check_input_gradient
from layer_harness import LayerCase, ToChannelsFirst, check_resumed_fit_of_layer, table_tests
from test_layers_conv import conv_keras, conv_transpose_2d, with_bias_and_activation
from test_layers_dropout import scramble, training_forward

from onnxtrain import Sequential, emit
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError, UnsupportedError
from onnxtrain.layers import (
    Conv1DTranspose,
    Cropping1D,
    Dense,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    GroupNormalization,
    Input,
    Layer,
    UnitNormalization,
    UpSampling1D,
    ZeroPadding1D,
)
from onnxtrain.layers import _dropout as spec


# --- numpy references (float64, inference mode) ----------------------------------------------------------------
def group_norm_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Keras' grouping: channel c of `axis` in group c // (channels / groups); statistics over the group and every
    other axis of the example."""
    moved = np.moveaxis(x, layer.axis % x.ndim, -1)
    channels = moved.shape[-1]
    groups = channels if layer.groups == -1 else layer.groups
    grouped = moved.reshape(*moved.shape[:-1], groups, channels // groups)
    axes = (*range(1, grouped.ndim - 2), grouped.ndim - 1)
    mean, variance = grouped.mean(axis=axes, keepdims=True), grouped.var(axis=axes, keepdims=True)
    y = ((grouped - mean) / np.sqrt(variance + layer.epsilon)).reshape(moved.shape)
    y = y * layer.params.get("gamma", 1.0) + layer.params.get("beta", 0.0)
    return np.moveaxis(y, -1, layer.axis % x.ndim)


def unit_norm_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    axes = tuple(a % x.ndim for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis]))
    return x / np.sqrt(np.maximum((x * x).sum(axis=axes, keepdims=True), 1e-24))


def identity(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x


def zero_padding_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return np.pad(x, ((0, 0), layer.padding, (0, 0)))


def cropping_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    start, end = layer.cropping
    return x[:, start : x.shape[1] - end]


def up_sampling_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return np.repeat(x, layer.size, axis=1)


def conv1d_transpose_reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The 2-D reference of tests/test_layers_conv.py on a height of 1 (a 1x1 window there)."""
    kernel = layer.params["kernel"][:, :, None, :]
    output_padding = None if layer.output_padding is None else (0, *layer.output_padding)
    args = (1, *layer.strides), (1, *layer.dilation_rate), layer.padding, output_padding
    return with_bias_and_activation(layer, conv_transpose_2d(x[:, None], kernel, *args)[:, 0])


def weights(*names: str) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    return lambda values: dict(zip(names, values, strict=True))


def group_norm(case_id: str, make, shape, params: int, names=("gamma", "beta"), trains: bool = True) -> LayerCase:
    return LayerCase(case_id, make, shape, shape, params, group_norm_reference, weights(*names), trains, (1e-5, 2e-5))


def plain(case_id: str, make, shape, output_shape, reference, trains: bool = True) -> LayerCase:
    return LayerCase(case_id, make, shape, output_shape, 0, reference, trains=trains)


def conv(case_id: str, make, shape, output_shape, params: int) -> LayerCase:
    return LayerCase(case_id, make, shape, output_shape, params, conv1d_transpose_reference, conv_keras)


# A random-label fit's loss through a noise layer need not fall in 3 epochs (trains=False): the noise tests below
# train through them on a problem they can learn.
CASES = [
    group_norm("group_norm", lambda: GroupNormalization(groups=2), (4, 6), 12),
    group_norm("group_norm_image", lambda: GroupNormalization(groups=3, epsilon=1e-2), (3, 3, 6), 12),
    group_norm("group_norm_instance", lambda: GroupNormalization(groups=-1), (5, 4), 8),
    group_norm("group_norm_axis1", lambda: GroupNormalization(groups=2, axis=1), (4, 3, 2), 8),
    group_norm("group_norm_flat_no_center", lambda: GroupNormalization(1, center=False), (6,), 6, ("gamma",)),
    group_norm("group_norm_no_scale", lambda: GroupNormalization(groups=2, scale=False), (3, 4), 4, ("beta",)),
    plain("unit_norm", lambda: UnitNormalization(), (6,), (6,), unit_norm_reference),
    plain("unit_norm_axes", lambda: UnitNormalization(axis=[1, 2]), (3, 4, 2), (3, 4, 2), unit_norm_reference),
    plain("unit_norm_axis1", lambda: UnitNormalization(axis=1), (4, 3), (4, 3), unit_norm_reference),
    plain("gaussian_noise", lambda: GaussianNoise(0.5), (6,), (6,), identity, trains=False),
    plain("gaussian_noise_image", lambda: GaussianNoise(0.1, seed=4), (3, 3, 2), (3, 3, 2), identity, trains=False),
    plain("gaussian_dropout", lambda: GaussianDropout(0.3, seed=2), (4, 3), (4, 3), identity, trains=False),
    plain("zero_padding1d_int", lambda: ZeroPadding1D(2), (4, 3), (8, 3), zero_padding_reference),
    plain("zero_padding1d_asym", lambda: ZeroPadding1D((1, 3)), (4, 3), (8, 3), zero_padding_reference),
    plain("cropping1d", lambda: Cropping1D(), (5, 2), (3, 2), cropping_reference),
    plain("cropping1d_asym", lambda: Cropping1D((2, 0)), (5, 2), (3, 2), cropping_reference),
    plain("upsampling1d", lambda: UpSampling1D(), (3, 2), (6, 2), up_sampling_reference),
    plain("upsampling1d_3", lambda: UpSampling1D(3), (4, 3), (12, 3), up_sampling_reference),
    conv("conv1d_transpose_same", lambda: Conv1DTranspose(3, 3), (5, 2), (5, 3), 2 * 3 * 3 + 3),
    conv(
        "conv1d_transpose_valid_strided",
        lambda: Conv1DTranspose(2, 3, strides=2, padding="valid", activation="linear"),
        (4, 3),
        (9, 2),
        3 * 2 * 3 + 2,
    ),
    conv(
        "conv1d_transpose_output_padding",
        lambda: Conv1DTranspose(2, 3, strides=2, output_padding=1, activation="linear"),
        (4, 3),
        (8, 2),
        3 * 2 * 3 + 2,
    ),
    conv(
        "conv1d_transpose_dilated_nobias",
        lambda: Conv1DTranspose(2, 3, dilation_rate=2, use_bias=False),
        (5, 2),
        (5, 2),
        2 * 2 * 3,
    ),
]

test_extra_layer_forward_matches_numpy_and_keras, test_extra_layer_trains_and_exports = table_tests(CASES)

# Every row with a gradient to check (the noise layers' is the identity's, or the noise's, in training).
GRADIENT_CASES = [case for case in CASES if not case.id.startswith("gaussian")]


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c.id for c in GRADIENT_CASES])
def test_gradient_through_the_layer_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)


@pytest.mark.parametrize(
    ("make", "input_shape"),
    [
        (lambda: GroupNormalization(groups=2), (5, 4)),
        (lambda: GroupNormalization(groups=3, axis=1), (6, 2, 2)),
        (lambda: ZeroPadding1D((2, 1)), (5, 4)),
        (lambda: Cropping1D((1, 2)), (5, 4)),
        (lambda: UpSampling1D(3), (5, 4)),
        (lambda: Conv1DTranspose(3, 2, strides=2), (5, 4)),
    ],
)
def test_layers_compute_channels_first_values_as_channels_last_ones(make, input_shape):
    # After a convolution the value is channels first: the layer works on it as it is, with no Transpose.
    x = np.random.default_rng(0).normal(size=(3, *input_shape)).astype(np.float32)
    plain_model = Sequential.of(Input(*input_shape), make(), seed=1)
    after_conv = Sequential.of(Input(*input_shape), ToChannelsFirst(), make(), seed=1)
    after_conv.set_weights(plain_model.get_weights())
    outputs = []
    for model in (plain_model, after_conv):
        session = ort.InferenceSession(emit.inference_graph(model.layers).SerializeToString())
        outputs.append(session.run(["logits"], {"input": x})[0])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)


def test_group_normalization_normalizes_each_group_of_each_example():
    # Groups whose scales differ by 100x come out with mean 0 and variance 1 each (gamma 1, beta 0).
    x = np.random.default_rng(1).normal(size=(4, 6, 4)) * np.array([1.0, 1.0, 100.0, 100.0]) + 5.0
    model = Sequential.of(Input(6, 4), GroupNormalization(groups=2, epsilon=1e-6), seed=1)
    session = ort.InferenceSession(emit.inference_graph(model.layers).SerializeToString())
    y = session.run(["logits"], {"input": x.astype(np.float32)})[0].reshape(4, 6, 2, 2)
    np.testing.assert_allclose(y.mean(axis=(1, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 3)), 1.0, rtol=1e-4)


def test_group_normalization_regularizers_add_their_penalties(blobs):
    x, y = blobs

    def loss(**regularizers: object) -> float:
        layer = GroupNormalization(groups=3, beta_initializer="ones", **regularizers)
        with Sequential.of(Input(4, 3), layer, Flatten(), Dense(3, activation="linear"), seed=2) as m:
            m.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine="portable")
            return m.evaluate(x, y, verbose=0).loss

    # gamma and beta are 3 ones each: l1 = 0.01 * 3, l2 = 0.01 * 3
    penalty = loss(beta_regularizer="l2", gamma_regularizer="l1") - loss()
    assert penalty == pytest.approx(0.06, rel=1e-4)


def test_unit_normalization_keeps_an_all_zero_example_zero_with_a_finite_gradient():
    model = Sequential.of(Input(4), UnitNormalization(), Dense(2, activation="linear"), seed=1)
    x = np.zeros((2, 4), np.float32)
    session = ort.InferenceSession(emit.inference_graph(model.layers[:2]).SerializeToString())
    np.testing.assert_array_equal(session.run(["logits"], {"input": x})[0], x)
    with model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine="portable")
        history = model.fit(x, np.array([0, 1]), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        assert all(np.isfinite(w).all() for w in model.get_weights().values())


# --- the noise --------------------------------------------------------------------------------------------------
def reference_normal(name: str, seed: int | None, step: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """The draws of onnxtrain/layers/_noise.py's docstring in numpy (float64): (n, *shape), channels last."""
    size = math.prod(shape)
    step_key = scramble(step % spec.P + spec.layer_key(name, seed), spec.STEP)
    row = (scramble(np.arange(n) + step_key, spec.ROW) % spec.Q)[:, None]
    h1, h2 = ((row + scramble(np.arange(s * size, (s + 1) * size), spec.LOCAL) % spec.Q) ** 2 % spec.P for s in (0, 1))
    u1, u2 = (h1 // 128 + 1) / 2.0**24, (h2 // 128) / 2.0**24
    return (np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)).reshape(n, *shape)


def test_the_noise_is_the_documented_function_of_seed_layer_step_and_element():
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 4, 5)).astype(np.float32)
    steps = [0, 7, 2**40 + 3]
    noisy = training_forward([GaussianNoise(0.3, seed=5)], x, steps)
    for step, y in zip(steps, noisy, strict=True):
        np.testing.assert_allclose(y, x + 0.3 * reference_normal("gaussian_noise_1", 5, step, 3, (4, 5)), atol=2e-6)
    (dropped,) = training_forward([GaussianDropout(0.2, name="g")], x, [4])
    factor = 1 + math.sqrt(0.2 / 0.8) * reference_normal("g", None, 4, 3, (4, 5))
    np.testing.assert_allclose(dropped, x * factor, rtol=1e-5, atol=2e-6)


def test_a_channels_first_input_gets_the_same_noise_as_a_channels_last_one():
    x = np.random.default_rng(1).normal(size=(4, 3, 5, 2)).astype(np.float32)
    for make in (lambda: GaussianNoise(0.5, name="n"), lambda: GaussianDropout(0.4, name="n")):
        (direct,) = training_forward([make()], x, [3])
        (after,) = training_forward([ToChannelsFirst(), make()], x, [3])
        np.testing.assert_allclose(after, direct, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "x_value", "mean", "variance"),
    [
        (GaussianNoise(0.5, name="noise"), 0.0, 0.0, 0.25),
        (GaussianDropout(0.3, name="noise"), 1.0, 1.0, 0.3 / 0.7),
    ],
    ids=["gaussian_noise", "gaussian_dropout"],
)
def test_training_noise_has_keras_mean_and_variance_and_is_normal(layer, x_value, mean, variance):
    n, d = 200, 500  # 10^5 draws: each statistic below within 5 of its standard errors
    x = np.full((n, d), x_value, np.float32)
    first, second, first_again = training_forward([layer], x, [0, 1, 0])
    count, sigma = first.size, math.sqrt(variance)
    for y in (first, second):
        assert abs(y.mean() - mean) < 5 * sigma / math.sqrt(count), y.mean()
        # the variance of a normal sample's variance is 2 sigma^4 / count
        assert abs(y.var() - variance) < 5 * variance * math.sqrt(2 / count), y.var()
        z = (y - mean) / sigma
        for k, inside in ((1, 0.682689), (2, 0.954500), (3, 0.997300)):  # a normal's mass within k sigma
            assert abs((np.abs(z) < k).mean() - inside) < 5 * math.sqrt(inside * (1 - inside) / count), k
    np.testing.assert_array_equal(first, first_again)  # the same step draws the same noise
    assert not np.allclose(first, second)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    bound = 5 / math.sqrt(count)
    assert abs(corr(first, second)) < bound  # consecutive steps
    assert abs(corr(first[:, :-1], first[:, 1:])) < bound  # neighbouring elements
    assert abs(corr(first[:-1], first[1:])) < bound  # the same element of neighbouring examples


@pytest.mark.parametrize("make", [lambda: GaussianNoise(0.5), lambda: GaussianDropout(0.4)], ids=["noise", "dropout"])
def test_a_model_with_noise_learns_and_predicts_without_it(make, blobs):
    x, y = blobs
    with Sequential.of(Input(4, 3), Flatten(), Dense(32), make(), Dense(3, activation="linear"), seed=2) as m:
        m.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
        losses = m.fit(x, y, epochs=6, batch_size=16, verbose=0).history["loss"]
        assert losses[-1] < 0.5 * losses[0], losses
        _, training_logits = m._trainer.engine.train_step(x[:16], y[:16])  # the step's forward adds noise
        _, eval_logits = m._trainer.engine.eval_step(x[:16], y[:16])
        weights = m.get_weights()
    hidden = np.maximum(x[:16].reshape(16, -1) @ weights["dense_1.kernel"] + weights["dense_1.bias"], 0)
    np.testing.assert_allclose(eval_logits, hidden @ weights["dense_2.kernel"] + weights["dense_2.bias"], atol=1e-4)
    assert not np.allclose(training_logits, eval_logits, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: GaussianNoise(0.5), lambda: GaussianDropout(0.5)], ids=["noise", "dropout"])
def test_a_resumed_run_draws_the_same_noise(make, tmp_path):
    check_resumed_fit_of_layer(make, tmp_path)


def test_zero_noise_emits_nothing():
    x = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
    for layer in (GaussianNoise(0.0), GaussianDropout(0.0)):
        (y,) = training_forward([layer], x, [0])
        np.testing.assert_array_equal(y, x)


@pytest.mark.training
@pytest.mark.parametrize("make", [lambda: GaussianNoise(0.5), lambda: GaussianDropout(0.4)], ids=["noise", "dropout"])
def test_ort_training_refuses_the_noise_layers_naming_the_portable_engine(make):
    with Sequential.of(Input(6), make(), Dense(3, activation="linear"), seed=1) as m:
        with pytest.raises(UnsupportedError, match=r"per training step.*portable engine"):
            m.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine="ort-training")


# --- configs and bad arguments ----------------------------------------------------------------------------------
def test_configs_use_keras_names_and_defaults():
    assert GroupNormalization().get_config() == {
        "groups": 32,
        "axis": -1,
        "epsilon": 1e-3,
        "center": True,
        "scale": True,
        "beta_initializer": {"name": "zeros"},
        "gamma_initializer": {"name": "ones"},
        "beta_regularizer": None,
        "gamma_regularizer": None,
        "name": None,
        "trainable": True,
    }
    assert UnitNormalization([1, 2]).get_config() == {"axis": [1, 2], "name": None, "trainable": True}
    assert GaussianNoise(0.1).get_config() == {"stddev": 0.1, "seed": None, "name": None, "trainable": True}
    assert GaussianDropout(0.1, seed=3).get_config() == {"rate": 0.1, "seed": 3, "name": None, "trainable": True}
    assert ZeroPadding1D().get_config()["padding"] == [1, 1]
    assert Cropping1D(2).get_config()["cropping"] == [2, 2]
    assert UpSampling1D().get_config()["size"] == 2
    config = Conv1DTranspose(4, 3).get_config()
    assert config["kernel_size"] == [3] and config["strides"] == [1] and config["output_padding"] is None


def test_keras_data_format_is_taken_where_keras_has_it():
    assert ZeroPadding1D(1, data_format="channels_last").padding == (1, 1)
    assert Conv1DTranspose(2, 3, data_format=None).filters == 2
    with pytest.raises(UnsupportedError, match=r"ZeroPadding1D\(data_format='channels_first'\) is not supported"):
        ZeroPadding1D(1, data_format="channels_first")
    with pytest.raises(InvalidTypeError, match=r"Cropping1D\(\) got an unexpected keyword argument 'data_format'"):
        Cropping1D(1, data_format="channels_last")  # Keras' Cropping1D has none either


BAD = [
    (
        lambda: GroupNormalization(0),
        InvalidArgumentError,
        r"GroupNormalization\(groups=...\) expects a positive int, or -1",
    ),
    (lambda: GroupNormalization(2.0), InvalidArgumentError, r"Received: groups=2.0"),
    (lambda: GroupNormalization(axis=[1]), InvalidArgumentError, r"GroupNormalization\(axis=...\) expects an int"),
    (lambda: GroupNormalization(epsilon=0), InvalidArgumentError, r"epsilon=...\) expects a number in \(0, inf\]"),
    (lambda: GroupNormalization(center=1), InvalidArgumentError, r"center"),
    (
        lambda: GroupNormalization(gamma_constraint="non_neg"),
        UnsupportedError,
        r"GroupNormalization\(gamma_constraint=...\) is not supported.*gamma_regularizer='l2'",
    ),
    (
        lambda: Sequential.of(Input(4, 6), GroupNormalization(groups=4)),
        ShapeError,
        r"groups=4, which does not divide the 6 channels of axis -1. Received: input shape \[None, 4, 6\]",
    ),
    (lambda: Sequential.of(Input(4, 6), GroupNormalization(2, axis=3)), ShapeError, r"got axis=3, which is no feature"),
    (lambda: UnitNormalization(axis="last"), InvalidArgumentError, r"UnitNormalization\(axis=...\) expects an int or"),
    (lambda: Sequential.of(Input(4, 6), UnitNormalization(axis=0)), ShapeError, r"got axis=0, which is no feature"),
    (lambda: Sequential.of(Input(4, 6), UnitNormalization(axis=[1, -2])), InvalidArgumentError, r"names an axis twice"),
    (lambda: GaussianNoise(1.5), InvalidArgumentError, r"GaussianNoise\(stddev=...\) expects a number in \[0, 1\]"),
    (lambda: GaussianNoise("0.1"), InvalidArgumentError, r"Received: stddev='0.1'"),
    (lambda: GaussianNoise(0.1, seed=-2), InvalidArgumentError, r"GaussianNoise\(seed=...\) expects None or an int"),
    (lambda: GaussianDropout(1.0), InvalidArgumentError, r"GaussianDropout\(rate=...\) expects a number in \[0, 1\)"),
    (lambda: GaussianDropout(0.1, seed=1.5), InvalidArgumentError, r"Received: seed=1.5"),
    (lambda: ZeroPadding1D(-1), InvalidArgumentError, r"ZeroPadding1D\(padding=...\) expects a non-negative int"),
    (lambda: ZeroPadding1D((1, 2, 3)), InvalidArgumentError, r"Received: padding=\(1, 2, 3\)"),
    (lambda: Cropping1D((1, -1)), InvalidArgumentError, r"Cropping1D\(cropping=...\).*Received: cropping=\(1, -1\)"),
    (
        lambda: UpSampling1D(0),
        InvalidArgumentError,
        r"UpSampling1D\(size=...\) expects a positive int. Received: size=0",
    ),
    (lambda: UpSampling1D(2.0), InvalidArgumentError, r"Received: size=2.0"),
    (
        lambda: Sequential.of(Input(4, 4, 2), ZeroPadding1D(1)),
        ShapeError,
        r"ZeroPadding1D layer 'zero_padding1d_1' expects sequences of shape \[None, steps, features\]",
    ),
    (lambda: Sequential.of(Input(3, 2), Cropping1D((2, 1))), ShapeError, r"leaves nothing of sequences of 3 steps"),
    (lambda: Sequential.of(Input(6), UpSampling1D()), ShapeError, r"expects sequences of shape"),
    (
        lambda: Conv1DTranspose(2, (3, 3)),
        InvalidArgumentError,
        r"Conv1DTranspose\(kernel_size=...\) expects a positive",
    ),
    (lambda: Conv1DTranspose(2, 3, strides=2, output_padding=2), InvalidArgumentError, r"below its stride \(2,\)"),
    (lambda: Sequential.of(Input(4, 4, 2), Conv1DTranspose(2, 3)), ShapeError, r"expects input of shape \[None, steps"),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
