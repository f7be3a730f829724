"""Write Keras 3 reference SGD steps through Bidirectional for tests/test_layers_bidirectional.py:
tests/data/keras/bidirectional_sgd_step_<case>.npz.

Each case is Input(timesteps, features) -> Bidirectional(...) [-> Flatten] -> Dense(2), with seeded normal weights,
taking one SGD(0.1) step on one batch of 6 under sparse softmax cross-entropy on logits. The file holds the batch
(x, y), the loss Keras reports for it, and every weight before and after the step in Keras' `get_weights()` order
(before0, ...; after0, ...; `weights`: how many). The test maps them onto onnxtrain's parameters as the forward
fixtures do and compares, without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_bidirectional_step.py
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
INPUT_SHAPE = (5, 2)

# case -> the Bidirectional layer (its output is flattened before the Dense when it has a time axis)
CASES = {
    "lstm_concat": lambda: L.Bidirectional(L.LSTM(3)),
    "gru_sequences_ave": lambda: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="ave"),
    "simple_rnn_relu_backward_mul": lambda: L.Bidirectional(
        L.SimpleRNN(3, return_sequences=True),
        backward_layer=L.SimpleRNN(3, activation="relu", go_backwards=True, return_sequences=True),
        merge_mode="mul",
    ),
}


def write_step(case: str, make: object) -> None:
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    bidirectional = make()  # type: ignore[operator]
    layers = [keras.Input(INPUT_SHAPE), bidirectional]
    if bidirectional.return_sequences:
        layers.append(L.Flatten())
    model = keras.Sequential([*layers, L.Dense(2)])
    before = [rng.normal(0.0, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(before)
    x = rng.uniform(-2.0, 2.0, size=(6, *INPUT_SHAPE)).astype(np.float32)
    y = rng.integers(0, 2, 6).astype(np.int64)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    loss = float(model.train_on_batch(x, y))
    after = model.get_weights()
    arrays = {"x": x, "y": y, "loss": np.array(loss), "weights": np.array(len(before))}
    arrays |= {f"before{i}": w for i, w in enumerate(before)} | {f"after{i}": w for i, w in enumerate(after)}
    np.savez(OUT / f"bidirectional_sgd_step_{case}.npz", **arrays)
    print(f"{case}: loss {loss:.6f}, weights {[w.shape for w in before]}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    for case, make in CASES.items():
        write_step(case, make)


if __name__ == "__main__":
    main()
