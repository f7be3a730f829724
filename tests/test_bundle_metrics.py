"""The compiled metrics in a training bundle: onnxtrain-js' fit (Node.js) reports the History Python's fit reports,
key for key and value for value, for the accuracies, their top-k and the errors under each kind of loss; metrics it
does not compute are named and left out."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from onnxtrain import Sequential, metrics
from onnxtrain.bundle import read_metadata
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import BinaryCrossentropy
from onnxtrain.metrics import BinaryAccuracy, SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy
from tests.js_harness import ORT_NODE, missing_js_dependencies, node_script

RNG = np.random.default_rng(12)
X = RNG.random((40, 5), dtype=np.float32)
CLASSES = RNG.integers(0, 4, 40)
STEPS = RNG.normal(size=(40, 3, 2)).astype(np.float32)  # a tagger's examples: 3 steps of 2 features
STEP_CLASSES = RNG.integers(0, 4, (40, 3))


def _regression():
    return "linear", "mse", ["mae", "mse", "RootMeanSquaredError", "msle"], (X @ RNG.random((5, 4))).astype(np.float32)


def _sparse():
    metrics = ["accuracy", "sparse_categorical_accuracy", SparseTopKCategoricalAccuracy(k=2), "mae", "mse"]
    return "linear", "sparse_categorical_crossentropy", metrics, CLASSES


def _categorical():
    metrics = ["acc", "categorical_accuracy", TopKCategoricalAccuracy(k=2, name="top2"), "mse"]
    return "softmax", "categorical_crossentropy", metrics, np.eye(4, dtype=np.float32)[CLASSES]


def _binary_logits():
    metrics = ["accuracy", BinaryAccuracy(threshold=0.3), "mae"]
    targets = (X[:, :4] > 0.5).astype(np.float32)
    return "linear", BinaryCrossentropy(from_logits=True), metrics, targets


def _binary():
    targets = (X[:, :4] > 0.5).astype(np.float32)
    return "sigmoid", "binary_crossentropy", ["binary_accuracy", "msle", "auc"], targets


def _class_forms():
    # ReLU outputs and targets are exactly 0 in places, so that Keras' Accuracy (values equal) is not 0
    metrics_ = [
        metrics.MeanAbsoluteError(),
        metrics.MeanSquaredError(name="squared"),
        metrics.RootMeanSquaredError(),
        metrics.MeanSquaredLogarithmicError(),
        "msle",
        metrics.Accuracy(),
    ]
    return "relu", "mse", metrics_, np.maximum(X[:, :4] - 0.5, 0)


def _tagger_sparse():
    metrics_ = ["accuracy", "sparse_categorical_accuracy", SparseTopKCategoricalAccuracy(k=2), "msle", "mae"]
    return "linear", "sparse_categorical_crossentropy", metrics_, STEP_CLASSES


def _tagger_one_hot():
    metrics_ = ["acc", "categorical_accuracy", TopKCategoricalAccuracy(k=2), metrics.MeanSquaredLogarithmicError()]
    return "softmax", "categorical_crossentropy", metrics_, np.eye(4, dtype=np.float32)[STEP_CLASSES]


NODE = """
const trainer = await Trainer.load(ort, BUNDLE);
const warned = [];
console.warn = (message) => void warned.push(message);
const options = { epochs: 2, batchSize: 8, shuffle: false, validationSplit: 0.25 };
const h = await trainer.fit(Float32Array.from(X), TARGETS, options);
const e = await trainer.evaluate(Float32Array.from(X), TARGETS);
delete e.logits;
result = { history: h.history, evaluate: e, metrics: trainer.metrics, skipped: trainer.skippedMetrics, warned };
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [_regression, _sparse, _categorical, _binary_logits, _binary, _class_forms, _tagger_sparse, _tagger_one_hot],
    ids=lambda c: c.__name__,
)
def test_node_fit_reports_pythons_history_for_the_compiled_metrics(tmp_path, case):
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    activation, loss, metrics_, targets = case()
    x = STEPS if case.__name__.startswith("_tagger") else X  # a tagger's output: (3, 4), a class per step
    model = Sequential.of(Input(*x.shape[1:]), Dense(8), Dense(4, activation=activation), seed=4)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Accuracy's, of a metric that compares values
        model.compile(optimizer="adam", loss=loss, metrics=metrics_)
        model.export_training_bundle(tmp_path / "b")
        history = model.fit(x, targets, epochs=2, batch_size=8, shuffle=False, verbose=0, validation_split=0.25)
        evaluated = model.evaluate(x, targets, return_dict=True)
    labels = targets.ravel().astype(np.int64 if targets.dtype.kind == "i" else np.float32).tolist()
    body = (
        f"const BUNDLE = {json.dumps(str(tmp_path / 'b'))};\n"
        f"const X = {json.dumps(x.ravel().tolist())}, TARGETS = {json.dumps(labels)};\n" + NODE
    )
    node = node_script(body, tmp_path)
    skipped = [e["name"] for e in read_metadata(tmp_path / "b")["metrics"] if e["metric"] is None]
    assert node["skipped"] == skipped
    assert bool(node["warned"]) == bool(skipped)
    expected = {k: v for k, v in history.history.items() if k.removeprefix("val_") not in skipped}
    assert set(node["history"]) == set(expected)  # (the order of Python's keys is its History's own matter)
    for key, values in expected.items():
        np.testing.assert_allclose(node["history"][key], values, rtol=2e-5, atol=1e-7, err_msg=key)
    for key, value in evaluated.items():
        if key not in skipped:
            assert node["evaluate"][key] == pytest.approx(value, rel=2e-5, abs=1e-7), key


class _DoubledLogError(metrics.MeanSquaredLogarithmicError):
    """A subclass of one's own, which computes otherwise than the class onnxtrain-js computes."""

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return 2 * super().values(y_true, y_pred)


def _max_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.max(np.abs(y_true - y_pred), axis=-1)


def test_bundle_json_names_what_onnxtrain_js_computes_for_each_form_of_a_metric(tmp_path):
    given = {
        "msle": "msle",
        "mean_squared_logarithmic_error": "msle",
        "MeanSquaredLogarithmicError_1": "msle",  # metrics.MeanSquaredLogarithmicError(), renamed
        "MeanAbsoluteError": "mae",
        "mean_squared_error": "mse",
        "RootMeanSquaredError": "root_mean_squared_error",
        "equal": "equal_values",
        "accuracy": "accuracy",
        "auc": None,
        "doubled": None,
        "_max_error": None,
        "weighted_mae": None,
    }
    compiled = [
        "msle",
        "mean_squared_logarithmic_error",
        metrics.MeanSquaredLogarithmicError(name="MeanSquaredLogarithmicError_1"),
        "MeanAbsoluteError",
        metrics.MeanSquaredError(),
        "RootMeanSquaredError",
        metrics.Accuracy(name="equal"),
        "accuracy",
        "auc",
        _DoubledLogError(name="doubled"),
        _max_error,
    ]
    with Sequential.of(Input(5), Dense(4, activation="sigmoid"), seed=1) as model:
        model.compile(
            optimizer="adam", loss="mse", metrics=compiled, weighted_metrics=[metrics.MeanAbsoluteError("weighted_mae")]
        )
        model.export_training_bundle(tmp_path / "b")
    entries = read_metadata(tmp_path / "b")["metrics"]
    assert {e["name"]: e["metric"] for e in entries} == given
    assert [e["name"] for e in entries] == list(given)
