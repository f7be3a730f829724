"""Keras 3's activations that `onnxtrain/_keras_activations.py` adds (celu, glu, hard_tanh, soft_shrink, sparse_plus,
squareplus, sparsemax, tanh_shrink, threshold, log_sigmoid, sparse_sigmoid) compute what Keras computes, forward
and gradient, on both engines (tests/data/keras/keras_activations.npz, by tools/keras_activation_fixtures.py: JAX's
gradient of Keras' function); Keras' layer configs naming them load; the ones that read the last (channels) axis
read a convolution's channels; bad arguments are refused naming them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Sequential, activations
from onnxtrain.activations import Celu, SoftShrink, Squareplus, Threshold
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.layers import Activation, Conv2D, Dense, Input, Layer
from onnxtrain.optimizers import SGD

META = json.loads((KERAS_FIXTURES / "keras_activations.json").read_text())["dense"]
with np.load(KERAS_FIXTURES / "keras_activations.npz") as _data:
    ARRAYS = dict(_data)
CASES = sorted(META)


def case(name: str) -> dict[str, np.ndarray]:
    return {key.split("/", 1)[1]: value for key, value in ARRAYS.items() if key.startswith(f"{name}/")}


def dense_model(name: str) -> tuple[Sequential, dict[str, np.ndarray]]:
    arrays = case(name)
    units = arrays["kernel"].shape[1]
    model = Sequential.of(Input(5), Dense(units, activation=META[name]["identifier"], name="dense"), seed=0)
    model.set_weights({"dense.kernel": arrays["kernel"], "dense.bias": arrays["bias"]})
    return model, arrays


def test_the_fixture_has_every_activation_keras_adds():
    names = {
        META[c]["identifier"] if isinstance(META[c]["identifier"], str) else META[c]["identifier"]["name"]
        for c in CASES
    }
    assert names == {
        "celu", "glu", "hard_tanh", "soft_shrink", "sparse_plus", "squareplus", "sparsemax", "tanh_shrink",
        "threshold", "log_sigmoid", "sparse_sigmoid",
    }  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_forward_matches_keras(name):
    model, arrays = dense_model(name)
    np.testing.assert_allclose(model.predict(arrays["x"]), arrays["y"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
@pytest.mark.parametrize("name", CASES)
def test_one_sgd_step_subtracts_keras_gradient(name, engine):
    # mean squared error of the activation's output; JAX differentiated Keras' function
    model, arrays = dense_model(name)
    model.compile(optimizer=SGD(learning_rate=1.0), loss="mse", engine=engine)
    model.train_on_batch(arrays["x"], arrays["target"])
    after = model.get_weights()
    np.testing.assert_allclose(arrays["kernel"] - after["dense.kernel"], arrays["d_kernel"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(arrays["bias"] - after["dense.bias"], arrays["d_bias"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", [c for c in CASES if META[c]["dense_config"] is not None])
def test_a_keras_dense_config_naming_it_loads(name):
    config = META[name]["dense_config"]
    layer = Layer.from_config(config)
    assert layer.activation == activations.get(config["config"]["activation"])
    assert layer.activation.name == config["config"]["activation"]


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_log_sigmoid_trains_with_its_exact_gradient_at_zero_and_far_out(engine):
    # the bias of each unit is the pre-activation z; a residual of 1.5 on 3 outputs makes the step f'(z) = sigmoid(-z)
    z = np.array([0.0, 100.0, -100.0], np.float32)
    model = Sequential.of(Input(1), Dense(3, activation="log_sigmoid", name="dense"), seed=0)
    model.set_weights({"dense.kernel": np.zeros((1, 3), np.float32), "dense.bias": z})
    forward = -np.logaddexp(0.0, -z.astype(np.float64))
    np.testing.assert_allclose(model.predict(np.ones((1, 1), np.float32))[0], forward, rtol=1e-6, atol=1e-6)
    model.compile(optimizer=SGD(learning_rate=1.0), loss="mse", engine=engine)
    model.train_on_batch(np.ones((1, 1), np.float32), (forward - 1.5)[None].astype(np.float32))
    step = z - model.get_weights()["dense.bias"]
    np.testing.assert_allclose(step, 1.0 / (1.0 + np.exp(z.astype(np.float64))), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "activation",
    [
        Celu(0.5),
        SoftShrink(1.0),
        Squareplus(1.0),
        Threshold(0.2, -1.0),
        *(activations.get(n) for n in ("glu", "sparsemax")),
    ],
    ids=str,
)
def test_the_config_round_trips(activation):
    assert activations.get(activation.get_config()) == activation


def test_names_without_underscores_are_aliases():
    for alias, name in [("HardTanh", "hard_tanh"), ("softshrink", "soft_shrink"), ("Tanhshrink", "tanh_shrink")]:
        assert activations.get(alias).name == name
    assert activations.get("LogSigmoid").name == "log_sigmoid"


def test_glu_halves_the_last_axis_in_the_model_shapes():
    model = Sequential.of(Input(5), Dense(8, activation="glu"), Dense(3, activation="linear"), seed=0)
    assert model.layers[1].output_shape == (4,)
    assert model.layers[2].params["kernel"].shape == (4, 3)
    assert Sequential.of(Input(3, 6), Activation("glu"), seed=0).layers[1].output_shape == (3, 3)


# --- along the channels of a convolution's output (channels first in the graph) ----------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sparsemax(z: np.ndarray) -> np.ndarray:
    ordered = -np.sort(-z, axis=-1)
    running = np.cumsum(ordered, axis=-1)
    rank = np.arange(1, z.shape[-1] + 1)
    support = ordered - (running - 1) / rank > 0
    tau = ((running * support).sum(-1, keepdims=True) - 1) / support.sum(-1, keepdims=True)
    return np.maximum(z - tau, 0)


def _glu(z: np.ndarray) -> np.ndarray:
    a, b = np.split(z, 2, axis=-1)
    return a / (1 + np.exp(-b))


CHANNELS = {"log_softmax": lambda z: np.log(_softmax(z)), "sparsemax": _sparsemax, "glu": _glu}
X = np.random.default_rng(3).normal(size=(2, 4, 5, 3)).astype(np.float32)


def _convolution_outputs(model: Sequential) -> np.ndarray:
    linear = Sequential.of(Input(4, 5, 3), Conv2D(4, 1, activation="linear", name="conv"), seed=0)
    linear.set_weights({k: v for k, v in model.get_weights().items() if k.startswith("conv.")})
    return linear.predict(X)


@pytest.mark.parametrize("name", ["log_softmax", "sparsemax"])
def test_a_convolutions_activation_reads_its_channels(name):
    model = Sequential.of(Input(4, 5, 3), Conv2D(4, 1, activation=name, name="conv"), seed=0)
    np.testing.assert_allclose(model.predict(X), CHANNELS[name](_convolution_outputs(model)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_an_activation_layer_after_a_convolution_reads_its_channels(name):
    model = Sequential.of(Input(4, 5, 3), Conv2D(4, 1, activation="linear", name="conv"), Activation(name), seed=0)
    np.testing.assert_allclose(model.predict(X), CHANNELS[name](_convolution_outputs(model)), rtol=1e-5, atol=1e-6)


def test_sparsemax_over_a_convolutions_channels_trains_as_after_it():
    # axis 1 of the channels-first graph (CumSum) against the last axis of the channels-last one (MatMul)
    y = np.random.default_rng(4).normal(size=(2, 4, 5, 4)).astype(np.float32)
    steps = []
    for layers in (
        [Conv2D(4, 1, activation="sparsemax", name="conv")],
        [Conv2D(4, 1, activation="linear", name="conv"), Activation("sparsemax")],
    ):
        model = Sequential.of(Input(4, 5, 3), *layers, seed=0)
        model.compile(optimizer=SGD(learning_rate=1.0), loss="mse", engine="portable")
        model.train_on_batch(X, y)
        steps.append(model.get_weights())
    for name in ("conv.kernel", "conv.bias"):
        np.testing.assert_allclose(steps[0][name], steps[1][name], rtol=1e-5, atol=1e-6)


# --- bad arguments --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Celu(alpha=0), InvalidArgumentError, r"^Celu\(alpha=\.\.\.\) expects a finite number other than 0\."),
        (lambda: Celu(alpha=float("inf")), InvalidArgumentError, r"Received: alpha=inf$"),
        (
            lambda: SoftShrink(-0.5),
            InvalidArgumentError,
            r"^SoftShrink\(threshold=\.\.\.\) expects a finite number >= 0",
        ),
        (lambda: Squareplus(b=0), InvalidArgumentError, r"^Squareplus\(b=\.\.\.\) .* > 0 \(b=0 is relu: use 'relu'\)"),
        (
            lambda: activations.get("threshold"),
            InvalidArgumentError,
            r"^Threshold expects threshold=\.\.\. and default_value=\.\.\. \(Keras' threshold activation has no "
            r"defaults\), e\.g\. \{'name': 'threshold', 'threshold': 0\.0, 'default_value': 0\.0\}",
        ),
        (lambda: Threshold(0.0, "x"), InvalidArgumentError, r"Received: default_value='x'$"),
        (lambda: activations.get({"name": "glu", "axis": 1}), InvalidArgumentError, r"unknown key\(s\) \['axis'\]"),
        (
            lambda: Sequential.of(Input(5), Dense(7, activation="glu"), seed=0),
            ShapeError,
            r"glu activation splits the last axis into two halves, so it expects an even size there\. Received: an "
            r"input of shape \(None, 7\)",
        ),
        (
            lambda: Sequential.of(Input(4, 5, 3), Conv2D(4, 1, activation="glu"), seed=0).predict(X),
            UnsupportedError,
            r"not a convolution's activation\. Give the convolution activation='linear' and follow it with "
            r"Activation\('glu'\)",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_them(make: Any, error: type, message: str):
    with pytest.raises(error, match=message):
        make()
