"""Weight regularizers: the registry, the penalty added to the loss of training and evaluation (never to the export),
and its gradient in one SGD step against numpy on both engines (PReLU's and Embedding's: in their layer tests)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential, emit, regularizers
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input, Layer
from onnxtrain.losses import SoftmaxCrossEntropyWithLogits
from onnxtrain.optimizers import SGD
from onnxtrain.regularizers import L1, L1L2, L2

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype(np.float32)
Y = RNG.normal(size=(8, 2)).astype(np.float32)
LR = 0.1


def numpy_step(kernel, bias, kernel_grad_penalty, bias_grad_penalty):
    """One SGD step of mean squared error, with the penalties' gradients added."""
    error = X @ kernel + bias - Y
    kernel_grad = 2 * X.T @ error / error.size + kernel_grad_penalty(kernel)
    bias_grad = 2 * error.sum(axis=0) / error.size + bias_grad_penalty(bias)
    return kernel - LR * kernel_grad, bias - LR * bias_grad


PENALTIES = [  # (kernel regularizer, its gradient)
    (L2(0.1), lambda w: 2 * 0.1 * w),
    (L1(0.05), lambda w: 0.05 * np.sign(w)),
    (L1L2(l1=0.05, l2=0.1), lambda w: 0.05 * np.sign(w) + 2 * 0.1 * w),
    ("l2", lambda w: 2 * 0.01 * w),
]


@pytest.mark.parametrize(("regularizer", "gradient"), PENALTIES, ids=["l2", "l1", "l1_l2", "l2_by_name"])
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_penalty_is_in_the_loss_and_its_gradient_in_the_step(regularizer, gradient, engine):
    model = Sequential.of(
        Input(3), Dense(2, activation="linear", kernel_regularizer=regularizer, bias_regularizer=L2(0.3)), seed=1
    )
    with model:
        model.compile(optimizer=SGD(learning_rate=LR), loss="mse", engine=engine)
        weights = model.get_weights()
        kernel, bias = (weights[f"dense_1.{k}"].astype(np.float64) for k in ("kernel", "bias"))
        data_loss = np.mean((X @ kernel + bias - Y) ** 2)
        penalty = regularizers.get(regularizer)(kernel) + L2(0.3)(bias)
        # Keras reports the loss with the penalties, in fit and in evaluate.
        assert model.evaluate(X, Y, batch_size=8, verbose=0).loss == pytest.approx(data_loss + penalty, rel=1e-5)
        history = model.fit(X, Y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        assert history.history["loss"][0] == pytest.approx(data_loss + penalty, rel=1e-5)
        expected_kernel, expected_bias = numpy_step(kernel, bias, gradient, lambda b: 2 * 0.3 * b)
        after = model.get_weights()
    np.testing.assert_allclose(after["dense_1.kernel"], expected_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after["dense_1.bias"], expected_bias, rtol=1e-5, atol=1e-6)


def test_export_holds_no_penalty():
    model = Sequential.of(Input(3), Dense(2, kernel_regularizer="l2", bias_regularizer="l1"), seed=1)
    exported = emit.inference_graph(model.layers)
    training = emit.loss_model(model.layers, SoftmaxCrossEntropyWithLogits())
    assert not [n for n in exported.graph.node if "penalty" in n.output[0]]
    penalties = {n.output[0] for n in training.graph.node if n.output[0].endswith("_penalty")}
    assert penalties == {"dense_1.l2_penalty", "dense_1.l1_penalty", "loss.loss_with_penalty"}


def test_frozen_layer_adds_no_penalty():
    # Keras only regularizes trainable weights.
    model = Sequential.of(Input(3), Dense(2, kernel_regularizer=L2(1.0), trainable=False), Dense(2), seed=1)
    nodes = emit.loss_model(model.layers, SoftmaxCrossEntropyWithLogits()).graph.node
    assert not [n for n in nodes if "penalty" in n.output[0]]


def test_registry_and_config_round_trip():
    assert regularizers.get(None) is None
    assert regularizers.get("l2") == L2(0.01)
    assert regularizers.get("L1") == L1(0.01)
    assert regularizers.get("L1L2") == regularizers.get("l1l2") == L1L2()
    assert regularizers.get(L2) == L2()
    assert regularizers.get({"name": "l1_l2", "l1": 0.1, "l2": 0.2}) == L1L2(0.1, 0.2)
    assert L1L2(0.1, 0.2).get_config() == {"name": "l1_l2", "l1": 0.1, "l2": 0.2}
    layer = Dense(3, kernel_regularizer=L2(0.001), bias_regularizer="l1")
    config = layer.get_config()
    assert config["kernel_regularizer"] == {"name": "l2", "l2": 0.001}
    assert config["bias_regularizer"] == {"name": "l1", "l1": 0.01}
    assert Layer.from_config(layer.serialize()).get_config() == config
    assert "kernel_regularizer" not in Dense(3).get_config()  # configs written before regularizers are unchanged


def test_numpy_penalties():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert L1(0.1)(w) == pytest.approx(0.35)
    assert L2(0.1)(w) == pytest.approx(0.525)
    assert L1L2(0.1, 0.1)(w) == pytest.approx(0.875)


BAD = [
    (lambda: regularizers.get("l3"), UnknownIdentifierError, r"Could not interpret regularizer 'l3'. Valid names"),
    (lambda: L2(-0.1), InvalidArgumentError, r"L2\(l2=...\) expects a non-negative finite number.*l2=-0.1"),
    (lambda: L1("0.1"), InvalidArgumentError, r"Received: l1='0.1'"),
    (lambda: L1L2(l2=float("nan")), InvalidArgumentError, r"L1L2\(l2=...\).*l2=nan"),
    (lambda: Dense(3, kernel_regularizer="l22"), UnknownIdentifierError, r"Could not interpret regularizer 'l22'"),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD)
def test_bad_regularizers_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
