"""Losses: each value through ORT's eval graph equals numpy; labels are checked before ORT sees them."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref

from onnxtrain import Sequential, losses
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import Losses

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 4)).astype(np.float32)


def numpy_loss(name: str, out: np.ndarray, y: np.ndarray) -> float:
    if name == "softmax_cross_entropy_with_logits":
        return float(-np.log(ref.softmax(out)[np.arange(len(y)), y]).mean())
    e = out - y
    if name == "mse":
        return float((e**2).mean())
    if name == "mae":
        return float(np.abs(e).mean())
    if name == "huber":
        a = np.abs(e)
        return float(np.where(a <= 1, 0.5 * e**2, a - 0.5).mean())
    p = np.clip(out, 1e-7, 1 - 1e-7)  # KotlinDL's and Keras' TensorFlow backend's formula
    return float(-(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7)).mean())


CASES = [
    (Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, "linear", 3, RNG.integers(0, 3, 10)),
    (Losses.MSE, "linear", 2, RNG.normal(size=(10, 2)).astype(np.float32)),
    (Losses.MAE, "linear", 2, RNG.normal(size=(10, 2)).astype(np.float32)),
    (Losses.HUBER, "linear", 2, 3 * RNG.normal(size=(10, 2)).astype(np.float32)),
    (Losses.BINARY_CROSSENTROPY, "sigmoid", 1, RNG.integers(0, 2, (10, 1)).astype(np.float32)),
]


@pytest.mark.parametrize(("loss", "activation", "units", "y"), CASES, ids=[c[0].value for c in CASES])
def test_loss_value_matches_numpy(loss, activation, units, y):
    with Sequential.of(Input(4), Dense(units, activation=activation), seed=1) as model:
        model.compile(optimizer="sgd", loss=loss)
        result = model.evaluate((X, y), batch_size=10)
        w = model.get_weights()
    z = X.astype(np.float64) @ w["dense_1.kernel"] + w["dense_1.bias"]
    out = ref.ACTIVATIONS[activation](z)
    assert result.loss == pytest.approx(numpy_loss(loss.value, out, y), rel=1e-5)


SCE = losses.get(Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
BAD_LABELS = [
    (SCE, np.array([0, 1, 3]), InvalidArgumentError, r"class indices in \[0, 2\].*Received: y\[2\]=3"),
    (SCE, np.array([0, -1, 1]), InvalidArgumentError, r"Received: y\[1\]=-1"),
    (SCE, np.array([0.0, 1.5]), InvalidArgumentError, r"integral class indices. Received: y\[1\]=1.5"),
    (SCE, np.array([0.0, np.nan]), InvalidArgumentError, r"finite values"),
    (SCE, np.eye(3), InvalidArgumentError, r"shape \(N,\).*one-hot labels\? pass y.argmax"),
    (SCE, np.array(["a", "b"]), InvalidTypeError, r"numeric labels. Received: dtype <U1"),
    (SCE, np.array(1), InvalidArgumentError, r"one label per example"),
    (losses.get("mse"), np.zeros((4, 2)), InvalidArgumentError, r"float targets of shape \(N, 3\).*\(4, 2\)"),
    (losses.get("bce"), np.array([[0.5], [2.0], [0.0]]), InvalidArgumentError, r"targets in \[0, 1\]"),
]


@pytest.mark.parametrize(("loss", "y", "error", "message"), BAD_LABELS)
def test_bad_labels_fail_before_ort(loss, y, error, message):
    shape = (1,) if loss.name == "binary_crossentropy" else (3,)
    with pytest.raises(error, match=message):
        loss.prepare_labels(y, shape, "y")


def test_labels_are_converted_to_what_ort_needs():
    assert SCE.prepare_labels(np.array([0.0, 2.0]), (3,)).dtype == np.int64
    assert SCE.prepare_labels(np.array([[1], [2]], np.uint8), (3,)).shape == (2,)
    assert losses.get("mse").prepare_labels(np.arange(3), (1,)).shape == (3, 1)


def test_registry():
    assert losses.get("sparse_categorical_crossentropy") == SCE
    assert losses.get({"name": "huber", "delta": 2.0}) == losses.Huber(2.0)
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret loss 'hinge'. Valid names"):
        losses.get("hinge")


def test_keras_categorical_crossentropy_says_to_pass_class_indices_with_the_sparse_loss():
    with pytest.raises(UnknownIdentifierError) as raised:
        losses.get("categorical_crossentropy")
    message = str(raised.value)
    assert message.startswith("Could not interpret loss 'categorical_crossentropy'. Valid names: [")
    assert "'sparse_categorical_crossentropy' (= 'softmax_cross_entropy_with_logits')" in message  # the aliases
    assert "one-hot labels" in message and "y.argmax(axis=1)" in message
    assert "loss='sparse_categorical_crossentropy'" in message and "'softmax_cross_entropy_with_logits'" in message
    with pytest.raises(InvalidArgumentError, match=r"one-hot labels\? pass y\.argmax\(axis=1\)"):
        SCE.prepare_labels(np.eye(3), (3,))  # as the hint says: the loss takes no one-hot labels


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: losses.Huber(delta=-1), r"Huber\(delta=...\) expects a positive finite number.*Received: delta=-1"),
        (lambda: losses.Huber(delta="x"), r"Received: delta='x'"),
        (lambda: losses.Huber(delta=0), r"Received: delta=0"),
        (lambda: losses.Huber(delta=float("inf")), r"Received: delta=inf"),
        (lambda: losses.Huber(delta=True), r"Received: delta=True"),
        (
            lambda: losses.BinaryCrossentropy(epsilon=0.7),
            r"BinaryCrossentropy\(epsilon=...\) expects a number in \[0, 0.5\).*Received: epsilon=0.7",
        ),
        (lambda: losses.BinaryCrossentropy(epsilon=0.5), r"Received: epsilon=0.5"),
        (lambda: losses.BinaryCrossentropy(epsilon=-1e-7), r"Received: epsilon=-1e-07"),
        (lambda: losses.get({"name": "bce", "epsilon": "small"}), r"Received: epsilon='small'"),
    ],
)
def test_bad_loss_arguments_fail_at_construction(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_numpy_scalar_loss_arguments_are_stored_as_python_floats():
    delta, epsilon = losses.Huber(np.int64(2)).delta, losses.BinaryCrossentropy(np.float32(0.25)).epsilon
    assert type(delta) is float and delta == 2.0
    assert type(epsilon) is float and epsilon == 0.25
    assert losses.BinaryCrossentropy(0).epsilon == 0.0
