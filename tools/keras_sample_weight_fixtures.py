"""Write Keras 3 reference numbers for sample and class weights: tests/data/keras/sample_weights.npz.

Each case is one Dense layer with seeded starting weights, trained by `fit` with plain SGD (learning rate 0.1, no
shuffle, batch 8 over 20 examples: a last batch of 4), then evaluated with weights. Stored per case: the starting
kernel and bias, the data and weights, each epoch's `loss` from the History, the kernel and bias after fit, and
`evaluate`'s loss with and without weights. tests/test_sample_weights.py rebuilds the same layer in onnxtrain and
compares, without Keras installed.

Cases: class_weight on a 2-class softmax (sparse cross-entropy); class_weight on a one-unit sigmoid (binary
cross-entropy, 0/1 targets); sample_weight on a regression (MSE) whose kernel has an L2 penalty (Keras adds it
unweighted); validation data given as (x, y, sample_weight).

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_sample_weight_fixtures.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "sample_weights.npz"
EXAMPLES, FEATURES, BATCH, EPOCHS, LEARNING_RATE = 20, 3, 8, 2, 0.1
L2 = 0.01


def _case(
    name: str,
    loss: str,
    units: int,
    activation: str,
    y: np.ndarray,
    seed: int,
    sample_weight: np.ndarray | None = None,
    class_weight: dict[int, float] | None = None,
    regularized: bool = False,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    kernel = rng.normal(scale=0.5, size=(FEATURES, units)).astype(np.float32)
    bias = rng.normal(scale=0.1, size=(units,)).astype(np.float32)
    evaluation_weight = rng.uniform(0.0, 3.0, size=EXAMPLES).astype(np.float32)
    evaluation_weight[:3] = 0.0  # zero weights drop examples (they still count in the batch size)
    dense = keras.layers.Dense(
        units, activation=activation, kernel_regularizer=keras.regularizers.L2(L2) if regularized else None
    )
    model = keras.Sequential([keras.Input((FEATURES,)), dense])
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=loss)
    dense.set_weights([kernel, bias])
    unweighted_before = model.evaluate(x, y, batch_size=BATCH, verbose=0)
    weighted_before = model.evaluate(x, y, batch_size=BATCH, sample_weight=evaluation_weight, verbose=0)
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        sample_weight=sample_weight,
        class_weight=class_weight,
        validation_data=(x, y, evaluation_weight),
    )
    after_kernel, after_bias = dense.get_weights()
    arrays = {
        "x": x,
        "y": y,
        "start_kernel": kernel,
        "start_bias": bias,
        "evaluation_weight": evaluation_weight,
        "evaluate_unweighted": np.float64(unweighted_before),
        "evaluate_weighted": np.float64(weighted_before),
        "loss": np.array(history.history["loss"], np.float64),
        "val_loss": np.array(history.history["val_loss"], np.float64),
        "kernel": after_kernel,
        "bias": after_bias,
    }
    if sample_weight is not None:
        arrays["sample_weight"] = sample_weight
    if class_weight is not None:
        arrays["class_weight"] = np.array([class_weight.get(k, 1.0) for k in range(max(units, 2))], np.float32)
    return {f"{name}/{key}": value for key, value in arrays.items()}


def main() -> None:
    rng = np.random.default_rng(7)
    classes = rng.integers(0, 2, EXAMPLES).astype(np.int64)
    binary = rng.integers(0, 2, EXAMPLES).astype(np.float32).reshape(-1, 1)
    targets = rng.normal(size=(EXAMPLES, 2)).astype(np.float32)
    weights = rng.uniform(0.0, 2.0, EXAMPLES).astype(np.float32)
    weights[5] = 0.0
    arrays: dict[str, np.ndarray] = {}
    arrays.update(
        _case(
            "softmax_class_weight", "sparse_categorical_crossentropy", 2, "softmax", classes, 1, None, {0: 1.0, 1: 5.0}
        )
    )
    arrays.update(_case("sigmoid_class_weight", "binary_crossentropy", 1, "sigmoid", binary, 2, None, {0: 0.5, 1: 3.0}))
    arrays.update(_case("mse_sample_weight", "mse", 2, "linear", targets, 3, weights, None, regularized=True))
    arrays["keras_version"] = np.array(keras.__version__)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
