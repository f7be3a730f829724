"""Rescaling and Normalization through the layer harness (numpy references, Keras fixtures, training on both
engines), Normalization.adapt against numpy, its statistics left alone by training, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from layer_gradients import check_input_gradient
from layer_harness import LayerCase, forward, table_tests

from onnxtrain import InferenceModel, Model, Sequential
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import Dense, Flatten, Input, Layer, Normalization, Rescaling

MEAN, VARIANCE = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 0.25])


def normalized(layer: Normalization, x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    std = np.maximum(np.sqrt(variance), 1e-7)
    return mean + x * std if layer.invert else (x - mean) / std


def adapted(layer: Layer, x: np.ndarray) -> np.ndarray:
    mean, variance = layer.params["mean"], layer.params["variance"]
    if layer.axis == (1,):  # statistics per row: (rows,) broadcast as (rows, 1)
        mean, variance = mean[:, None], variance[:, None]
    return normalized(layer, x, mean, variance)


def statistics(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"mean": weights[0], "variance": weights[1]}  # Keras' third weight, `count`, has no use here


def with_statistics(make, shape):
    """Build the layer with random adapted statistics, as the Keras fixture's weights are."""

    def made() -> Normalization:
        layer = make()
        rng = np.random.default_rng(3)
        layer.adapt(rng.normal(1.0, 2.0, size=(50, *shape)))
        return layer

    return made


CASES = [
    LayerCase("rescaling", lambda: Rescaling(0.5, offset=-1.0), (4,), (4,), 0, lambda _, x: x * 0.5 - 1.0),
    LayerCase(
        "rescaling_per_channel",
        lambda: Rescaling([0.5, 2.0, -1.0], offset=[0.0, 1.0, 0.5]),
        (2, 3),
        (2, 3),
        0,
        lambda _, x: x * [0.5, 2.0, -1.0] + [0.0, 1.0, 0.5],
    ),
    LayerCase(
        "normalization_given",
        lambda: Normalization(mean=MEAN, variance=VARIANCE),
        (3,),
        (3,),
        0,
        lambda layer, x: normalized(layer, x, MEAN, VARIANCE),
    ),
    LayerCase(
        "normalization_given_invert",
        lambda: Normalization(mean=list(MEAN), variance=list(VARIANCE), invert=True),
        (2, 3),
        (2, 3),
        0,
        lambda layer, x: normalized(layer, x, MEAN, VARIANCE),
    ),
    LayerCase(
        "normalization_scalar",
        lambda: Normalization(axis=None, mean=0.5, variance=2.0),
        (2, 3),
        (2, 3),
        0,
        lambda layer, x: normalized(layer, x, np.array(0.5), np.array(2.0)),
    ),
    # The statistics are weights no optimizer updates: the harness' training run checks only that the loss stays
    # finite (test_normalization_statistics_stay_fixed_while_the_model_trains checks the rest).
    LayerCase(
        "normalization_adapted",
        with_statistics(lambda: Normalization(), (4, 3)),
        (4, 3),
        (4, 3),
        6,
        adapted,
        statistics,
        trains=False,
    ),
    LayerCase(
        "normalization_adapted_axis1",
        with_statistics(lambda: Normalization(axis=1), (4, 3)),
        (4, 3),
        (4, 3),
        8,
        adapted,
        statistics,
        trains=False,
    ),
]


test_layer_forward_matches_numpy_and_keras, test_layer_trains_and_exports = table_tests(CASES)


@pytest.mark.parametrize(
    ("axis", "reduced"), [(-1, (0, 1)), (1, (0, 2)), ((1, 2), (0,)), (None, (0, 1, 2)), (-2, (0, 2))]
)
def test_adapt_computes_numpys_mean_and_variance(axis, reduced):
    data = np.random.default_rng(0).normal(2.0, 3.0, size=(40, 4, 3))
    layer = Normalization(axis=axis)
    layer.adapt(data)
    Sequential.of(Input(4, 3), layer)
    np.testing.assert_allclose(layer.params["mean"], data.mean(axis=reduced), rtol=1e-6)
    np.testing.assert_allclose(layer.params["variance"], data.var(axis=reduced), rtol=1e-6)
    assert layer.non_trainable == {"mean", "variance"} and layer.trainable_param_count == 0


def test_adapt_takes_batches_and_a_built_layer():
    data = np.random.default_rng(1).uniform(-5, 5, size=(70, 3)).astype(np.float32)
    model = Sequential.of(Input(3), Normalization())
    layer = model.layers[1]
    layer.adapt(data[i : i + 16] for i in range(0, 70, 16))  # the last batch is short: the weights still count
    np.testing.assert_allclose(layer.params["mean"], data.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.params["variance"], data.var(axis=0), rtol=1e-5)
    y = forward(model, data)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1.0, rtol=1e-5)


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_normalization_statistics_stay_fixed_while_the_model_trains(engine, tmp_path, blobs):
    x, y = blobs
    norm = Normalization()
    norm.adapt(x)
    before = dict(norm.params)
    with Sequential.of(Input(4, 3), norm, Flatten(), Dense(3, activation="linear"), seed=0) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine=engine)
        losses = model.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"]
        assert losses[-1] < losses[0]
        weights = model.get_weights()
        model.export(tmp_path / "model.onnx")
        expected = model.predict_softly(x)
    for local, value in before.items():
        np.testing.assert_array_equal(weights[f"normalization_1.{local}"], value)
    np.testing.assert_allclose(InferenceModel.load(tmp_path / "model.onnx").predict_softly(x), expected, atol=1e-6)


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_adapt_after_compile_reaches_the_compiled_model_at_once(engine, tmp_path):
    # Keras' regression tutorial adapts "somewhere before fit", often after compile: the statistics apply at once.
    x = (np.random.default_rng(0).normal(size=(200, 1)) * 30 + 100).astype(np.float32)
    norm = Normalization()
    dense = Dense(1, activation="linear", kernel_initializer="ones", bias_initializer="zeros")
    model = Sequential([Input(1), norm, dense], seed=0)
    model.compile(optimizer="adam", loss="mse", engine=engine)
    model.predict(x[:3])  # a predictions session exists: it must not keep the old statistics
    norm.adapt(x)
    expected = (x[:3] - x.mean()) / x.std()
    np.testing.assert_allclose(model.predict(x[:3]), expected, rtol=1e-5)
    stored = model.get_weights()
    np.testing.assert_allclose(stored["normalization_1.mean"], [x.mean()], rtol=1e-6)
    np.testing.assert_allclose(stored["normalization_1.variance"], [x.var()], rtol=1e-5)
    model.fit(x, np.zeros(200), epochs=1, verbose=0)
    np.testing.assert_allclose(model.get_weights()["normalization_1.mean"], [x.mean()], rtol=1e-6)
    model.compile(optimizer="adam", loss="mse", engine=engine)  # a new compile keeps them too
    np.testing.assert_allclose(model.get_weights()["normalization_1.variance"], [x.var()], rtol=1e-5)
    model.export(tmp_path / "model.onnx")
    exported = InferenceModel.load(tmp_path / "model.onnx").predict(x[:3])
    np.testing.assert_allclose(exported, model.predict(x[:3]), rtol=1e-6)
    model.close()


def test_adapt_reaches_the_compiled_model_a_normalizing_model_is_nested_in():
    x = np.random.default_rng(1).normal(5.0, 2.0, size=(64, 3)).astype(np.float32)
    inp = Input(3)
    norm = Normalization()
    encoder = Model(inp, norm(inp), name="encoder")
    outer = Input(3)
    full = Model(outer, Dense(2, activation="linear")(encoder(outer)), seed=0)
    full.compile(optimizer="adam", loss="mse")
    norm.adapt(x)
    np.testing.assert_allclose(full.get_weights()["encoder.normalization_1.mean"], x.mean(axis=0), rtol=1e-5)
    full.close()


def test_normalization_config_round_trips_given_statistics():
    layer = Normalization(axis=(1, 2), mean=[[1.0, 2.0]], variance=[[3.0, 4.0]], invert=True)
    config = layer.get_config()
    assert config == {
        "axis": [1, 2],
        "mean": [[1.0, 2.0]],
        "variance": [[3.0, 4.0]],
        "invert": True,
        "name": None,
        "trainable": True,
    }
    assert Layer.from_config(layer.serialize()).get_config() == config
    assert Normalization().get_config()["mean"] is None  # adapted statistics are weights, not config


BAD_LAYERS = [
    (lambda: Rescaling("x"), InvalidArgumentError, r"Rescaling\(scale=...\) expects a finite number.*scale='x'"),
    (lambda: Rescaling(1.0, offset=np.inf), InvalidArgumentError, r"Rescaling\(offset=...\).*offset=inf"),
    (
        lambda: Sequential.of(Input(2, 3), Rescaling([1.0, 2.0])),
        ShapeError,
        r"scale of shape \(2,\).*do not broadcast against examples of shape \[None, 2, 3\]",
    ),
    (lambda: Normalization(mean=1.0), InvalidArgumentError, r"expects both mean and variance, or neither"),
    (lambda: Normalization(axis="x"), InvalidArgumentError, r"Normalization\(axis=...\) expects an int.*axis='x'"),
    (lambda: Normalization(mean=[1.0, 2.0], variance=[1.0]), InvalidArgumentError, r"of the same shape"),
    (lambda: Normalization(mean=[1.0], variance=[-1.0]), InvalidArgumentError, r"expects variance >= 0"),
    (lambda: Normalization(invert=1), InvalidArgumentError, r"Normalization\(invert=...\) expects a bool"),
    (lambda: Sequential.of(Input(3), Normalization(axis=0)), ShapeError, r"other than the batch axis 0"),
    (
        lambda: Sequential.of(Input(3), Normalization(mean=[1.0, 2.0], variance=[1.0, 1.0])),
        ShapeError,
        r"mean and variance of shape \(2,\), which do not match the axes \(-1,\) of input \[None, 3\]",
    ),
    (
        lambda: Normalization(mean=[1.0], variance=[1.0]).adapt(np.ones((4, 1))),
        InvalidArgumentError,
        r"was given mean and variance; adapt computes them",
    ),
    (lambda: Normalization().adapt(np.ones((0, 3))), InvalidArgumentError, r"expects at least one example"),
    (lambda: Normalization().adapt(np.array([1.0, np.nan])), InvalidArgumentError, r"batches of finite numbers"),
    (lambda: Normalization().adapt([np.ones((2, 3)), np.ones((2, 4))]), ShapeError, r"one example shape"),
    (
        lambda: Normalization().adapt(np.arange(10.0)),
        ShapeError,
        r"^Normalization.adapt of Normalization layer with axis=\(-1,\) expects examples with those axes.*"
        r"Received: data of shape \(10,\), one number per example. Use Normalization\(axis=None\).*x\[:, None\]",
    ),
    (
        lambda: Sequential.of(Input(3), Normalization(axis=2)),
        ShapeError,
        r"Normalization layer 'normalization_1' with axis=\(2,\) expects axes of its input other than the batch "
        r"axis 0: in 1..1 or -1..-1. Received: input shape \[None, 3\]",
    ),
    (
        lambda: Sequential.of(Input(4), _adapted_to(np.ones((5, 3)))),
        ShapeError,
        r"was adapted to data whose axes \(-1,\) have sizes \(3,\); the model gives it input \[None, 4\]",
    ),
    (
        lambda: Sequential.of(Input(4), Normalization()).layers[1].adapt(np.ones((5, 3))),
        ShapeError,
        r"takes examples of shape \[None, 4\]. Received: data of examples of shape \[None, 3\]",
    ),
]


def _adapted_to(data: np.ndarray) -> Normalization:
    layer = Normalization()
    layer.adapt(data)
    return layer


@pytest.mark.parametrize(("factory", "error", "message"), BAD_LAYERS)
def test_bad_preprocessing_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient_through_the_layer_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)
