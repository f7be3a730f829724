"""Write Keras 3 reference numbers for the metric objects: tests/data/keras/metrics_extra.npz.

For each case, a Keras metric updated on three batches of different sizes (7, 5, 9 rows), so that a mean of
per-batch values would differ from the accumulated one, with sample weights for the weighted cases, and its result.
Predictions include values on Keras' threshold buckets' edges (0, 0.5, 1, k/199). The case's onnxtrain metric
config is stored next to it; tests/test_metrics_extra.py feeds the same batches to onnxtrain's metric and compares.
Also one evaluate of a fixed Dense(1, sigmoid) model with metrics and weighted_metrics and sample weights (Keras'
keys and values).

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_metric_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "metrics_extra.npz"
M = keras.metrics
SIZES = (7, 5, 9)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _batches(kind: str, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(our outputs, our labels, Keras' y_pred, Keras' y_true) per batch."""
    edges = np.array([0.0, 0.5, 1.0, 100 / 199, 37 / 199, 0.25], np.float32)
    batches = []
    for size in SIZES:
        if kind in ("binary", "multilabel"):
            units = 1 if kind == "binary" else 4
            p = rng.uniform(size=(size, units)).astype(np.float32)
            p.flat[: len(edges)] = edges[: p.size]
            y = (rng.uniform(size=(size, units)) < 0.45).astype(np.float32)
            batches.append((p, y, p, y))
        elif kind == "onehot":
            p = _softmax(rng.normal(size=(size, 5)) * 2)
            y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size)]
            batches.append((p, y, p, y))
        elif kind == "sparse_logits":  # onnxtrain's graphs output logits; Keras' model its softmax
            z = (rng.normal(size=(size, 5)) * 2).astype(np.float32)
            labels = rng.integers(0, 5, size)
            batches.append((z, labels, _softmax(z), np.eye(5, dtype=np.float32)[labels]))
        elif kind == "binary_logits":
            z = (rng.normal(size=(size, 1)) * 3).astype(np.float32)
            y = (rng.uniform(size=(size, 1)) < 0.5).astype(np.float32)
            batches.append((z, y, z, y))
        elif kind == "regression":
            p = rng.normal(size=(size, 3)).astype(np.float32)
            y = rng.normal(size=(size, 3)).astype(np.float32)
            batches.append((p, y, p, y))
        else:
            raise ValueError(kind)
    return batches


def _cfg(class_name: str, **config: Any) -> dict[str, Any]:
    return {"class_name": class_name, "config": config}


# case id -> (Keras metric, onnxtrain metric (a name or a config), batches kind, onnxtrain loss, weighted)
CASES: dict[str, tuple[Any, Any, str, str, bool]] = {
    "precision": (lambda: M.Precision(), "precision", "binary", "mse", False),
    "precision_threshold": (
        lambda: M.Precision(thresholds=0.3),
        _cfg("Precision", thresholds=0.3),
        "multilabel",
        "mse",
        False,
    ),
    "precision_top_k": (lambda: M.Precision(top_k=2), _cfg("Precision", top_k=2), "multilabel", "mse", False),
    "precision_class_id": (lambda: M.Precision(class_id=2), _cfg("Precision", class_id=2), "multilabel", "mse", False),
    "precision_top_k_class_id": (
        lambda: M.Precision(top_k=2, class_id=1),
        _cfg("Precision", top_k=2, class_id=1),
        "multilabel",
        "mse",
        False,
    ),
    "precision_sparse_class_id": (
        lambda: M.Precision(class_id=3, thresholds=0.25),
        _cfg("Precision", class_id=3, thresholds=0.25),
        "sparse_logits",
        "sparse",
        False,
    ),
    "recall": (lambda: M.Recall(), "recall", "binary", "mse", False),
    "recall_thresholds_list": (
        lambda: M.Recall(thresholds=[0.6]),
        _cfg("Recall", thresholds=[0.6]),
        "multilabel",
        "mse",
        False,
    ),
    "recall_top_k": (lambda: M.Recall(top_k=3), _cfg("Recall", top_k=3), "onehot", "mse", False),
    "recall_class_id": (lambda: M.Recall(class_id=0), _cfg("Recall", class_id=0), "multilabel", "mse", False),
    "auc": (lambda: M.AUC(), "auc", "binary", "mse", False),
    "auc_pr": (lambda: M.AUC(curve="PR"), _cfg("AUC", curve="PR"), "binary", "mse", False),
    "auc_flattened": (lambda: M.AUC(), "auc", "multilabel", "mse", False),
    "auc_multi_label": (lambda: M.AUC(multi_label=True), _cfg("AUC", multi_label=True), "multilabel", "mse", False),
    "auc_multi_label_pr": (
        lambda: M.AUC(multi_label=True, curve="PR"),
        _cfg("AUC", multi_label=True, curve="PR"),
        "multilabel",
        "mse",
        False,
    ),
    "auc_thresholds": (
        lambda: M.AUC(thresholds=[0.1, 0.35, 0.5, 0.9]),
        _cfg("AUC", thresholds=[0.1, 0.35, 0.5, 0.9]),
        "binary",
        "mse",
        False,
    ),
    "auc_thresholds_pr": (
        lambda: M.AUC(thresholds=[0.9, 0.1, 0.35, 0.5], curve="PR"),
        _cfg("AUC", thresholds=[0.9, 0.1, 0.35, 0.5], curve="PR"),
        "multilabel",
        "mse",
        False,
    ),
    "auc_thresholds_even": (
        lambda: M.AUC(thresholds=[0.25, 0.5, 0.75]),
        _cfg("AUC", thresholds=[0.25, 0.5, 0.75]),
        "multilabel",
        "mse",
        False,
    ),
    "auc_num_thresholds": (lambda: M.AUC(num_thresholds=7), _cfg("AUC", num_thresholds=7), "binary", "mse", False),
    "auc_minoring": (
        lambda: M.AUC(summation_method="minoring"),
        _cfg("AUC", summation_method="minoring"),
        "multilabel",
        "mse",
        False,
    ),
    "auc_majoring_pr": (
        lambda: M.AUC(summation_method="majoring", curve="PR"),
        _cfg("AUC", summation_method="majoring", curve="PR"),
        "multilabel",
        "mse",
        False,
    ),
    "auc_from_logits": (
        lambda: M.AUC(from_logits=True),
        _cfg("AUC", from_logits=True),
        "binary_logits",
        "bce_logits",
        False,
    ),
    "auc_sparse": (lambda: M.AUC(), "auc", "sparse_logits", "sparse", False),
    "f1_macro": (lambda: M.F1Score(average="macro"), _cfg("F1Score", average="macro"), "onehot", "mse", False),
    "f1_micro": (lambda: M.F1Score(average="micro"), _cfg("F1Score", average="micro"), "onehot", "mse", False),
    "f1_weighted_average": (
        lambda: M.F1Score(average="weighted", threshold=0.4),
        _cfg("F1Score", average="weighted", threshold=0.4),
        "multilabel",
        "mse",
        False,
    ),
    "fbeta_macro": (
        lambda: M.FBetaScore(average="macro", beta=2.0),
        _cfg("FBetaScore", average="macro", beta=2.0),
        "sparse_logits",
        "sparse",
        False,
    ),
    "top_k": (lambda: M.TopKCategoricalAccuracy(k=2), _cfg("TopKCategoricalAccuracy", k=2), "onehot", "cce", False),
    "sparse_top_k": (
        lambda: M.SparseTopKCategoricalAccuracy(k=3),
        _cfg("SparseTopKCategoricalAccuracy", k=3),
        "sparse_logits",
        "sparse",
        False,
    ),
    # weighted_metrics: each example weighted by its sample weight
    "weighted_precision": (lambda: M.Precision(), "precision", "multilabel", "mse", True),
    "weighted_recall_top_k": (lambda: M.Recall(top_k=2), _cfg("Recall", top_k=2), "onehot", "mse", True),
    "weighted_auc": (lambda: M.AUC(), "auc", "binary", "mse", True),
    "weighted_auc_pr_thresholds": (
        lambda: M.AUC(curve="PR", thresholds=[0.2, 0.45, 0.8]),
        _cfg("AUC", curve="PR", thresholds=[0.2, 0.45, 0.8]),
        "binary",
        "mse",
        True,
    ),
    "weighted_auc_multi_label": (
        lambda: M.AUC(multi_label=True),
        _cfg("AUC", multi_label=True),
        "multilabel",
        "mse",
        True,
    ),
    "weighted_f1": (lambda: M.F1Score(average="macro"), _cfg("F1Score", average="macro"), "onehot", "mse", True),
    "weighted_binary_accuracy": (lambda: M.BinaryAccuracy(), "binary_accuracy", "multilabel", "bce", True),
    "weighted_categorical_accuracy": (lambda: M.CategoricalAccuracy(), "categorical_accuracy", "onehot", "cce", True),
    "weighted_sparse_accuracy": (
        lambda: M.SparseCategoricalAccuracy(),
        "sparse_categorical_accuracy",
        "sparse_logits",
        "sparse",
        True,
    ),
    "weighted_top_k": (
        lambda: M.TopKCategoricalAccuracy(k=2),
        _cfg("TopKCategoricalAccuracy", k=2),
        "onehot",
        "cce",
        True,
    ),
    "weighted_mae": (lambda: M.MeanAbsoluteError(), "mae", "regression", "mse", True),
    "weighted_rmse": (lambda: M.RootMeanSquaredError(), "root_mean_squared_error", "regression", "mse", True),
}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    _evaluate_case(arrays)  # first: Keras numbers the default names of later instances ("precision_7")
    for index, (case, (make, ours, kind, loss, weighted)) in enumerate(CASES.items()):
        rng = np.random.default_rng(100 + index)
        metric = make()
        for i, (outputs, labels, y_pred, y_true) in enumerate(_batches(kind, rng)):
            weights = rng.uniform(0, 2, len(outputs)).astype(np.float32) if weighted else None
            if weights is not None:
                weights[0] = 0.0  # a dropped example
                arrays[f"{case}.weights.{i}"] = weights
            if kind == "sparse_logits" and case.startswith(("sparse_top_k", "weighted_sparse")):
                y_true = labels  # Keras' sparse metrics take the class indices
            metric.update_state(y_true, y_pred, sample_weight=weights)
            arrays[f"{case}.outputs.{i}"] = outputs
            arrays[f"{case}.labels.{i}"] = labels
        arrays[f"{case}.value"] = np.asarray(metric.result(), np.float64)
        arrays[f"{case}.config"] = np.array(json.dumps(ours))
        arrays[f"{case}.loss"] = np.array(loss)
        arrays[f"{case}.weighted"] = np.array(weighted)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(CASES)} cases)")


def _evaluate_case(arrays: dict[str, np.ndarray]) -> None:
    """A Dense(1, sigmoid) of fixed weights, evaluated in batches of 7 with sample weights: Keras' key and value of
    each metric and weighted metric."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = (rng.uniform(size=(30, 1)) < 0.5).astype(np.float32)
    w = rng.uniform(0, 2, 30).astype(np.float32)
    kernel = (rng.normal(size=(4, 1)) * 0.8).astype(np.float32)
    bias = np.array([0.1], np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer="sgd",
        loss="binary_crossentropy",
        metrics=["accuracy", M.Precision(), "auc", M.AUC(curve="PR", name="pr_auc")],
        weighted_metrics=["accuracy", "mae", M.AUC(name="wauc"), M.Recall()],
    )
    model.set_weights([kernel, bias])
    result = model.evaluate(x, y, sample_weight=w, batch_size=7, return_dict=True, verbose=0)
    arrays.update({"evaluate.x": x, "evaluate.y": y, "evaluate.w": w, "evaluate.kernel": kernel, "evaluate.bias": bias})
    arrays["evaluate.keys"] = np.array(sorted(result))
    for key, value in result.items():
        arrays[f"evaluate.value.{key}"] = np.asarray(value, np.float64)


if __name__ == "__main__":
    main()
