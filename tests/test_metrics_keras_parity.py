"""Metrics through compile, evaluate and fit against Keras 3.15's numbers
(tests/data/keras/keras_loss_metric_parity.npz, written by tools/keras_loss_metric_fixtures.py): the sparse accuracies
on class indices per position, weighted metrics with one weight per position, losses given as metrics (a loss object:
the mean of the batches' means), and what the metrics that read values see of a model ending in logits (the logits,
as Keras' metrics see the model's outputs) or in a softmax (its probabilities)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnxtrain import Sequential, losses
from onnxtrain._confusion_metrics import confusion_counts
from onnxtrain._metric_base import keras_view, model_outputs, weighted_sums
from onnxtrain.layers import Dense, Input
from onnxtrain.metrics import (
    AUC,
    CosineSimilarity,
    LossMetric,
    MeanAbsoluteError,
    Precision,
    RootMeanSquaredError,
    SparseTopKCategoricalAccuracy,
)
from onnxtrain.optimizers import SGD

KERAS = np.load(Path(__file__).parent / "data" / "keras" / "keras_loss_metric_parity.npz")
STEPS, FEATURES, CLASSES, BATCH = 5, 3, 4, 8


def _tagger() -> Sequential:
    return Sequential.of(
        Input(STEPS, FEATURES),
        Dense(5, activation="tanh", name="hidden"),
        Dense(CLASSES, activation="linear", name="dense"),
        seed=0,
    )


def _classifier(activation: str, units: int = CLASSES) -> Callable[[], Sequential]:
    return lambda: Sequential.of(Input(FEATURES), Dense(units, activation=activation, name="dense"), seed=0)


def _value_metrics() -> list[Any]:
    return [CosineSimilarity(), "mae", "mse", RootMeanSquaredError(), AUC(), Precision()]


# case -> (model, loss, metrics, weighted_metrics), as tools/keras_loss_metric_fixtures.py compiles Keras'
CASES: dict[str, tuple[Callable[[], Sequential], Any, list[Any], list[Any]]] = {
    "tagger_sparse": (
        _tagger,
        losses.SparseCategoricalCrossentropy(from_logits=True),
        [
            "sparse_categorical_accuracy",
            "accuracy",
            SparseTopKCategoricalAccuracy(k=2),
            losses.SparseCategoricalCrossentropy(from_logits=True),
        ],
        ["sparse_categorical_accuracy"],
    ),
    "tagger_categorical": (
        _tagger,
        losses.CategoricalCrossentropy(from_logits=True),
        ["categorical_accuracy"],
        ["categorical_accuracy", Precision(), MeanAbsoluteError(), CosineSimilarity()],
    ),
    "logits_categorical": (
        _classifier("linear"),
        losses.CategoricalCrossentropy(from_logits=True),
        [*_value_metrics(), losses.CategoricalCrossentropy(from_logits=True)],
        [],
    ),
    "softmax_categorical": (
        _classifier("softmax"),
        losses.CategoricalCrossentropy(),
        [*_value_metrics(), losses.CategoricalCrossentropy()],
        [],
    ),
    "logits_binary": (
        _classifier("linear", 3),
        losses.BinaryCrossentropy(from_logits=True),
        [*_value_metrics(), losses.BinaryCrossentropy(from_logits=True)],
        [],
    ),
    "loss_objects": (
        lambda: Sequential.of(Input(FEATURES), Dense(2, activation="softplus", name="dense"), seed=0),
        "mse",
        [
            losses.Huber(delta=0.5),
            LossMetric(losses.MeanSquaredError(), name="mse_object", per_batch=True),
            losses.Poisson,
            "mean_absolute_error",
        ],
        [],
    ),
}


def fixture(case: str) -> dict[str, np.ndarray]:
    return {name.split("/", 1)[1]: KERAS[name] for name in KERAS.files if name.startswith(case + "/")}


def compiled(case: str, engine: str = "portable") -> tuple[Sequential, dict[str, np.ndarray]]:
    make, loss, metrics, weighted_metrics = CASES[case]
    data, model = fixture(case), make()
    model.compile(
        optimizer=SGD(learning_rate=0.1), loss=loss, metrics=metrics, weighted_metrics=weighted_metrics, engine=engine
    )
    layers = [layer.name for layer in model.layers if f"{layer.name}.0" in data]
    model.set_weights(
        {f"{layer}.{name}": data[f"{layer}.{i}"] for layer in layers for i, name in enumerate(("kernel", "bias"))}
    )
    return model, data


def assert_keras_values(got: Mapping[str, Any], data: Mapping[str, np.ndarray], prefix: str) -> None:
    keys = json.loads(str(data["keys"]))
    assert sorted(got) == sorted(keys)
    for key in keys:
        np.testing.assert_allclose(got[key], data[f"{prefix}.{key}"], rtol=2e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("case", list(CASES))
def test_evaluate_and_fit_metrics_match_keras_3(case):
    model, k = compiled(case)
    x, y, w = k["x"], k["y"], k["sample_weight"]
    with model:
        assert_keras_values(model.evaluate(x, y, batch_size=BATCH, return_dict=True), k, "evaluate")
        weighted = model.evaluate(x, y, batch_size=BATCH, sample_weight=w, return_dict=True)
        assert_keras_values(weighted, k, "evaluate_weighted")
    model, k = compiled(case)
    with model:
        history = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, sample_weight=w)
        assert_keras_values(history.history, k, "history")


@pytest.mark.training
@pytest.mark.parametrize("case", ["tagger_sparse", "logits_categorical", "logits_binary"])
def test_ort_training_evaluates_the_same_metrics(case):
    model, k = compiled(case, "ort-training")
    with model:
        assert_keras_values(model.evaluate(k["x"], k["y"], batch_size=BATCH, return_dict=True), k, "evaluate")


# --- what the metrics read ----------------------------------------------------------------------------------------
def test_metrics_read_the_logits_a_from_logits_loss_says_the_model_ends_in_and_a_softmax_otherwise():
    logits = np.array([[2.0, -1.0, 0.5]], np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum()
    for loss, expected in [
        (losses.CategoricalCrossentropy(from_logits=True), logits),
        (losses.SparseCategoricalCrossentropy(from_logits=True), logits),
        (losses.BinaryCrossentropy(from_logits=True), logits),
        (losses.CategoricalCrossentropy(), probabilities),
        (losses.get("sparse_categorical_crossentropy"), probabilities),
        (losses.get("softmax_cross_entropy_with_logits"), probabilities),  # KotlinDL's metrics read its softmax
        (losses.MeanSquaredError(), logits),
    ]:
        np.testing.assert_allclose(model_outputs(logits, loss), expected, rtol=1e-6, err_msg=loss.name)


def test_class_indices_per_position_are_read_as_one_hot_targets_per_position():
    outputs = np.zeros((2, 3, 4), np.float32)
    labels = np.array([[0, 3, 1], [2, 2, 0]])
    _, y_true = keras_view(outputs, labels, losses.SparseCategoricalCrossentropy(from_logits=True))
    np.testing.assert_array_equal(y_true, np.eye(4)[labels])


def test_weighted_sums_weigh_each_position_as_keras_weighted_mean():
    values = np.arange(12, dtype=np.float64).reshape(2, 3, 2)  # [N, positions, units]
    per_position = np.array([[1.0, 0.0, 2.0], [0.5, 0.5, 0.0]])
    total, weight = weighted_sums(values, per_position)
    assert total / weight == pytest.approx((values.mean(axis=2) * per_position).sum() / per_position.sum())
    per_example = np.array([1.0, 3.0])
    total, weight = weighted_sums(values, per_example)
    assert (total, weight) == pytest.approx((values.reshape(2, -1).mean(axis=1) @ per_example, 4.0))
    per_example_values, mean_weights = values.reshape(2, -1).mean(axis=1), per_position.mean(axis=1)
    total, weight = weighted_sums(per_example_values, per_position)  # a value per example: its positions' mean weight
    assert total / weight == pytest.approx(per_example_values @ mean_weights / mean_weights.sum())


def test_confusion_counts_weigh_each_position_over_its_units():
    y_pred = np.array([[[0.9, 0.1], [0.2, 0.7]]], np.float32)  # [1, 2 positions, 2 units]
    y_true = np.array([[[1.0, 0.0], [1.0, 0.0]]], np.float32)
    tp, fp, _, fn = confusion_counts(y_true, y_pred, np.array([0.5]), False, np.array([[2.0, 3.0]]))
    assert (tp[0], fp[0], fn[0]) == (2.0, 3.0, 3.0)
