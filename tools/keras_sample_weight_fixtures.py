"""Write Keras 3 reference numbers for sample and class weights: tests/data/keras/sample_weights.npz and
tests/data/keras/sample_weights_sequences.npz.

sample_weights.npz: each case is one Dense layer with seeded starting weights, trained by `fit` with plain SGD
(learning rate 0.1, no shuffle, batch 8 over 20 examples: a last batch of 4), then evaluated with weights. Stored per
case: the starting kernel and bias, the data and weights, each epoch's `loss` from the History, the kernel and bias
after fit, and `evaluate`'s loss with and without weights. tests/test_sample_weights.py rebuilds the same layer in
onnxtrain and compares, without Keras installed.

Cases: class_weight on a 2-class softmax (sparse cross-entropy); class_weight on a one-unit sigmoid (binary
cross-entropy, 0/1 targets); sample_weight on a regression (MSE) whose kernel has an L2 penalty (Keras adds it
unweighted); validation data given as (x, y, sample_weight).

sample_weights_sequences.npz: outputs with a time axis weighed per position, sample_weight of shape (N, T) as Keras 3
takes it there (it refuses (N,) for them): a tagger over ids padded with 0 (Embedding(mask_zero=True) -> LSTM
(return_sequences) -> Dense logits, categorical cross-entropy; the mask weighs the loss too), the same with the
weights given as (N, T, 1), an unmasked sequence regression (MSE), and a Masking layer before a sigmoid per step
(binary cross-entropy). Stored per case: each layer's starting weights (`<layer>.<i>`, Keras' get_weights order),
the data and weights, `evaluate`'s loss with and without weights, one `train_on_batch` on the first 8 examples
(`step_loss`, weights after it as `step.<layer>.<i>`), and a fit as above (`loss`, `val_loss`, weights after it as
`fit.<layer>.<i>`). tests/test_sample_weights_sequences.py compares.

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
SEQUENCES_OUT = OUT.with_name("sample_weights_sequences.npz")
EXAMPLES, FEATURES, BATCH, EPOCHS, LEARNING_RATE = 20, 3, 8, 2, 0.1
STEPS, VOCABULARY, TAGS = 6, 12, 3  # the sequence cases
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


def _sequence_model(case: str) -> keras.Model:
    """The models of the sequence cases, their layers named as tests/test_sample_weights_sequences.py names them."""
    if case.startswith("tagger_masked"):
        ids = keras.Input((STEPS,), dtype="int64")
        embedded = keras.layers.Embedding(VOCABULARY, 4, mask_zero=True, name="embedding")(ids)
        tags = keras.layers.LSTM(3, return_sequences=True, name="lstm")(embedded)
        return keras.Model(ids, keras.layers.Dense(TAGS, name="dense")(tags))
    if case == "sequence_mse":
        values = keras.Input((STEPS, 2))
        hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(values)
        return keras.Model(values, keras.layers.Dense(2, name="dense")(hidden))
    values = keras.Input((STEPS, 3))  # "masking_bce"
    masked = keras.layers.Masking(0.0, name="masking")(values)
    return keras.Model(values, keras.layers.Dense(1, activation="sigmoid", name="dense")(masked))


SEQUENCE_LOSSES = {
    "tagger_masked": lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "tagger_masked_trailing_one": lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "sequence_mse": lambda: "mse",
    "masking_bce": lambda: "binary_crossentropy",
}


def _sequence_data(case: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if case.startswith("tagger_masked"):
        x = rng.integers(1, VOCABULARY, size=(EXAMPLES, STEPS))
        lengths = rng.integers(1, STEPS + 1, EXAMPLES)
        x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0  # padded after the ids
        x[::4, 0] = 0  # and before them, in some rows
        x[3, 2] = 0  # a hole
        return x.astype(np.int64), np.eye(TAGS, dtype=np.float32)[rng.integers(0, TAGS, (EXAMPLES, STEPS))]
    if case == "sequence_mse":
        x = rng.normal(size=(EXAMPLES, STEPS, 2)).astype(np.float32)
        return x, rng.normal(size=(EXAMPLES, STEPS, 2)).astype(np.float32)
    x = rng.normal(size=(EXAMPLES, STEPS, 3)).astype(np.float32)  # "masking_bce"
    x[rng.uniform(size=(EXAMPLES, STEPS)) < 0.3] = 0.0  # masked steps
    return x, rng.integers(0, 2, (EXAMPLES, STEPS, 1)).astype(np.float32)


def _layer_weights(model: keras.Model, prefix: str = "") -> dict[str, np.ndarray]:
    return {
        f"{prefix}{layer.name}.{i}": np.asarray(w) for layer in model.layers for i, w in enumerate(layer.get_weights())
    }


def _sequence_case(case: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = _sequence_data(case, rng)
    sample_weight = rng.uniform(0.0, 2.0, (EXAMPLES, STEPS)).astype(np.float32)
    sample_weight[rng.uniform(size=(EXAMPLES, STEPS)) < 0.15] = 0.0
    evaluation_weight = rng.uniform(0.0, 3.0, (EXAMPLES, STEPS)).astype(np.float32)
    given = sample_weight[..., None] if case.endswith("trailing_one") else sample_weight  # Keras squeezes (N, T, 1)
    keras.utils.set_random_seed(seed)
    start = _sequence_model(case)
    arrays = {"x": x, "y": y, "sample_weight": given, "evaluation_weight": evaluation_weight, **_layer_weights(start)}

    def fresh() -> keras.Model:
        model = _sequence_model(case)
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=SEQUENCE_LOSSES[case]())
        model.set_weights(start.get_weights())
        return model

    model = fresh()
    arrays["evaluate_unweighted"] = np.float64(model.evaluate(x, y, batch_size=BATCH, verbose=0))
    weighted = model.evaluate(x, y, batch_size=BATCH, sample_weight=evaluation_weight, verbose=0)
    arrays["evaluate_weighted"] = np.float64(weighted)
    arrays["step_loss"] = np.float64(model.train_on_batch(x[:BATCH], y[:BATCH], sample_weight=given[:BATCH]))
    arrays.update(_layer_weights(model, "step."))
    model = fresh()
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        sample_weight=given,
        validation_data=(x, y, evaluation_weight),
    )
    arrays["loss"] = np.array(history.history["loss"], np.float64)
    arrays["val_loss"] = np.array(history.history["val_loss"], np.float64)
    arrays.update(_layer_weights(model, "fit."))
    return {f"{case}/{key}": value for key, value in arrays.items()}


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
    sequences: dict[str, np.ndarray] = {"keras_version": np.array(keras.__version__)}
    for seed, case in enumerate(SEQUENCE_LOSSES, start=11):
        sequences.update(_sequence_case(case, seed))
    np.savez(SEQUENCES_OUT, **sequences)
    print(f"wrote {SEQUENCES_OUT} ({len(sequences)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
