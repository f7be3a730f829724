"""Write Keras 3 reference numbers for a model that lists one tensor twice among its outputs, `Model(x, [h, h])`:
tests/data/keras/one_tensor_twice.npz.

Keras takes such a model and trains each position with its own loss, weight and metrics; its output names are
alike (['h', 'h']), so its logs keep one `h_loss`, the last position's. onnxtrain names the positions 'h' and 'h_1'
(an ONNX graph's outputs need names of their own) and logs both; tests/test_model_functional_keras.py compares its
numbers with these, without Keras installed.

Cases (plain SGD, learning rate 0.1, no shuffle, batch 4 over 12 examples, 2 epochs):
  * `regression`: h = Dense(3) (linear); loss ["mse", "mae"], loss_weights [1, 0.5], metrics [["mae"], ["mse"]].
  * `softmax`: p = Dense(3, activation="softmax"); loss ["sparse_categorical_crossentropy", "mse"], the second
    against one-hot targets: the first position reads the softmax's logits in onnxtrain's graphs, the second the
    probabilities, as both do in Keras.
  * `dict`: the same tensor under two keys, `Model(x, {"a": h, "b": h})` with h = Dense(3, name="h"); loss
    {"a": "mse", "b": "mae"}, loss_weights {"a": 1, "b": 0.5}, metrics {"a": ["mae"], "b": ["mse"]}. Keras keys
    targets, losses and logs by the dict's keys (a_loss, b_loss), as onnxtrain names the outputs.
Stored per case: the data, the starting kernel and bias, each epoch's `loss` and Keras' `h_loss` (the second
position's), the first position's and second's metric per epoch, the kernel and bias after fit, predict's two
arrays after fit, and evaluate's loss after fit.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_output_twice_fixtures.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "one_tensor_twice.npz"
EXAMPLES, FEATURES, UNITS, BATCH, EPOCHS, LEARNING_RATE = 12, 4, 3, 4, 2, 0.1


def _case(name: str, activation: str, loss: list[str], loss_weights: list[float], metrics: list[list[str]],
          first_targets: np.ndarray, second_targets: np.ndarray, seed: int) -> dict[str, np.ndarray]:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    kernel = rng.normal(scale=0.5, size=(FEATURES, UNITS)).astype(np.float32)
    bias = rng.normal(scale=0.1, size=(UNITS,)).astype(np.float32)
    inputs = keras.Input((FEATURES,))
    dense = keras.layers.Dense(UNITS, activation=activation, name="h")
    h = dense(inputs)
    model = keras.Model(inputs, [h, h])
    assert model.output_names == ["h", "h"], model.output_names
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=loss, loss_weights=loss_weights, metrics=metrics)
    dense.set_weights([kernel, bias])
    targets = [first_targets, second_targets]
    history = model.fit(x, targets, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0).history
    first_metric, second_metric = f"h_{metrics[0][0]}", f"h_{metrics[1][0]}"
    assert set(history) == {"loss", "h_loss", first_metric, second_metric}, sorted(history)
    after_kernel, after_bias = dense.get_weights()
    first, second = model.predict(x, batch_size=BATCH, verbose=0)
    evaluated = model.evaluate(x, targets, batch_size=BATCH, verbose=0, return_dict=True)
    arrays = {
        "x": x,
        "first_targets": first_targets,
        "second_targets": second_targets,
        "start_kernel": kernel,
        "start_bias": bias,
        "loss": np.array(history["loss"], np.float64),
        "second_loss": np.array(history["h_loss"], np.float64),  # Keras' one `h_loss`: the last position's
        "first_metric": np.array(history[first_metric], np.float64),
        "second_metric": np.array(history[second_metric], np.float64),
        "kernel": after_kernel,
        "bias": after_bias,
        "first_predicted": first,
        "second_predicted": second,
        "evaluate_loss": np.float64(evaluated["loss"]),
    }
    return {f"{name}/{key}": value for key, value in arrays.items()}


def _dict_case(x_seed: int, targets: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(x_seed)
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    kernel = rng.normal(scale=0.5, size=(FEATURES, UNITS)).astype(np.float32)
    bias = rng.normal(scale=0.1, size=(UNITS,)).astype(np.float32)
    inputs = keras.Input((FEATURES,))
    dense = keras.layers.Dense(UNITS, name="h")
    h = dense(inputs)
    model = keras.Model(inputs, {"a": h, "b": h})
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE),
        loss={"a": "mse", "b": "mae"},
        loss_weights={"a": 1.0, "b": 0.5},
        metrics={"a": ["mae"], "b": ["mse"]},
    )
    dense.set_weights([kernel, bias])
    y = {"a": targets[0], "b": targets[1]}
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0).history
    assert set(history) == {"loss", "a_loss", "b_loss", "a_mae", "b_mse"}, sorted(history)
    after_kernel, after_bias = dense.get_weights()
    evaluated = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    arrays = {
        "x": x,
        "first_targets": targets[0],
        "second_targets": targets[1],
        "start_kernel": kernel,
        "start_bias": bias,
        **{key: np.array(value, np.float64) for key, value in history.items()},
        "kernel": after_kernel,
        "bias": after_bias,
        "evaluate_loss": np.float64(evaluated["loss"]),
    }
    return {f"dict/{key}": value for key, value in arrays.items()}


def main() -> None:
    rng = np.random.default_rng(11)
    regression = rng.normal(size=(2, EXAMPLES, UNITS)).astype(np.float32)
    classes = rng.integers(0, UNITS, EXAMPLES).astype(np.int64)
    one_hot = np.eye(UNITS, dtype=np.float32)[classes]
    arrays: dict[str, np.ndarray] = {}
    arrays.update(
        _case("regression", "linear", ["mse", "mae"], [1.0, 0.5], [["mae"], ["mse"]], regression[0], regression[1], 1)
    )
    arrays.update(
        _case(
            "softmax",
            "softmax",
            ["sparse_categorical_crossentropy", "mse"],
            [1.0, 2.0],
            [["accuracy"], ["mae"]],
            classes,
            one_hot,
            2,
        )
    )
    arrays.update(_dict_case(3, rng.normal(size=(2, EXAMPLES, UNITS)).astype(np.float32)))
    arrays["keras_version"] = np.array(keras.__version__)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
