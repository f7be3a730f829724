"""Write Keras reference SGD steps of Keras' transfer-learning pattern, `base(inputs, training=False)`, for
tests/test_training_argument.py: tests/data/keras/training_false_sgd_steps_<case>.npz.

Each case is a base model Input(4) -> Dense(6, tanh) -> BatchNormalization(momentum=0.8) -> Dropout(0.5), called
with training=False under a Dense(2) head, with seeded normal weights (and a positive moving variance), taking three
SGD(0.1) steps on three batches of 8 under mean squared error. Cases: "fine_tune" (every weight trainable: Keras'
fine-tuning, the base's BatchNormalization still in inference mode), "frozen" (base.trainable = False: the head
alone trains) and "layer_call" (no nested model: BatchNormalization and Dropout themselves called with
training=False). The file holds the batches (x, y), the losses Keras reports, and every weight before and after the
steps in Keras' `get_weights()` order (before0, ...; after0, ...; `weights`: how many).

The calls are made in a subclassed model's `call`, where Keras 3 honours an explicit training=False as the transfer-
learning guide says. Keras 3's Functional replaces a node's recorded training=False by the outer call's
training=True in fit (`models/functional.py`, `operation_fn`; keras-team/keras#20285), so a Functional model there
updates the moving statistics of a fine-tuned base; tf.keras 2 and onnxtrain follow the guide.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_training_false_steps.py
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

L = keras.layers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"
CASES = ("fine_tune", "frozen", "layer_call")
STEPS, BATCH = 3, 8


class Transfer(keras.Model):
    """`head(base(x, training=False))`, or with `layer_call`, the base's layers each called with training=False."""

    def __init__(self, case: str):
        super().__init__()
        self.case = case
        self.dense, self.normalization = L.Dense(6, activation="tanh"), L.BatchNormalization(momentum=0.8)
        self.dropout, self.head = L.Dropout(0.5), L.Dense(2)
        if case != "layer_call":
            base_input = keras.Input((4,))
            h = self.dropout(self.normalization(self.dense(base_input)))
            self.base = keras.Model(base_input, h, name="base")
            self.base.trainable = case != "frozen"

    def call(self, x: object, training: bool | None = None) -> object:
        if self.case == "layer_call":
            h = self.normalization(self.dense(x), training=False)
            return self.head(self.dropout(h, training=False))
        return self.head(self.base(x, training=False))


def make_model(case: str) -> keras.Model:
    model = Transfer(case)
    model(np.zeros((1, 4), np.float32))  # makes the weights (a subclassed model's build traces no call)
    return model


def write_steps(case: str) -> None:
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    model = make_model(case)
    before = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()]
    before[5] = rng.uniform(0.5, 2.0, size=before[5].shape).astype(np.float32)  # the moving variance
    model.set_weights(before)
    x = rng.normal(0.0, 1.0, size=(STEPS * BATCH, 4)).astype(np.float32)
    y = rng.normal(0.0, 1.0, size=(STEPS * BATCH, 2)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    losses = [float(model.train_on_batch(x[i : i + BATCH], y[i : i + BATCH])) for i in range(0, len(x), BATCH)]
    after = model.get_weights()
    arrays = {"x": x, "y": y, "losses": np.array(losses), "weights": np.array(len(before))}
    arrays |= {f"before{i}": w for i, w in enumerate(before)} | {f"after{i}": w for i, w in enumerate(after)}
    np.savez(OUT / f"training_false_sgd_steps_{case}.npz", **arrays)
    print(f"{case}: losses {np.round(losses, 6)}, weights {[w.shape for w in before]}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    for case in CASES:
        write_steps(case)


if __name__ == "__main__":
    main()
