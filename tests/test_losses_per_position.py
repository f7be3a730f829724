"""Sparse categorical cross-entropy on class indices per position (a tagger's (N, T) labels for outputs (N, T, C),
a segmentation's (N, H, W)), as Keras 3 takes them: evaluate, train_on_batch and fit on both engines against Keras
3.15's numbers (tests/data/keras/keras_loss_metric_parity.npz, written by tools/keras_loss_metric_fixtures.py), numpy
references, the labels' checks and messages that name the loss as it was given."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from test_sample_weights_sequences import CASES as SEQUENCE_CASES
from test_sample_weights_sequences import fixture as sequence_fixture
from test_sample_weights_sequences import keras_weights as sequence_keras_weights

from onnxtrain import Sequential, losses
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.layers import Dense, Input
from onnxtrain.model import Model
from onnxtrain.optimizers import SGD

KERAS = np.load(Path(__file__).parent / "data" / "keras" / "keras_loss_metric_parity.npz")
STEPS, FEATURES, CLASSES, BATCH = 5, 3, 4, 8
ENGINES = ["portable", "ort-training"]


def fixture(case: str) -> dict[str, np.ndarray]:
    return {name.split("/", 1)[1]: KERAS[name] for name in KERAS.files if name.startswith(case + "/")}


def keras_weights(data: Mapping[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
    """The fixture's `<prefix><layer>.<i>` arrays (Keras' kernel, bias) as the tagger's parameters."""
    return {
        f"{layer}.{name}": data[f"{prefix}{layer}.{i}"]
        for layer in ("hidden", "dense")
        for i, name in enumerate(("kernel", "bias"))
    }


def tagger() -> Sequential:
    return Sequential.of(
        Input(STEPS, FEATURES),
        Dense(5, activation="tanh", name="hidden"),
        Dense(CLASSES, activation="linear", name="dense"),
        seed=0,
    )


def keras_tagger(engine: str, loss: object = "sparse_categorical_crossentropy") -> tuple[Sequential, dict]:
    data = fixture("tagger_sparse")
    model = tagger()
    model.compile(optimizer=SGD(learning_rate=0.1), loss=loss, engine=engine)  # type: ignore[arg-type]
    model.set_weights(keras_weights(data))
    return model, data


def assert_keras_weights(model: Sequential, data: Mapping[str, np.ndarray], prefix: str) -> None:
    got = model.get_weights()
    for name, value in keras_weights(data, prefix).items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def cross_entropy(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[class] at every position, float64."""
    z = logits.astype(np.float64)
    log_probabilities = z - z.max(axis=-1, keepdims=True)
    log_probabilities -= np.log(np.exp(log_probabilities).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probabilities, classes[..., None], axis=-1)[..., 0]


# --- Keras 3.15 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy(True)])
def test_loss_and_an_sgd_step_on_class_indices_per_position_match_keras_3(engine, loss):
    model, k = keras_tagger(engine, loss)
    x, y = k["x"], k["y"]
    with model:
        assert model.evaluate(x, y, batch_size=BATCH).loss == pytest.approx(k["evaluate.loss"], rel=1e-5)
        step = model.train_on_batch(x[:BATCH], y[:BATCH])
        assert step == pytest.approx(k["step_unweighted_loss"], rel=1e-5)
        assert_keras_weights(model, k, "step_unweighted.")


def test_weights_per_position_weigh_the_loss_the_step_and_fit_as_keras_3():
    model, k = keras_tagger("portable")
    x, y, w = k["x"], k["y"], k["sample_weight"]
    with model:
        weighted = model.evaluate(x, y, batch_size=BATCH, sample_weight=w).loss
        assert weighted == pytest.approx(k["evaluate_weighted.loss"], rel=1e-5)
        loss = model.train_on_batch(x[:BATCH], y[:BATCH], sample_weight=w[:BATCH])
        assert loss == pytest.approx(k["step_loss"], rel=1e-5)
        assert_keras_weights(model, k, "step.")
    model, k = keras_tagger("portable")
    with model:
        history = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, sample_weight=w)
        np.testing.assert_allclose(history.history["loss"], k["history.loss"], rtol=1e-5)
        assert_keras_weights(model, k, "fit.")


def test_a_masked_tagger_on_class_indices_is_keras_categorical_tagger_on_their_one_hot():
    """Keras' masked tagger of tests/data/keras/sample_weights_sequences.npz (Embedding(mask_zero=True), LSTM, Dense
    logits) under categorical cross-entropy of one-hot targets: the sparse loss of their argmax is the same loss,
    over the unmasked positions, weighted per position too (the portable engine: ort-training has no LSTM
    gradient)."""
    make, _ = SEQUENCE_CASES["tagger_masked"]
    k = sequence_fixture("tagger_masked")
    model = make()
    model.compile(optimizer=SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy", engine="portable")
    model.set_weights(sequence_keras_weights(model, k))
    x, classes = k["x"], k["y"].argmax(axis=-1)
    with model:
        assert model.evaluate(x, classes, batch_size=BATCH).loss == pytest.approx(k["evaluate_unweighted"], rel=1e-5)
        weighted = model.evaluate(x, classes, batch_size=BATCH, sample_weight=k["evaluation_weight"]).loss
        assert weighted == pytest.approx(k["evaluate_weighted"], rel=1e-5)
        step = model.train_on_batch(x[:BATCH], classes[:BATCH], sample_weight=k["sample_weight"][:BATCH])
        assert step == pytest.approx(k["step_loss"], rel=1e-5)


# --- numpy references ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_the_loss_is_the_mean_over_every_position_of_a_segmentation_output(engine):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 2, 3, 4)).astype(np.float32)
    y = rng.integers(0, 3, (6, 2, 3))
    with Sequential.of(Input(2, 3, 4), Dense(3, activation="softmax", name="dense"), seed=1) as model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", engine=engine)
        weights = model.get_weights()
        logits = x @ weights["dense.kernel"] + weights["dense.bias"]  # (the softmax is the loss's)
        assert model.evaluate(x, y, batch_size=4).loss == pytest.approx(cross_entropy(logits, y).mean(), rel=1e-5)
        assert model.evaluate(x, y[..., None], batch_size=4).loss == pytest.approx(cross_entropy(logits, y).mean())
        np.testing.assert_array_equal(model.predict(x), logits.argmax(axis=-1))
        np.testing.assert_allclose(model.predict_softly(x).sum(axis=-1), 1.0, rtol=1e-5)


def test_one_weight_per_example_weighs_each_of_its_positions():
    """Keras 3 refuses (N,) weights for per-position losses; here each example's weight weighs its positions."""
    model, k = keras_tagger("portable")
    x, y = k["x"], k["y"]
    w = np.linspace(0.0, 2.0, len(x)).astype(np.float32)
    with model:
        logits = model.predict_softly(x)  # (probabilities: their log is the log-softmax of the logits)
        per_position = -np.log(np.take_along_axis(logits.astype(np.float64), y[..., None], axis=-1)[..., 0])
        loss = model.evaluate(x, y, batch_size=len(x), sample_weight=w).loss
        assert loss == pytest.approx((w[:, None] * per_position).mean(), rel=1e-5)
        spread = model.evaluate(x, y, batch_size=len(x), sample_weight=np.repeat(w[:, None], STEPS, axis=1)).loss
        assert loss == pytest.approx(spread, rel=1e-6)


# --- labels and messages ------------------------------------------------------------------------------------------
SPARSE = losses.get("sparse_categorical_crossentropy")
KOTLINDL = losses.get("softmax_cross_entropy_with_logits")
SHAPE = (STEPS, CLASSES)
BAD_LABELS = [
    (
        np.zeros(4, np.int64),
        r"'sparse_categorical_crossentropy' expects one class index per position of the output \(shape \(5, 4\): "
        r"positions \(5,\), then 4 classes\), an array of shape \(N, 5\)\. Received: y\.shape=\(4,\) \(one class per "
        r"example\? .*Flatten or GlobalAveragePooling1D\)",
    ),
    (np.zeros((4, *SHAPE)), r"Received: y\.shape=\(4, 5, 4\) \(one-hot labels\? pass y\.argmax\(axis=-1\)"),
    (np.zeros((4, 6), np.int64), r"an array of shape \(N, 5\)\. Received: y\.shape=\(4, 6\)$"),
    (np.array([[0, 1, 2, 3, 0], [0, 1, 4, 3, 0]]), r"class indices in \[0, 3\].*Received: y\[1, 2\]=4 \(1 labels"),
    (np.array([[0, 0.5, 2, 3, 0]]), r"integral class indices\. Received: y\[0, 1\]=0\.5$"),
    (np.array([[0, np.nan, 2, 3, 0]]), r"finite values"),
]


@pytest.mark.parametrize(("y", "message"), BAD_LABELS)
def test_bad_labels_per_position_are_refused_naming_the_loss_as_given(y, message):
    with pytest.raises(InvalidArgumentError, match=message):
        SPARSE.prepare_labels(y, SHAPE, "y")


def test_labels_per_position_become_int64_and_lose_a_trailing_axis_of_one():
    labels = SPARSE.prepare_labels(np.array([[[0.0], [1], [2], [3], [0]]]), SHAPE)
    assert labels.dtype == np.int64 and labels.shape == (1, STEPS)
    assert SPARSE.label_spec(SHAPE) == (np.int64, (None, STEPS)) and SPARSE.label_spec((4,)) == (np.int64, (None,))


@pytest.mark.parametrize(("loss", "name"), [(SPARSE, "sparse_categorical_crossentropy"), (KOTLINDL, KOTLINDL.name)])
def test_fit_names_the_loss_as_compile_was_given_it(loss, name):
    model, k = keras_tagger("portable", loss.name)
    with model, pytest.raises(InvalidArgumentError, match=rf"^y for loss '{name}' expects one class index"):
        model.fit(k["x"], k["y"][:, 0], verbose=0)


def test_an_output_without_a_class_axis_is_refused():
    with pytest.raises(ShapeError, match=r"'sparse_categorical_crossentropy' takes class indices.*has no class axis"):
        SPARSE.label_spec(())


def test_class_weight_is_refused_for_a_class_per_position_with_the_weights_that_do_it():
    model, k = keras_tagger("portable")
    message = r"a class per position.*sample_weight=np\.array\(\[1\.0, 3\.0, 1\.0, 1\.0\], 'float32'\)\[y\]"
    with model, pytest.raises(UnsupportedError, match=message):
        model.fit(k["x"], k["y"], class_weight={1: 3.0}, verbose=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_output_of_several_takes_class_indices_per_position(engine):
    """Needs onnxtrain/_output_spec.py's `label_width` and multi_output.py's label reshapes to read (N, T) labels
    (one label column per position)."""
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32)
    tags, score = rng.integers(0, CLASSES, (8, STEPS)), rng.normal(size=(8, STEPS, 1)).astype(np.float32)
    x = Input(STEPS, FEATURES, name="x")
    model = Model(x, [Dense(CLASSES, activation="linear", name="tags")(x), Dense(1, name="score")(x)], seed=0)
    with model:
        model.compile(
            optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["acc"], []], engine=engine
        )
        result = model.evaluate(xs, [tags, score], return_dict=True)
        weights = model.get_weights()
    logits = xs @ weights["tags.kernel"] + weights["tags.bias"]
    assert result["tags_loss"] == pytest.approx(cross_entropy(logits, tags).mean(), rel=1e-5)
    assert result["tags_acc"] == pytest.approx(np.mean(logits.argmax(axis=-1) == tags))
