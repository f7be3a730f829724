"""Keras' loss and metric classes and configs: `losses.SparseCategoricalCrossentropy`, the accuracy metric classes,
class names as strings and Keras' {"class_name", "config"} form, in compile and in a saved model. Each computes what
its string-named equivalent or numpy computes (Keras' formulas)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxtrain import Model, Sequential, load_model, losses, metrics
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import SoftmaxCrossEntropyWithLogits

RNG = np.random.default_rng(3)
X = RNG.normal(size=(24, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 24)
LOGITS = RNG.normal(size=(6, 3)).astype(np.float32)
LABELS = np.array([0, 2, 1, 1, 0, 2])


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# --- losses ----------------------------------------------------------------------------------------------------
# What `keras.losses.serialize` writes (Keras 3.15), as compile and a Keras model's config give them, and the loss
# onnxtrain builds of it.
KERAS_LOSS_CONFIGS = [
    (
        {
            "module": "keras.losses",
            "class_name": "SparseCategoricalCrossentropy",
            "config": {
                "name": "sparse_categorical_crossentropy",
                "reduction": "sum_over_batch_size",
                "from_logits": True,
                "ignore_class": None,
            },
            "registered_name": None,
        },
        losses.SparseCategoricalCrossentropy(from_logits=True),
    ),
    (
        {
            "class_name": "MeanSquaredError",
            "config": {"name": "mean_squared_error", "reduction": "sum_over_batch_size"},
        },
        losses.MeanSquaredError(),
    ),
    ({"class_name": "Huber", "config": {"name": "huber_loss", "reduction": "sum_over_batch_size"}}, losses.Huber()),
    (
        {
            "class_name": "BinaryCrossentropy",
            "config": {
                "name": "binary_crossentropy",
                "reduction": "sum_over_batch_size",
                "from_logits": True,
                "label_smoothing": 0.0,
                "axis": -1,
            },
        },
        losses.BinaryCrossentropy(from_logits=True),
    ),
    (
        {"class_name": "CategoricalCrossentropy", "config": {"from_logits": False, "label_smoothing": 0.1, "axis": -1}},
        losses.CategoricalCrossentropy(label_smoothing=0.1),
    ),
    ({"class_name": "KLDivergence", "config": {"dtype": "float32"}}, losses.KLDivergence()),
]


@pytest.mark.parametrize(
    ("config", "expected"), KERAS_LOSS_CONFIGS, ids=[c["class_name"] for c, _ in KERAS_LOSS_CONFIGS]
)
def test_keras_loss_configs_build_the_loss_they_describe(config, expected):
    assert losses.get(config) == expected
    assert losses.get(expected.get_config()) == expected  # what a save stores reads back


def test_sparse_categorical_crossentropy_is_keras_class_and_the_kotlindl_name_kotlindls_loss():
    assert losses.get({"name": "sparse_categorical_crossentropy", "from_logits": True}) == (
        losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    assert losses.get({"name": "sparse_categorical_crossentropy"}) == losses.SparseCategoricalCrossentropy()
    assert losses.get("softmax_cross_entropy_with_logits") == SoftmaxCrossEntropyWithLogits()


CLASS_NAMES = [
    ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy()),
    ("CategoricalCrossentropy", losses.CategoricalCrossentropy()),
    ("BinaryCrossentropy", losses.BinaryCrossentropy()),
    ("MeanSquaredError", losses.MeanSquaredError()),
    ("MeanAbsoluteError", losses.MeanAbsoluteError()),
    ("Huber", losses.Huber()),
    ("KLDivergence", losses.KLDivergence()),
    ("LogCosh", losses.LogCosh()),
    ("MeanAbsolutePercentageError", losses.MeanAbsolutePercentageError()),
    ("MeanSquaredLogarithmicError", losses.MeanSquaredLogarithmicError()),
    ("Poisson", losses.Poisson()),
    ("Hinge", losses.Hinge()),
    ("SquaredHinge", losses.SquaredHinge()),
    ("CosineSimilarity", losses.CosineSimilarity()),
]


@pytest.mark.parametrize(("name", "expected"), CLASS_NAMES, ids=[row[0] for row in CLASS_NAMES])
def test_every_keras_loss_class_exists_and_its_name_is_a_loss_name(name, expected):
    assert isinstance(getattr(losses, name)(), type(expected))
    assert losses.get(name) == expected


LOSS_REFUSALS = [
    (
        lambda: losses.SparseCategoricalCrossentropy(ignore_class=0),
        UnsupportedError,
        r"SparseCategoricalCrossentropy\(ignore_class=\.\.\.\) leaves a class index out.*Received: ignore_class=0",
    ),
    (
        lambda: losses.SparseCategoricalCrossentropy(from_logits="yes"),
        InvalidArgumentError,
        r"SparseCategoricalCrossentropy\(from_logits=\.\.\.\) expects a bool",
    ),
    (
        lambda: losses.get({"class_name": "MeanSquaredError", "config": {"reduction": "sum"}}),
        InvalidArgumentError,
        r"reduction='sum' is not supported; onnxtrain's losses average over the batch",
    ),
    (
        lambda: losses.get({"class_name": "MeanSquaredError", "config": {"delta": 2.0}}),
        InvalidArgumentError,
        r"unknown key\(s\) \['delta'\] for MeanSquaredError",
    ),
    (
        lambda: losses.get({"class_name": "Focal", "config": {}}),
        InvalidArgumentError,
        r"Could not interpret loss 'Focal'",
    ),
]


@pytest.mark.parametrize(("make", "error", "match"), LOSS_REFUSALS, ids=[row[2][:40] for row in LOSS_REFUSALS])
def test_what_a_keras_loss_onnxtrain_does_not_compute_is_refused_naming_it(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_computes_the_softmax_cross_entropy_of_class_indices(from_logits):
    # Keras' value on logits: -mean(log_softmax(z)[y]) (numpy); from_logits=False says the model ends in a softmax,
    # which the graphs leave to the loss, so both compute this.
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    assert isinstance(loss, SoftmaxCrossEntropyWithLogits) and loss.classification
    with Sequential.of(Input(4), Dense(3, activation="linear" if from_logits else "softmax"), seed=0) as model:
        model.compile(optimizer="sgd", loss=loss)
        weights = model.get_weights()
        z = X @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        expected = -np.mean(log_softmax(z)[np.arange(len(Y)), Y])
        assert model.evaluate(X, Y).loss == pytest.approx(expected, rel=1e-5)
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=0) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        assert model.evaluate(X, Y).loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "loss",
    [
        "SparseCategoricalCrossentropy",
        {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}},
        losses.SparseCategoricalCrossentropy(from_logits=True),
    ],
    ids=["class name", "Keras config", "object"],
)
def test_compile_takes_keras_loss_spellings_and_a_save_keeps_them(tmp_path, loss):
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=0) as model:
        model.compile(optimizer="adam", loss=loss, metrics=["SparseCategoricalAccuracy"])
        model.fit(X, Y, epochs=1, verbose=0)
        compiled = model._compiled.loss  # type: ignore[union-attr]
        model.save(tmp_path / "saved", save_optimizer_state=True)
        expected = model.evaluate(X, Y, return_dict=True)
    assert isinstance(compiled, SoftmaxCrossEntropyWithLogits)  # the class, or the name's KotlinDL loss
    with load_model(tmp_path / "saved") as loaded:
        assert loaded._compiled.loss == compiled  # type: ignore[union-attr]
        assert loaded.evaluate(X, Y, return_dict=True) == pytest.approx(expected)


# --- metrics ---------------------------------------------------------------------------------------------------
def test_the_keras_reproducers_classes_exist_and_compile():
    # /tmp/ut_vision/keras_classes.py: each of these was missing or refused.
    for name in ("SparseCategoricalAccuracy", "BinaryAccuracy", "CategoricalAccuracy", "Accuracy"):
        assert issubclass(getattr(metrics, name), metrics.Metric)
    settings = [
        {"loss": "SparseCategoricalCrossentropy"},
        {"loss": "sparse_categorical_crossentropy", "metrics": ["SparseCategoricalAccuracy"]},
        {"loss": {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}},
        {"loss": "sparse_categorical_crossentropy", "metrics": [metrics.SparseCategoricalAccuracy()]},
    ]
    for kwargs in settings:
        with Sequential.of(Input(4), Dense(3, activation="linear")) as model:
            model.compile(optimizer="adam", **kwargs)


def binary_hits(outputs: np.ndarray, targets: np.ndarray, threshold: float) -> float:
    """Keras' binary_accuracy summed over examples: each example's share of units on the target's side."""
    return float(np.mean((outputs > threshold) == (targets > 0.5), axis=1).sum())


PROBABILITIES = np.array([[0.2, 0.9], [0.6, 0.4], [0.35, 0.1]], np.float32)
TARGETS = np.array([[0, 1], [1, 1], [1, 0]], np.float32)
ONE_HOT = np.eye(3, dtype=np.float32)[LABELS]
# (metric object, its string-named twin or None, loss, outputs, labels, the batch's sum: numpy, Keras' formula)
METRIC_CASES = [
    (
        metrics.SparseCategoricalAccuracy(),
        "sparse_categorical_accuracy",
        losses.SparseCategoricalCrossentropy(),
        LOGITS,
        LABELS,
        float(np.sum(LOGITS.argmax(axis=1) == LABELS)),
    ),
    (
        metrics.CategoricalAccuracy(),
        "categorical_accuracy",
        losses.CategoricalCrossentropy(),
        LOGITS,
        ONE_HOT,
        float(np.sum(LOGITS.argmax(axis=1) == LABELS)),
    ),
    (
        metrics.BinaryAccuracy(),
        "binary_accuracy",
        losses.BinaryCrossentropy(),
        PROBABILITIES,
        TARGETS,
        binary_hits(PROBABILITIES, TARGETS, 0.5),
    ),
    (
        metrics.BinaryAccuracy(threshold=0.3),
        None,
        losses.BinaryCrossentropy(),
        PROBABILITIES,
        TARGETS,
        binary_hits(PROBABILITIES, TARGETS, 0.3),
    ),
    (  # on logits, the threshold is the logit of the probability 0.3
        metrics.BinaryAccuracy(threshold=0.3),
        None,
        losses.BinaryCrossentropy(from_logits=True),
        np.log(PROBABILITIES / (1 - PROBABILITIES)),
        TARGETS,
        binary_hits(PROBABILITIES, TARGETS, 0.3),
    ),
    (  # Keras' Accuracy: values equal to their targets; a class index against every unit of the softmax
        metrics.Accuracy(),
        None,
        losses.MeanSquaredError(),
        np.array([[1.0, 2.0], [0.5, 0.0], [3.0, 3.0]], np.float32),
        np.array([[1.0, 0.0], [0.5, 0.0], [3.0, 1.0]], np.float32),
        0.5 + 1.0 + 0.5,
    ),
]


@pytest.mark.parametrize(
    ("metric", "twin", "loss", "outputs", "labels", "expected"),
    METRIC_CASES,
    ids=[f"{type(row[0]).__name__}-{type(row[2]).__name__}-{i}" for i, row in enumerate(METRIC_CASES)],
)
def test_accuracy_classes_compute_keras_numbers_and_equal_their_string_twins(
    metric, twin, loss, outputs, labels, expected
):
    assert metric.batch_sum(outputs, labels, loss) == pytest.approx(expected)
    weighted = metric.batch_sum(outputs, labels, loss, np.ones(len(outputs), np.float32))
    assert metric.finish(weighted, len(outputs)) == pytest.approx(expected / len(outputs))
    assert metric.direction == "up"
    if twin is not None:
        assert metrics.named(twin) == metric and metrics.named(twin).name == metric.name
        assert metrics.named(twin).batch_sum(outputs, labels, loss) == pytest.approx(expected)


def test_keras_accuracy_of_a_classifier_compares_probabilities_with_class_indices():
    # Keras: accuracy(y_true[:, None], softmax) over every unit, which no probability equals: 0. onnxtrain warns.
    assert metrics.Accuracy().batch_sum(LOGITS, LABELS, losses.SparseCategoricalCrossentropy()) == 0.0
    with (
        Sequential.of(Input(4), Dense(3, activation="linear"), seed=0) as model,
        pytest.warns(UserWarning, match=r"Metric 'accuracy' is Keras' Accuracy.*SparseCategoricalAccuracy\(\)"),
    ):
        model.compile(loss="sparse_categorical_crossentropy", metrics=[metrics.Accuracy()])


# What `keras.metrics.serialize` writes (Keras 3.15), and the metric it builds.
KERAS_METRIC_CONFIGS = [
    (
        {
            "module": "keras.metrics",
            "class_name": "BinaryAccuracy",
            "config": {"name": "binary_accuracy", "dtype": "float32", "threshold": 0.5},
        },
        metrics.BinaryAccuracy(),
    ),
    (
        {
            "class_name": "SparseCategoricalAccuracy",
            "config": {"name": "sparse_categorical_accuracy", "dtype": "float32"},
        },
        metrics.SparseCategoricalAccuracy(),
    ),
    (
        {"class_name": "CategoricalAccuracy", "config": {"name": "cat", "dtype": None}},
        metrics.CategoricalAccuracy("cat"),
    ),
    ({"class_name": "Accuracy", "config": {"name": "accuracy", "dtype": "float32"}}, metrics.Accuracy()),
    ({"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}}, metrics.BinaryAccuracy(threshold=0.7)),
]


@pytest.mark.parametrize(
    ("config", "expected"),
    KERAS_METRIC_CONFIGS,
    ids=[c["class_name"] + str(i) for i, (c, _) in enumerate(KERAS_METRIC_CONFIGS)],
)
def test_keras_metric_configs_build_the_metric_and_a_metrics_config_rebuilds_it(config, expected):
    built = metrics.named(config)
    assert built == expected
    assert metrics.named(built.get_config()) == expected  # what a save stores reads back


def test_metric_classes_log_under_their_names_and_survive_a_save(tmp_path):
    compiled = [metrics.SparseCategoricalAccuracy(), "accuracy", metrics.Accuracy(name="exact")]
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=0) as model, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Accuracy under a classifier's loss: warned, as tested above
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=compiled)
        history = model.fit(X, Y, epochs=2, verbose=0)
        model.save(tmp_path / "saved")
    assert list(history.history) == ["accuracy", "exact", "loss", "sparse_categorical_accuracy"]  # Keras 3's: sorted
    assert history.history["sparse_categorical_accuracy"] == history.history["accuracy"]
    assert history.history["exact"] == [0.0, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with load_model(tmp_path / "saved") as loaded:
            assert list(loaded.evaluate(X, Y, return_dict=True)) == list(history.history)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: metrics.BinaryAccuracy(threshold=1.5),
            r"BinaryAccuracy\(threshold=\.\.\.\) expects a number in \[0, 1\]",
        ),
        (
            lambda: metrics.named({"class_name": "Accuracy", "config": {"dtype": "float16"}}),
            r"does not build a Accuracy",
        ),
    ],
)
def test_metric_class_arguments_are_checked(make, match):
    with pytest.raises(InvalidArgumentError, match=match):
        make()


@pytest.mark.slow
def test_a_model_of_several_outputs_takes_one_keras_loss_config_for_all_or_one_per_output(tmp_path):
    config = {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}
    for loss in (config, {"kind": config, "other": "SparseCategoricalCrossentropy"}):
        x = Input(4)
        hidden = Dense(8)(x)
        model = Model(x, [Dense(3, activation="linear", name="kind")(hidden), Dense(3, name="other")(hidden)], seed=0)
        with model:
            model.compile(optimizer="adam", loss=loss)
            model.fit(X, [Y, Y], epochs=1, verbose=0)
            model.save(tmp_path / "saved", writing_mode="override")
        with load_model(tmp_path / "saved") as loaded:
            own = loaded._compiled.loss.outputs  # type: ignore[union-attr]
            assert own[0].loss == losses.SparseCategoricalCrossentropy(from_logits=True)
