"""Write Keras 3 reference numbers for sparse cross-entropy per position, weighted metrics per position, losses
given as metrics and the metrics of a model that ends in logits: tests/data/keras/keras_loss_metric_parity.npz.

Each case is a small model with seeded starting weights, compiled with SGD (learning rate 0.1) and run over 20
examples in batches of 8 (a last batch of 4, which Keras' mean of batch means counts as a whole batch):

* `tagger_sparse`: a tagger (Dense layers over (T, F) steps) ending in logits, SparseCategoricalCrossentropy
  (from_logits=True) on (N, T) class indices; metrics "sparse_categorical_accuracy", "accuracy" (Keras 3 resolves it
  to the sparse one here), SparseTopKCategoricalAccuracy(k=2) and the loss object as a metric; weighted_metrics
  "sparse_categorical_accuracy" with (N, T) weights.
* `tagger_categorical`: the same tagger on one-hot (N, T, C) targets, CategoricalCrossentropy(from_logits=True);
  weighted_metrics per position: categorical accuracy, Precision, MeanAbsoluteError and CosineSimilarity.
* `logits_categorical`, `softmax_categorical`, `logits_binary`: a Dense classifier ending in logits
  (CategoricalCrossentropy(from_logits=True); BinaryCrossentropy(from_logits=True), 3 labels) or in a softmax
  (CategoricalCrossentropy()), with the metrics that read values: CosineSimilarity, "mae", "mse",
  RootMeanSquaredError, AUC, Precision and the loss object. Keras' metrics read the model's outputs: logits, or
  the softmax's probabilities.
* `loss_objects`: a regression Dense with losses as metrics: objects (Huber(delta=0.5), MeanSquaredError), a loss
  class (Poisson, which Keras makes an object of) and a loss name ("mean_absolute_error", Keras' function).

Stored per case: each layer's starting weights (`<layer>.<i>`, Keras' get_weights order), the data and weights,
the keys Keras logs, `evaluate` without and with weights (`evaluate.<key>`, `evaluate_weighted.<key>`; the weights
are (N, T) for the taggers, (N,) otherwise), one `train_on_batch` on the first 8 examples with weights
(`step_loss`, weights after it as `step.<layer>.<i>`) and without (`step_unweighted_loss`,
`step_unweighted.<layer>.<i>`), and a two-epoch fit with weights (`history.<key>`, weights after it as
`fit.<layer>.<i>`). tests/test_losses_per_position.py and tests/test_metrics_keras_parity.py compare,
without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_loss_metric_fixtures.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "keras_loss_metric_parity.npz"
EXAMPLES, BATCH, EPOCHS, LEARNING_RATE = 20, 8, 2, 0.1
STEPS, FEATURES, CLASSES = 5, 3, 4


def _tagger() -> keras.Model:
    x = keras.Input((STEPS, FEATURES))
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(x)
    return keras.Model(x, keras.layers.Dense(CLASSES, name="dense")(hidden))


def _classifier(activation: str | None, units: int = CLASSES) -> Callable[[], keras.Model]:
    def make() -> keras.Model:
        x = keras.Input((FEATURES,))
        return keras.Model(x, keras.layers.Dense(units, activation=activation, name="dense")(x))

    return make


def _regression() -> keras.Model:
    x = keras.Input((FEATURES,))
    return keras.Model(x, keras.layers.Dense(2, activation="softplus", name="dense")(x))


def _value_metrics() -> list[Any]:
    return [
        keras.metrics.CosineSimilarity(),
        "mae",
        "mse",
        keras.metrics.RootMeanSquaredError(),
        keras.metrics.AUC(name="auc"),  # (named: Keras would number a second one "auc_1")
        keras.metrics.Precision(name="precision"),
    ]


# case -> (model, loss, metrics, weighted_metrics)
CASES: dict[str, tuple[Callable[[], keras.Model], Callable[[], Any], Callable[[], list[Any]], Callable[[], list[Any]]]]
CASES = {
    "tagger_sparse": (
        _tagger,
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda: [
            "sparse_categorical_accuracy",
            "accuracy",
            keras.metrics.SparseTopKCategoricalAccuracy(k=2),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ],
        lambda: ["sparse_categorical_accuracy"],
    ),
    "tagger_categorical": (
        _tagger,
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
        lambda: ["categorical_accuracy"],
        lambda: [
            "categorical_accuracy",
            keras.metrics.Precision(name="precision"),
            keras.metrics.MeanAbsoluteError(),
            keras.metrics.CosineSimilarity(),
        ],
    ),
    "logits_categorical": (
        _classifier(None),
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
        lambda: [*_value_metrics(), keras.losses.CategoricalCrossentropy(from_logits=True)],
        lambda: [],
    ),
    "softmax_categorical": (
        _classifier("softmax"),
        lambda: keras.losses.CategoricalCrossentropy(),
        lambda: [*_value_metrics(), keras.losses.CategoricalCrossentropy()],
        lambda: [],
    ),
    "logits_binary": (
        _classifier(None, 3),
        lambda: keras.losses.BinaryCrossentropy(from_logits=True),
        lambda: [*_value_metrics(), keras.losses.BinaryCrossentropy(from_logits=True)],
        lambda: [],
    ),
    "loss_objects": (
        _regression,
        lambda: "mse",
        lambda: [
            keras.losses.Huber(delta=0.5),
            keras.losses.MeanSquaredError(name="mse_object"),
            keras.losses.Poisson,
            "mean_absolute_error",
        ],
        lambda: [],
    ),
}


def _data(case: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and the weights of `case`: (N, T) for the taggers, (N,) otherwise."""
    if case.startswith("tagger"):
        x = rng.normal(size=(EXAMPLES, STEPS, FEATURES)).astype(np.float32)
        classes = rng.integers(0, CLASSES, (EXAMPLES, STEPS))
        y = classes if case == "tagger_sparse" else np.eye(CLASSES, dtype=np.float32)[classes]
        weights = rng.uniform(0.0, 2.0, (EXAMPLES, STEPS)).astype(np.float32)
        weights[rng.uniform(size=weights.shape) < 0.2] = 0.0
        return x, y, weights
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    weights = rng.uniform(0.0, 2.0, EXAMPLES).astype(np.float32)
    if case == "loss_objects":
        return x, rng.uniform(0.0, 3.0, (EXAMPLES, 2)).astype(np.float32), weights
    if case == "logits_binary":
        return x, rng.integers(0, 2, (EXAMPLES, 3)).astype(np.float32), weights
    return x, np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, EXAMPLES)], weights


def _layer_weights(model: keras.Model, prefix: str = "") -> dict[str, np.ndarray]:
    return {
        f"{prefix}{layer.name}.{i}": np.asarray(w) for layer in model.layers for i, w in enumerate(layer.get_weights())
    }


def _case(case: str, seed: int) -> dict[str, np.ndarray]:
    make, loss, metrics, weighted_metrics = CASES[case]
    rng = np.random.default_rng(seed)
    x, y, weights = _data(case, rng)
    keras.utils.set_random_seed(seed)
    start = make()
    arrays: dict[str, np.ndarray] = {"x": x, "y": y, "sample_weight": weights, **_layer_weights(start)}

    def fresh() -> keras.Model:
        model = make()
        model.compile(
            optimizer=keras.optimizers.SGD(LEARNING_RATE),
            loss=loss(),
            metrics=metrics(),
            weighted_metrics=weighted_metrics(),
        )
        model.set_weights(start.get_weights())
        return model

    model = fresh()
    plain = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    weighted = model.evaluate(x, y, batch_size=BATCH, sample_weight=weights, verbose=0, return_dict=True)
    arrays["keys"] = np.array(json.dumps(list(plain)))
    arrays.update({f"evaluate.{key}": np.float64(value) for key, value in plain.items()})
    arrays.update({f"evaluate_weighted.{key}": np.float64(value) for key, value in weighted.items()})
    step = model.train_on_batch(x[:BATCH], y[:BATCH], sample_weight=weights[:BATCH], return_dict=True)
    arrays["step_loss"] = np.float64(step["loss"])
    arrays.update(_layer_weights(model, "step."))
    model = fresh()
    arrays["step_unweighted_loss"] = np.float64(model.train_on_batch(x[:BATCH], y[:BATCH], return_dict=True)["loss"])
    arrays.update(_layer_weights(model, "step_unweighted."))
    model = fresh()
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0, sample_weight=weights).history
    arrays.update({f"history.{key}": np.array(values, np.float64) for key, values in history.items()})
    arrays.update(_layer_weights(model, "fit."))
    return {f"{case}/{key}": value for key, value in arrays.items()}


def main() -> None:
    arrays: dict[str, np.ndarray] = {"keras_version": np.array(keras.__version__)}
    for seed, case in enumerate(CASES, start=31):
        arrays.update(_case(case, seed))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
