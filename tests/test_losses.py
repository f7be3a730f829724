"""Losses: each value through ORT's eval graph equals numpy; labels are checked before ORT sees them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import reference as ref

from onnxtrain import InferenceModel, Sequential, losses
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model
from onnxtrain.losses import Losses
from onnxtrain.optimizers import SGD

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
    # Keras' name makes Keras' class (the same computation as KotlinDL's loss), named as the user named it
    assert losses.get("sparse_categorical_crossentropy") == losses.SparseCategoricalCrossentropy()
    assert losses.get("SparseCategoricalCrossentropy").name == "sparse_categorical_crossentropy"
    assert losses.get("softmax_cross_entropy_with_logits") == SCE
    assert losses.get({"name": "huber", "delta": 2.0}) == losses.Huber(2.0)
    assert losses.get("cce") == losses.CategoricalCrossentropy()
    assert losses.get("kld") == losses.KLDivergence() and losses.get("mape") == losses.MeanAbsolutePercentageError()
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret loss 'focal'. Valid names"):
        losses.get("focal")


def test_categorical_crossentropy_refuses_class_indices_with_a_hint_to_the_sparse_loss():
    cce = losses.CategoricalCrossentropy()
    message = r"one-hot or probability targets of shape \(N, 3\).*y.shape=\(2,\).*sparse_categorical_crossentropy"
    with pytest.raises(InvalidArgumentError, match=message):
        cce.prepare_labels(np.array([0, 2]), (3,))
    with pytest.raises(InvalidArgumentError, match=r"targets in \[0, 1\]. Received: y.flat\[1\]=-1.0"):
        cce.prepare_labels(np.array([[0, -1, 2]]), (3,))
    assert cce.prepare_labels(np.eye(3, dtype=np.uint8), (3,)).dtype == np.float32
    with pytest.raises(InvalidArgumentError, match=r"one-hot labels\? pass y\.argmax\(axis=1\)"):
        SCE.prepare_labels(np.eye(3), (3,))  # and the sparse loss the other way round


# Keras 3 (JAX) numbers from tools/keras_loss_fixtures.py: a Dense with seeded weights, Keras' loss before one SGD
# step (learning rate 0.1) on the whole batch and the weights after it, which checks the gradient too.
KERAS = np.load(Path(__file__).parent / "data" / "keras" / "losses.npz")
KERAS_CASES = {
    "categorical_crossentropy": ("categorical_crossentropy", "softmax"),
    "categorical_crossentropy_from_logits": (losses.CategoricalCrossentropy(from_logits=True), "linear"),
    "categorical_crossentropy_smoothing": ({"name": "cce", "label_smoothing": 0.2}, "softmax"),
    "binary_crossentropy_smoothing": (losses.BinaryCrossentropy(label_smoothing=0.1), "sigmoid"),
    "binary_crossentropy_from_logits": (losses.BinaryCrossentropy(from_logits=True), "linear"),
    "binary_crossentropy_from_logits_smoothing": (
        {"name": "binary_crossentropy", "from_logits": True, "label_smoothing": 0.3},
        "linear",
    ),
    "kl_divergence": (Losses.KL_DIVERGENCE, "softmax"),
    "poisson": ("poisson", "sigmoid"),
    "log_cosh": ("log_cosh", "linear"),
    "mean_absolute_percentage_error": ("mape", "linear"),
    "mean_squared_logarithmic_error": ("msle", "sigmoid"),
    "hinge": ("hinge", "linear"),
    "hinge_signs": (losses.Hinge(), "linear"),  # targets -1/1, taken as they are
    "squared_hinge": ("squared_hinge", "linear"),
    "cosine_similarity": ("cosine_similarity", "linear"),
}


@pytest.mark.parametrize("engine", ["portable", "ort-training"])
@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_loss_value_and_one_sgd_step_match_keras(case, engine):
    loss, activation = KERAS_CASES[case]
    kernel, bias = KERAS[f"{case}.kernel"], KERAS[f"{case}.bias"]
    data = (KERAS[f"{case}.x"], KERAS[f"{case}.y"])
    with Sequential.of(Input(4), Dense(kernel.shape[1], activation=activation), seed=1) as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=loss, engine=engine)
        model.set_weights({"dense_1.kernel": kernel, "dense_1.bias": bias})
        assert model.evaluate(data, batch_size=6).loss == pytest.approx(float(KERAS[f"{case}.loss"]), rel=1e-5)
        model.fit(data, epochs=1, batch_size=6, shuffle=False, verbose=0)
        weights = model.get_weights()
    np.testing.assert_allclose(weights["dense_1.kernel"], KERAS[f"{case}.kernel_after"], atol=2e-6)
    np.testing.assert_allclose(weights["dense_1.bias"], KERAS[f"{case}.bias_after"], atol=2e-6)


@pytest.mark.parametrize("name", sorted(losses._REGISTRY.names))
def test_every_loss_config_round_trips(name):
    loss = losses.get(name)
    assert losses.get(loss.get_config()) == loss
    for arguments in ({"from_logits": True, "label_smoothing": 0.25}, {"label_smoothing": 1.0}):
        if set(arguments) <= set(loss.get_config()):
            varied = losses.get({**loss.get_config(), **arguments})
            assert (
                losses.get(varied.get_config()) == varied
                and varied.get_config()["label_smoothing"] == arguments["label_smoothing"]
            )


def test_binary_crossentropy_of_saturated_outputs_is_the_documented_number():
    """The docstring's figures: probabilities clipped to [1e-7, 1 - 1e-7] then log(p + 1e-7) (KotlinDL, Keras'
    TensorFlow backend); from logits, softplus(z) - y z, finite and with gradient sigmoid(z) - y at any z."""
    with Sequential.of(Input(1), Dense(1, activation="sigmoid"), seed=1) as model:
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        model.set_weights(
            {"dense_1.kernel": np.zeros((1, 1), np.float32), "dense_1.bias": np.array([40.0], np.float32)}
        )
        wrong = model.evaluate((np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32))).loss
    assert wrong == pytest.approx(-np.log(np.float32(1) - np.float32(1 - 1e-7) + 1e-7), rel=1e-4)  # 15.33
    with Sequential.of(Input(1), Dense(1, activation="linear"), seed=1) as model:
        model.compile(optimizer=SGD(learning_rate=1.0), loss=losses.BinaryCrossentropy(from_logits=True))
        model.set_weights(
            {"dense_1.kernel": np.zeros((1, 1), np.float32), "dense_1.bias": np.array([40.0], np.float32)}
        )
        data = (np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32))
        assert model.evaluate(data).loss == pytest.approx(40.0)
        model.fit(data, epochs=1, verbose=0)
        assert model.get_weights()["dense_1.bias"][0] == pytest.approx(39.0)  # gradient sigmoid(40) - 0 = 1


def test_from_logits_losses_predict_from_logits_and_export_their_probabilities(tmp_path):
    x = RNG.normal(size=(12, 4)).astype(np.float32)
    y = RNG.integers(0, 2, (12, 2)).astype(np.float32)
    with Sequential.of(Input(4), Dense(2, activation="linear"), seed=1) as model:
        model.compile(optimizer="sgd", loss=losses.BinaryCrossentropy(from_logits=True), metrics=["binary_accuracy"])
        assert "binary_accuracy" in model.fit((x, y), epochs=1, verbose=0).history
        w = model.get_weights()
        logits = x @ w["dense_1.kernel"] + w["dense_1.bias"]
        np.testing.assert_allclose(model.predict_softly(x), 1 / (1 + np.exp(-logits)), rtol=1e-5)
        np.testing.assert_allclose(model.predict(x), logits, rtol=1e-5)  # two units: as they are, as Keras'
        model.save(tmp_path / "bce")
        model.export(tmp_path / "bce.onnx")
    with load_model(tmp_path / "bce") as loaded:
        assert loaded._emitted_loss() == losses.BinaryCrossentropy(from_logits=True)
    exported = InferenceModel.load(tmp_path / "bce.onnx")  # the loss, from_logits included, from its metadata
    assert exported.output_names[-1] == "probabilities"  # Sigmoid(logits), for runtimes in other languages
    np.testing.assert_allclose(exported.predict_softly(x), 1 / (1 + np.exp(-logits)), rtol=1e-5)
    np.testing.assert_allclose(exported.predict(x), logits, rtol=1e-5)
    one_hot = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 12)]
    with Sequential.of(Input(4), Dense(3, activation="softmax"), seed=1) as model:
        model.compile(optimizer="sgd", loss=losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["acc"])
        model.fit((x, one_hot), epochs=1, verbose=0)
        probabilities = model.predict_softly(x)
        model.save(tmp_path / "cce")
        model.export(tmp_path / "cce.onnx")
    with load_model(tmp_path / "cce") as loaded:
        assert loaded._emitted_loss() == losses.CategoricalCrossentropy(label_smoothing=0.1)
    exported = onnx.load(tmp_path / "cce.onnx")
    assert [o.name for o in exported.graph.output] == ["logits", "probabilities"]
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"input": x})[0], probabilities, rtol=1e-5, atol=1e-7)


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
        (
            lambda: losses.CategoricalCrossentropy(label_smoothing=1.5),
            r"CategoricalCrossentropy\(label_smoothing=...\) expects a number in \[0, 1\]. "
            r"Received: label_smoothing=1.5",
        ),
        (lambda: losses.BinaryCrossentropy(label_smoothing=-0.1), r"Received: label_smoothing=-0.1"),
        (lambda: losses.get({"name": "cce", "label_smoothing": "x"}), r"Received: label_smoothing='x'"),
        (lambda: losses.get({"name": "bce", "label_smoothing": float("nan")}), r"Received: label_smoothing=nan"),
        (
            lambda: losses.BinaryCrossentropy(from_logits="yes"),
            r"BinaryCrossentropy\(from_logits=...\) expects a bool. Received: from_logits='yes'",
        ),
        (lambda: losses.CategoricalCrossentropy(from_logits=1), r"Received: from_logits=1"),
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
