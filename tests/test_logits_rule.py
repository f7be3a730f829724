"""The "Logits" rule (README): under every loss that reads logits (the softmax cross-entropies, binary
cross-entropy with from_logits=True) a last Dense left at its default activation (KotlinDL's ReLU) is emitted
linear, marked in the summary, saved without an activation and warned about where an explicit activation clamps the
logits; and the export names its outputs for what they hold (`logits`, `probabilities`)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest

from onnxtrain import InferenceModel, Sequential, load_model
from onnxtrain.layers import Dense, Dropout, Input
from onnxtrain.losses import BinaryCrossentropy, CategoricalCrossentropy, Losses, SparseCategoricalCrossentropy

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y_BINARY = (X[:, 0] > 0).astype(np.float32)
Y_CLASSES = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)


def softplus(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# Each loss that reads logits, with the width of its last Dense.
ON_LOGITS = [
    (BinaryCrossentropy(from_logits=True), 1),
    (CategoricalCrossentropy(from_logits=True), 3),
    (SparseCategoricalCrossentropy(from_logits=True), 3),
    ("sparse_categorical_crossentropy", 3),
    (Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, 3),
]


@pytest.mark.parametrize(("loss", "units"), ON_LOGITS, ids=[str(row[0])[:40] for row in ON_LOGITS])
def test_a_last_dense_at_its_default_is_linear_under_every_loss_on_logits(tmp_path, loss, units):
    with Sequential.of(Input(4), Dense(units), seed=0) as model, warnings.catch_warnings():
        warnings.simplefilter("error")  # linear as meant: no warning
        model.compile(optimizer="adam", loss=loss)
        assert "dense_1(Dense) [linear (logits)]" in model.summary(print_fn=None)
        weights = model.get_weights()
        z = X @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        assert (z < 0).any()  # a ReLU would have clamped these
        expected = sigmoid(z) if units == 1 else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(model.predict_softly(X), expected, rtol=1e-5, atol=1e-6)
        assert "activation" not in model.get_layer("dense_1").get_config()  # config.json leaves it out
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved") as loaded:
        assert "[linear (logits)]" in loaded.summary(print_fn=None)
        np.testing.assert_allclose(loaded.predict_softly(X), expected, rtol=1e-5, atol=1e-6)


def test_binary_cross_entropy_from_logits_trains_the_linear_logit_as_keras():
    # The TF RNN tutorial's head, Dense(1) under BinaryCrossentropy(from_logits=True): Keras' loss is
    # mean(softplus(z) - y z) of the linear z (numpy here); a ReLU z would give 0.6931 for every z <= 0, and stick.
    with Sequential.of(Input(4), Dense(1), seed=0) as model:
        model.compile(optimizer="sgd", loss=BinaryCrossentropy(from_logits=True))  # KotlinDL's rate, 0.2
        weights = model.get_weights()
        z = (X @ weights["dense_1.kernel"] + weights["dense_1.bias"])[:, 0]
        assert model.evaluate(X, Y_BINARY).loss == pytest.approx(float(np.mean(softplus(z) - Y_BINARY * z)), rel=1e-5)
        history = model.fit(X, Y_BINARY, epochs=20, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_binary_cross_entropy_on_probabilities_keeps_a_default_relu():
    # Not a loss on logits: Dense(1) keeps KotlinDL's ReLU (and the usual warning to end in a sigmoid).
    with (
        Sequential.of(Input(4), Dense(1), seed=0) as model,
        pytest.warns(
            UserWarning, match=r"expects probabilities, but the last layer 'dense_1' ends in activation 'relu'"
        ),
    ):
        model.compile(loss="binary_crossentropy")
        assert "[linear (logits)]" not in model.summary(print_fn=None)
        np.testing.assert_array_equal(model.predict_softly(X) >= 0, True)


# (loss, last layer, what the warning says): each says what the activation does to that loss's logits
WARNINGS = [
    (
        BinaryCrossentropy(from_logits=True),
        Dense(1, activation="relu"),
        r"^Loss 'binary_crossentropy' with from_logits=True expects logits, but the last layer 'dense_1' applies "
        r"activation 'relu' to them: relu logits are clamped \(bounded below\), so the predicted probability never "
        r"falls below 0\.5 \(a unit that starts inactive gets no gradient\); it trains, but worse and less reliably\. "
        r'For logits use Dense\(\.\.\., activation="linear"\), or leave the activation out\.$',
    ),
    (
        BinaryCrossentropy(from_logits=True),
        Dense(1, activation="sigmoid"),
        r"with from_logits=True expects logits.*'sigmoid' to them: the loss applies its own sigmoid to them, so the "
        r"sigmoid is applied twice\.",
    ),
    (
        BinaryCrossentropy(from_logits=True),
        Dense(1, activation="tanh"),
        r"'tanh' to them: the loss reads its outputs as logits, which tanh bounds; it trains, but worse\.",
    ),
    (
        SparseCategoricalCrossentropy(from_logits=True),
        Dense(3, activation="relu"),
        r"^Loss 'sparse_categorical_crossentropy' with from_logits=True expects logits.*'relu'.*classes can become "
        r"unlearnable",
    ),
    (
        Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
        Dense(3, activation="relu"),
        r"^Loss 'softmax_cross_entropy_with_logits' expects logits.*classes can become unlearnable",
    ),
]


@pytest.mark.parametrize(("loss", "last", "match"), WARNINGS, ids=[row[2][:50] for row in WARNINGS])
def test_an_explicit_activation_on_logits_warns_saying_what_it_does_for_that_loss(loss, last, match):
    with Sequential.of(Input(4), last, seed=0) as model, pytest.warns(UserWarning, match=match):
        model.compile(loss=loss)
    assert "[linear (logits)]" not in model.summary(print_fn=None)  # an explicit activation stays


def test_logits_carried_from_a_default_dense_warn_under_binary_cross_entropy_from_logits():
    with (
        Sequential.of(Input(4), Dense(1), Dropout(0.1), seed=0) as model,
        pytest.warns(
            UserWarning,
            match=r"^Loss 'binary_crossentropy' with from_logits=True expects logits, but output 'dropout_1' carries "
            r"the values of Dense layer\(s\) \['dense_1'\].*never falls below 0\.5",
        ),
    ):
        model.compile(loss=BinaryCrossentropy(from_logits=True))


# --- the export's output names --------------------------------------------------------------------------------
# (loss, last layer, the export's outputs, what each holds: the model's values through numpy)
EXPORTS = [
    (Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Dense(3, activation="linear"), ["logits", "probabilities"]),
    ("sparse_categorical_crossentropy", Dense(3, activation="softmax"), ["logits", "probabilities"]),
    (BinaryCrossentropy(from_logits=True), Dense(1), ["logits", "probabilities"]),
    ("binary_crossentropy", Dense(1, activation="sigmoid"), ["probabilities"]),  # the reported export
    ("binary_crossentropy", Dense(2, activation="sigmoid"), ["probabilities"]),  # multi-label
    ("mse", Dense(2, activation="linear"), ["logits"]),  # raw values, as before
]


@pytest.mark.parametrize(("loss", "last", "outputs"), EXPORTS, ids=[f"{row[0]}-{row[2]}"[:60] for row in EXPORTS])
def test_the_export_names_each_output_for_what_it_holds(tmp_path, loss, last, outputs):
    with Sequential.of(Input(4), last, seed=0) as model:
        model.compile(optimizer="adam", loss=loss)
        weights = model.get_weights()
        z = X @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        path = model.export(tmp_path / "model.onnx")
        predicted = model.predict(X)
        soft = None if loss == "mse" else model.predict_softly(X)
    exported = onnx.load(path)
    assert [o.name for o in exported.graph.output] == outputs
    served = InferenceModel.load(path)
    values = served.predict_outputs(X)
    if "logits" in values:  # the raw scores
        np.testing.assert_allclose(values["logits"], z, rtol=1e-5, atol=1e-6)
    if "probabilities" in values:  # probabilities, whether the loss or the layer made them
        probabilities = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) if z.shape[1] == 3 else sigmoid(z)
        np.testing.assert_allclose(values["probabilities"], probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served.predict(X), predicted)
    if soft is not None:
        np.testing.assert_allclose(served.predict_softly(X), soft, rtol=1e-6)
