"""The compiled metrics in a training bundle: onnxtrain-js' fit (Node.js) reports the History Python's fit reports,
key for key and value for value, for the accuracies, their top-k and the errors under each kind of loss; metrics it
does not compute are named and left out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.bundle import read_metadata
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import BinaryCrossentropy
from onnxtrain.metrics import BinaryAccuracy, SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy
from tests.js_harness import ORT_NODE, missing_js_dependencies, node_script

RNG = np.random.default_rng(12)
X = RNG.random((40, 5), dtype=np.float32)
CLASSES = RNG.integers(0, 4, 40)


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
    "case", [_regression, _sparse, _categorical, _binary_logits, _binary], ids=lambda c: c.__name__
)
def test_node_fit_reports_pythons_history_for_the_compiled_metrics(tmp_path, case):
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    activation, loss, metrics, targets = case()
    model = Sequential.of(Input(5), Dense(8), Dense(4, activation=activation), seed=4)
    with model:
        model.compile(optimizer="adam", loss=loss, metrics=metrics)
        model.export_training_bundle(tmp_path / "b")
        history = model.fit(X, targets, epochs=2, batch_size=8, shuffle=False, verbose=0, validation_split=0.25)
        evaluated = model.evaluate(X, targets, return_dict=True)
    labels = targets.astype(np.int64).tolist() if targets.dtype.kind == "i" else targets.ravel().tolist()
    body = (
        f"const BUNDLE = {json.dumps(str(tmp_path / 'b'))};\n"
        f"const X = {json.dumps(X.ravel().tolist())}, TARGETS = {json.dumps(labels)};\n" + NODE
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
