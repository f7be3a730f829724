"""Write Keras 3 reference numbers for weight regularizers on a layer that a model calls more than once:
tests/data/keras/keras_shared_regularizers.npz.

Keras adds a weight's penalty to the loss once however many times its layer is called (`Layer.losses` sums the
regularizer over `trainable_weights`, not over calls); onnxtrain's graphs emit such a layer once per call, and
tests/test_regularizers_shared.py checks that they still count each penalty once, without Keras installed.

Cases (plain SGD, learning rate 0.1, one batch of 8 examples, mean squared error unless said):
  * `two_inputs`: one Dense(4, tanh) called on two inputs, its outputs added, then a linear Dense(2) head:
    `shared` has kernel_regularizer=L1L2(l1=0.05, l2=0.1) and bias_regularizer=L2(0.3), `head`
    kernel_regularizer=L1(0.02) and bias_regularizer=L1L2(l1=0.01, l2=0.02).
  * `chain`: one Dense(3, tanh) called three times in a row, d(d(d(x))), with kernel_regularizer=L2(0.2) and
    bias_regularizer=L1(0.1).
  * `output_twice`: one softmax Dense(3) listed twice among the outputs, `Model(x, [h, h])`, with
    kernel_regularizer=L2(0.1) and bias_regularizer=L1(0.2), losses ["categorical_crossentropy", "mse"]: onnxtrain
    emits the layer once without its softmax (the logits rule) beside the original.
Stored per case (`<case>.<key>`): the inputs (`x`, or `x_a` and `x_b`), the targets `y`, each layer's starting
kernel and bias (`<layer>.kernel`, `<layer>.bias`), the sum of the weight penalties (`penalty`, Keras'
`model.losses`), `evaluate`'s loss (`evaluate_loss`), one `train_on_batch` step's loss (`step_loss`) and the weights
after it (`step.<layer>.kernel`, `step.<layer>.bias`).

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_shared_regularizer_fixtures.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
from keras import regularizers

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "keras_shared_regularizers.npz"
EXAMPLES, FEATURES, LEARNING_RATE = 8, 3, 0.1


def _two_inputs() -> tuple[keras.Model, list[keras.layers.Layer]]:
    a, b = keras.Input((FEATURES,)), keras.Input((FEATURES,))
    shared = keras.layers.Dense(
        4,
        activation="tanh",
        kernel_regularizer=regularizers.L1L2(l1=0.05, l2=0.1),
        bias_regularizer=regularizers.L2(0.3),
        name="shared",
    )
    head = keras.layers.Dense(
        2,
        kernel_regularizer=regularizers.L1(0.02),
        bias_regularizer=regularizers.L1L2(l1=0.01, l2=0.02),
        name="head",
    )
    return keras.Model([a, b], head(keras.layers.Add()([shared(a), shared(b)]))), [shared, head]


def _chain() -> tuple[keras.Model, list[keras.layers.Layer]]:
    x = keras.Input((FEATURES,))
    shared = keras.layers.Dense(
        FEATURES,
        activation="tanh",
        kernel_regularizer=regularizers.L2(0.2),
        bias_regularizer=regularizers.L1(0.1),
        name="shared",
    )
    return keras.Model(x, shared(shared(shared(x)))), [shared]


def _output_twice() -> tuple[keras.Model, list[keras.layers.Layer]]:
    x = keras.Input((FEATURES,))
    h = keras.layers.Dense(
        3,
        activation="softmax",
        kernel_regularizer=regularizers.L2(0.1),
        bias_regularizer=regularizers.L1(0.2),
        name="h",
    )
    probabilities = h(x)
    return keras.Model(x, [probabilities, probabilities]), [h]


def _case(
    name: str, make: Callable[[], tuple[keras.Model, list[keras.layers.Layer]]], seed: int
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    model, layers = make()
    arrays: dict[str, np.ndarray] = {}
    for layer in layers:  # seeded starting weights, biases away from 0 so that their penalties count
        kernel_shape, bias_shape = (tuple(w.shape) for w in layer.weights)
        kernel = rng.normal(scale=0.6, size=kernel_shape).astype(np.float32)
        bias = rng.normal(scale=0.4, size=bias_shape).astype(np.float32)
        layer.set_weights([kernel, bias])
        arrays[f"{layer.name}.kernel"], arrays[f"{layer.name}.bias"] = kernel, bias
    inputs = [rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32) for _ in model.inputs]
    if name == "output_twice":
        y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, EXAMPLES)]
        targets: np.ndarray | list[np.ndarray] = [y, y]
        loss: str | list[str] = ["categorical_crossentropy", "mse"]
    else:
        y = rng.normal(size=(EXAMPLES, model.outputs[0].shape[-1])).astype(np.float32)
        targets, loss = y, "mse"
    x: np.ndarray | list[np.ndarray] = inputs if len(inputs) > 1 else inputs[0]
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=loss)
    model(x)  # an eager call fills `model.losses`: the weight penalties, once per weight
    arrays["penalty"] = np.float64(sum(float(term) for term in model.losses))
    assert len(model.losses) == 2 * len(layers), model.losses
    arrays["evaluate_loss"] = np.float64(
        model.evaluate(x, targets, batch_size=EXAMPLES, verbose=0, return_dict=True)["loss"]
    )
    arrays["step_loss"] = np.float64(model.train_on_batch(x, targets, return_dict=True)["loss"])
    for layer in layers:
        arrays[f"step.{layer.name}.kernel"], arrays[f"step.{layer.name}.bias"] = layer.get_weights()
    if len(inputs) > 1:
        arrays["x_a"], arrays["x_b"] = inputs
    else:
        arrays["x"] = inputs[0]
    arrays["y"] = y
    return {f"{name}.{key}": value for key, value in arrays.items()}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for seed, (name, make) in enumerate(
        (("two_inputs", _two_inputs), ("chain", _chain), ("output_twice", _output_twice))
    ):
        arrays.update(_case(name, make, seed))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, keras_version=np.array(keras.__version__), **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
