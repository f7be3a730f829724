"""Every activation: ORT forward equals numpy, and ORT training's gradient equals finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref

from onnxtrain import Sequential, activations
from onnxtrain.activations import Activations, Elu, Gelu, HardShrink, LeakyRelu, Snake
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError, UnsupportedError
from onnxtrain.layers import Activation, Dense, Input
from onnxtrain.optimizers import SGD

NAMES = sorted(ref.ACTIVATIONS)
# Activations whose ONNX operator ONNX Runtime 1.19's training build cannot differentiate: the ort-training engine
# refuses them by name (the portable engine trains them: tests/test_portable_gradients.py).
ORT_TRAINING_REFUSES = {
    "hard_sigmoid": "HardSigmoid",
    "hard_silu": "HardSigmoid",
    "mish": "Softplus",
    "softplus": "Softplus",
    "softsign": "Softsign",
}


def model_with(activation: str) -> Sequential:
    return Sequential.of(Input(5), Dense(4, activation=activation), Dense(3, activation="linear"), seed=11)


def numpy_loss(weights, x, y, activation: str) -> float:
    h = ref.ACTIVATIONS[activation](x.astype(np.float64) @ weights["dense_1.kernel"] + weights["dense_1.bias"])
    z = h @ weights["dense_2.kernel"] + weights["dense_2.bias"]
    p = ref.softmax(z)
    return float(-np.log(p[np.arange(len(y)), y]).mean())


@pytest.mark.parametrize("name", NAMES)
def test_activation_forward_matches_numpy(name):
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    with model_with(name) as model:
        model.compile(optimizer="sgd", loss="mse")
        outputs = model.predict(x)
        w = model.get_weights()
    h = ref.ACTIVATIONS[name](x.astype(np.float64) @ w["dense_1.kernel"] + w["dense_1.bias"])
    np.testing.assert_allclose(outputs, h @ w["dense_2.kernel"] + w["dense_2.bias"], rtol=1e-4, atol=1e-5)


@pytest.mark.training
@pytest.mark.parametrize("name", sorted(ORT_TRAINING_REFUSES))
def test_ort_training_refuses_an_activation_it_cannot_differentiate_by_its_operator(name):
    with (
        model_with(name) as model,
        pytest.raises(UnsupportedError, match=rf"no gradient for the {ORT_TRAINING_REFUSES[name]} operator"),
    ):
        model.compile(optimizer="sgd", loss="mse", engine="ort-training")


@pytest.mark.training
@pytest.mark.parametrize("name", [name for name in NAMES if name not in ORT_TRAINING_REFUSES])
def test_activation_gradient_matches_finite_differences(name):
    # ONNX Runtime training's gradient graph; the portable engine's (autodiff) is checked in test_portable_gradients
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 5)).astype(np.float32), rng.integers(0, 3, 6)
    with model_with(name) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits", engine="ort-training")
        weights = {k: v.astype(np.float64) for k, v in model.get_weights().items()}
        engine = model._trainer.engine
        engine._module(x, y)
        grad = engine._state.parameters["dense_1.kernel"].grad
    numeric = np.zeros_like(weights["dense_1.kernel"])
    eps = 1e-6
    for index in np.ndindex(numeric.shape):
        plus = {**weights, "dense_1.kernel": weights["dense_1.kernel"].copy()}
        minus = {**weights, "dense_1.kernel": weights["dense_1.kernel"].copy()}
        plus["dense_1.kernel"][index] += eps
        minus["dense_1.kernel"][index] -= eps
        numeric[index] = (numpy_loss(plus, x, y, name) - numpy_loss(minus, x, y, name)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=2e-3, atol=2e-5)


def test_registry_accepts_names_enums_configs_and_instances():
    assert activations.get("ReLU").name == "relu"
    assert activations.get(Activations.LeakyRelu) == LeakyRelu()
    assert activations.get({"name": "leaky_relu", "alpha": 0.1}) == LeakyRelu(0.1)
    assert activations.get(None).name == "linear"
    assert activations.get("silu").name == "swish"
    assert activations.get("hard_swish").name == activations.get("HardSilu").name == "hard_silu"
    gelu = Gelu(approximate=True)
    assert activations.get(gelu.get_config()) == gelu


@pytest.mark.parametrize("bad", ["relux", "", 3, ["relu"]])
def test_registry_rejects_unknown_activations_listing_valid_names(bad):
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret activation.*"):
        activations.get(bad)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LeakyRelu(alpha=float("nan")), r"LeakyRelu\(alpha=...\) expects a finite number.*Received: alpha=nan"),
        (lambda: LeakyRelu(alpha="x"), r"LeakyRelu\(alpha=...\) expects a finite number.*Received: alpha='x'"),
        (lambda: LeakyRelu(alpha=True), r"Received: alpha=True"),
        (lambda: LeakyRelu(alpha=1e39), r"within float32 range.*Received: alpha=1e\+39"),
        (lambda: Elu(alpha=-float("inf")), r"Elu\(alpha=...\) expects a finite number.*Received: alpha=-inf"),
        (lambda: Gelu(approximate="yes"), r"Gelu\(approximate=...\) expects a bool.*Received: approximate='yes'"),
        (lambda: Gelu(approximate=1), r"Received: approximate=1"),
        (lambda: activations.get({"name": "elu", "alpha": None}), r"Received: alpha=None"),
    ],
)
def test_bad_activation_arguments_fail_at_construction(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_numpy_scalar_arguments_are_stored_as_python_values():
    alpha = LeakyRelu(np.float32(0.5)).alpha
    assert type(alpha) is float and alpha == 0.5
    assert Elu(np.int64(2)).alpha == 2.0 and type(Elu(np.int64(2)).alpha) is float
    assert Gelu(np.True_).approximate is True


# --- KotlinDL's Activations members ----------------------------------------------------------------------
KOTLINDL_ACTIVATIONS = {  # KotlinDL's enum (Activations.kt), in its order: the activation each member gives here
    "Linear": "linear",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Relu": "relu",
    "Relu6": "relu6",
    "Elu": "elu",
    "Selu": "selu",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Exponential": "exponential",
    "SoftPlus": "softplus",
    "SoftSign": "softsign",
    "HardSigmoid": "hard_sigmoid",
    "Swish": "swish",
    "Mish": "mish",
    "HardShrink": "hard_shrink",
    "Gelu": "gelu",
    "LiSHT": "lisht",
    "Snake": "snake",
}


@pytest.mark.parametrize(("member", "name"), KOTLINDL_ACTIVATIONS.items())
def test_every_member_of_kotlindls_activations_enum_names_an_activation(member, name):
    assert activations.get(getattr(Activations, member)).name == name


def test_hard_sigmoid_is_keras_3s_not_kotlindls():
    # Keras 3: clip(x / 6 + 0.5, 0, 1); KotlinDL computes 0.2 x + 0.5 unclipped (its docs: Keras 2's clip of it).
    x = np.array([[-4.0, -1.0, 0.0, 1.0, 4.0]], np.float32)
    with Sequential.of(Input(5), Activation(Activations.HardSigmoid), seed=0) as model:
        model.compile(optimizer="sgd", loss="mse")
        np.testing.assert_allclose(model.predict(x), np.clip(x / 6 + 0.5, 0, 1), rtol=1e-6)


# KotlinDL's new activations, from its formulas, at its defaults and at other arguments
KOTLINDL_NEW = [
    ("hard_shrink", lambda x: np.where((x < -0.5) | (x > 0.5), x, 0.0)),
    (HardShrink(lower=-1.0, upper=0.25), lambda x: np.where((x < -1.0) | (x > 0.25), x, 0.0)),
    ("lisht", lambda x: x * np.tanh(x)),
    ("snake", lambda x: x + (1 - np.cos(2 * x)) / 2),
    (Snake(frequency=0.5), lambda x: x + (1 - np.cos(x)) / 1.0),
]
NEW_IDS = [str(getattr(a, "name", a)) + ("" if isinstance(a, str) else "_args") for a, _ in KOTLINDL_NEW]


def kotlindl_model(activation) -> Sequential:
    return Sequential.of(Input(5), Dense(4, activation=activation), Dense(3, activation="linear"), seed=11)


def kotlindl_loss(weights, x, y, formula) -> float:
    h = formula(x.astype(np.float64) @ weights["dense_1.kernel"] + weights["dense_1.bias"])
    p = ref.softmax(h @ weights["dense_2.kernel"] + weights["dense_2.bias"])
    return float(-np.log(p[np.arange(len(y)), y]).mean())


@pytest.mark.parametrize(("activation", "formula"), KOTLINDL_NEW, ids=NEW_IDS)
def test_kotlindls_new_activations_match_numpy(activation, formula):
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    with kotlindl_model(activation) as model:
        model.compile(optimizer="sgd", loss="mse")
        outputs = model.predict(x)
        w = model.get_weights()
    h = formula(x.astype(np.float64) @ w["dense_1.kernel"] + w["dense_1.bias"])
    np.testing.assert_allclose(outputs, h @ w["dense_2.kernel"] + w["dense_2.bias"], rtol=1e-4, atol=1e-5)


def kotlindl_gradient_check(activation, formula, engine: str) -> None:
    """One SGD(learning_rate=1) step (w - g) against central differences of the numpy loss, in float64."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 5)).astype(np.float32), rng.integers(0, 3, 6)
    with kotlindl_model(activation) as model:
        before = {k: v.astype(np.float64) for k, v in model.get_weights().items()}
        pre = x.astype(np.float64) @ before["dense_1.kernel"] + before["dense_1.bias"]
        assert min(np.abs(pre - step).min() for step in (-1.0, -0.5, 0.25, 0.5)) > 1e-3  # off HardShrink's steps
        model.compile(optimizer=SGD(learning_rate=1.0), loss="softmax_cross_entropy_with_logits", engine=engine)
        model.fit(x, y, epochs=1, batch_size=6, shuffle=False, verbose=0)
        after = model.get_weights()
    for name in ("dense_1.kernel", "dense_1.bias"):
        numeric = np.zeros_like(before[name])
        for index in np.ndindex(numeric.shape):
            shifted = [{**before, name: before[name].copy()} for _ in range(2)]
            shifted[0][name][index] += 1e-6
            shifted[1][name][index] -= 1e-6
            numeric[index] = (
                kotlindl_loss(shifted[0], x, y, formula) - kotlindl_loss(shifted[1], x, y, formula)
            ) / 2e-6
        np.testing.assert_allclose(before[name] - after[name], numeric, rtol=2e-3, atol=2e-5, err_msg=name)


@pytest.mark.parametrize(("activation", "formula"), KOTLINDL_NEW, ids=NEW_IDS)
def test_kotlindls_new_activations_gradient_matches_finite_differences(activation, formula):
    kotlindl_gradient_check(activation, formula, "portable")


@pytest.mark.training
@pytest.mark.parametrize(("activation", "formula"), KOTLINDL_NEW, ids=NEW_IDS)
def test_kotlindls_new_activations_train_on_ort_training_too(activation, formula):
    kotlindl_gradient_check(activation, formula, "ort-training")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: HardShrink(lower=0.5, upper=-0.5),
            r"HardShrink expects lower < upper\. Received: lower=0\.5, upper=-0\.5",
        ),
        (
            lambda: HardShrink(lower=float("nan")),
            r"HardShrink\(lower=...\) expects a finite number.*Received: lower=nan",
        ),
        (lambda: HardShrink(upper="1"), r"HardShrink\(upper=...\) expects a finite number.*Received: upper='1'"),
        (
            lambda: Snake(frequency=0),
            r"Snake\(frequency=...\) expects a positive finite number\. Received: frequency=0",
        ),
        (lambda: Snake(frequency=math.inf), r"Received: frequency=inf"),
        (lambda: activations.get({"name": "snake", "frequency": -1.0}), r"Received: frequency=-1\.0"),
    ],
)
def test_kotlindls_new_activations_reject_bad_arguments(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_kotlindls_new_activations_round_trip_their_config():
    for activation in (HardShrink(-1.0, 0.25), Snake(0.5), activations.get("lisht"), activations.get("HardShrink")):
        assert activations.get(activation.get_config()) == activation
    assert activations.get("hardshrink") == HardShrink()
