"""Write Keras 3 reference numbers for the loss and metric tests: tests/data/keras/losses.npz.

For each loss case, a Dense layer with seeded weights on a seeded batch: Keras' loss value before a step, and the
kernel and bias after one SGD step (learning rate 0.1) on the whole batch, which checks the gradient. For each
metric case, Keras' metric on a fixed batch of outputs and labels. The tests rebuild the same Dense in onnxtrain,
train one step on each engine and compare, without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_loss_fixtures.py
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "losses.npz"
K = keras.losses
BATCH, FEATURES = 6, 4

# case id -> (Keras loss, units, activation, targets kind); the ids are the rows of tests/test_losses.py
LOSS_CASES = {
    "categorical_crossentropy": (lambda: K.CategoricalCrossentropy(), 4, "softmax", "one_hot"),
    "categorical_crossentropy_from_logits": (
        lambda: K.CategoricalCrossentropy(from_logits=True),
        4,
        "linear",
        "one_hot",
    ),
    "categorical_crossentropy_smoothing": (
        lambda: K.CategoricalCrossentropy(label_smoothing=0.2),
        3,
        "softmax",
        "soft",
    ),
    "binary_crossentropy_smoothing": (lambda: K.BinaryCrossentropy(label_smoothing=0.1), 2, "sigmoid", "binary"),
    "binary_crossentropy_from_logits": (lambda: K.BinaryCrossentropy(from_logits=True), 2, "linear", "binary"),
    "binary_crossentropy_from_logits_smoothing": (
        lambda: K.BinaryCrossentropy(from_logits=True, label_smoothing=0.3),
        3,
        "linear",
        "soft",
    ),
    "kl_divergence": (lambda: K.KLDivergence(), 3, "softmax", "soft"),
    "poisson": (lambda: K.Poisson(), 2, "sigmoid", "counts"),
    "log_cosh": (lambda: K.LogCosh(), 2, "linear", "normal"),
    "mean_absolute_percentage_error": (lambda: K.MeanAbsolutePercentageError(), 2, "linear", "normal"),
    "mean_squared_logarithmic_error": (lambda: K.MeanSquaredLogarithmicError(), 2, "sigmoid", "counts"),
    "hinge": (lambda: K.Hinge(), 2, "linear", "binary"),
    "hinge_signs": (lambda: K.Hinge(), 2, "linear", "signs"),
    "squared_hinge": (lambda: K.SquaredHinge(), 2, "linear", "binary"),
    "cosine_similarity": (lambda: K.CosineSimilarity(), 3, "linear", "normal"),
}

M = keras.metrics
# case id -> (Keras metric, outputs kind, labels kind); outputs are 5 classes so top-5 is not trivially 1
METRIC_CASES = {
    "binary_accuracy": (lambda: M.BinaryAccuracy(), "probabilities", "binary"),
    "categorical_accuracy": (lambda: M.CategoricalAccuracy(), "probabilities", "one_hot"),
    "sparse_categorical_accuracy": (lambda: M.SparseCategoricalAccuracy(), "probabilities", "indices"),
    "top_k_categorical_accuracy": (lambda: M.TopKCategoricalAccuracy(k=5), "probabilities7", "one_hot7"),
    "sparse_top_k_categorical_accuracy": (lambda: M.SparseTopKCategoricalAccuracy(k=5), "probabilities7", "indices7"),
    "binary_accuracy_logits": (lambda: M.BinaryAccuracy(threshold=0.0), "logits", "binary"),
}


def targets(kind: str, units: int, rng: np.random.Generator, n: int = BATCH) -> np.ndarray:
    if kind in ("one_hot", "one_hot7"):
        return np.eye(units, dtype=np.float32)[rng.integers(0, units, n)]
    if kind == "soft":
        raw = rng.uniform(0.05, 1.0, (n, units))
        return (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)
    if kind == "binary":
        return rng.integers(0, 2, (n, units)).astype(np.float32)
    if kind == "signs":
        return rng.choice([-1.0, 1.0], (n, units)).astype(np.float32)
    if kind == "counts":
        return rng.integers(0, 5, (n, units)).astype(np.float32)
    return rng.normal(0.0, 1.5, (n, units)).astype(np.float32)


def loss_case(case_id: str, make, units: int, activation: str, kind: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    x = rng.uniform(-1.5, 1.5, (BATCH, FEATURES)).astype(np.float32)
    kernel = rng.normal(0.0, 0.6, (FEATURES, units)).astype(np.float32)
    bias = rng.normal(0.0, 0.3, (units,)).astype(np.float32)
    y = targets(kind, units, rng)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(units, activation=activation)])
    model.set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=make())
    value = model.evaluate(x, y, batch_size=BATCH, verbose=0)
    model.train_on_batch(x, y)
    kernel_after, bias_after = model.get_weights()
    prefix = f"{case_id}."
    return {
        prefix + "x": x,
        prefix + "y": y,
        prefix + "kernel": kernel,
        prefix + "bias": bias,
        prefix + "loss": np.float32(value),
        prefix + "kernel_after": kernel_after,
        prefix + "bias_after": bias_after,
    }


def metric_case(case_id: str, make, outputs_kind: str, labels_kind: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    n, classes = 40, 7 if outputs_kind.endswith("7") else 3
    logits = rng.normal(0.0, 2.0, (n, classes)).astype(np.float32)
    if outputs_kind.startswith("probabilities"):
        outputs = np.asarray(keras.ops.softmax(logits), np.float32)
        if labels_kind == "binary":
            outputs = np.asarray(keras.ops.sigmoid(logits), np.float32)
    else:
        outputs = logits
    if labels_kind.startswith("indices"):
        labels = rng.integers(0, classes, n)
    else:
        labels = targets(labels_kind, classes, rng, n)
    metric = make()
    metric.update_state(labels, outputs)
    prefix = f"metric.{case_id}."
    return {prefix + "outputs": outputs, prefix + "labels": labels, prefix + "value": np.float32(metric.result())}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for case_id, (make, units, activation, kind) in LOSS_CASES.items():
        arrays.update(loss_case(case_id, make, units, activation, kind))
    for case_id, (make, outputs_kind, labels_kind) in METRIC_CASES.items():
        arrays.update(metric_case(case_id, make, outputs_kind, labels_kind))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(LOSS_CASES)} loss cases, {len(METRIC_CASES)} metric cases)")


if __name__ == "__main__":
    main()
