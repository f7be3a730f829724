"""Write Keras 3 reference steps for the optimizer tests: tests/data/keras_optimizer_steps.npz.

A small MLP (4 -> Dense 5 relu -> Dense 3 linear, MSE) from fixed seeded weights takes STEPS updates on fixed
batches (shrinking in scale, so that AMSGrad's running maximum differs from v) under each case's Keras optimizer;
the file holds the batches, the starting weights and the weights after every step, in onnxtrain's parameter names
(dense_1.kernel, dense_1.bias, dense_2.kernel, dense_2.bias). Each case's Keras arguments are stored too
(`<case>/arguments`, JSON): tests/test_optimizers_keras.py passes the same keywords to onnxtrain's class of the same
name, which takes Keras' spellings, plus the case's `OURS` (onnxtrain's settings for Keras' behaviour where their
defaults differ), and compares the weights without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_optimizer_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras_optimizer_steps.npz"
STEPS = 5
PARAMETERS = ["dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias"]

# case -> (optimizer class name, in Keras and in onnxtrain; Keras' keyword arguments)
CASES: dict[str, tuple[str, dict[str, object]]] = {
    "adamw_defaults": ("AdamW", {}),
    "adamw": ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}),
    "adamw_amsgrad": (
        "AdamW",
        {"learning_rate": 0.01, "weight_decay": 0.05, "beta_1": 0.8, "beta_2": 0.6, "epsilon": 1e-6, "amsgrad": True},
    ),
    "adam_amsgrad": ("Adam", {"learning_rate": 0.01, "beta_2": 0.5, "amsgrad": True}),
    "adam_weight_decay": ("Adam", {"learning_rate": 0.01, "weight_decay": 0.1}),
    "sgd_momentum": ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    "sgd_nesterov": ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd_global_clipnorm": ("SGD", {"learning_rate": 0.1, "global_clipnorm": 0.1}),
    "sgd_clipvalue": ("SGD", {"learning_rate": 0.1, "clipvalue": 0.05}),
    "nadam_defaults": ("Nadam", {}),
    "nadam": ("Nadam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.6, "epsilon": 1e-6}),
    "nadam_weight_decay": ("Nadam", {"learning_rate": 0.01, "weight_decay": 0.1, "global_clipnorm": 0.1}),
    "rmsprop": ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-7}),
    "rmsprop_momentum_centered": (
        "RMSprop",
        {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True, "epsilon": 1e-7},
    ),
}
# onnxtrain's own arguments a case needs besides Keras' (the settings whose defaults differ and Keras has no name for)
OURS: dict[str, dict[str, object]] = {
    "rmsprop": {"initial_mean_square": 0.0},
    "rmsprop_momentum_centered": {"initial_mean_square": 0.0},
}


def main() -> None:
    rng = np.random.default_rng(2024)
    batches = [
        (
            (rng.normal(size=(8, 4)) / (1 + step)).astype(np.float32),
            (rng.normal(size=(8, 3)) / (1 + step)).astype(np.float32),
        )
        for step in range(STEPS)
    ]
    start = {
        "dense_1.kernel": rng.normal(0, 0.5, size=(4, 5)),
        "dense_1.bias": rng.normal(0, 0.1, size=5),
        "dense_2.kernel": rng.normal(0, 0.5, size=(5, 3)),
        "dense_2.bias": rng.normal(0, 0.1, size=3),
    }
    start = {name: value.astype(np.float32) for name, value in start.items()}
    arrays: dict[str, np.ndarray] = {f"start/{name}": value for name, value in start.items()}
    for step, (x, y) in enumerate(batches):
        arrays[f"x/{step}"], arrays[f"y/{step}"] = x, y
    for case, (cls, arguments) in CASES.items():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
        model.set_weights([start[name] for name in PARAMETERS])
        model.compile(optimizer=getattr(keras.optimizers, cls)(**arguments), loss="mse")
        arrays[f"{case}/arguments"] = np.array(json.dumps([cls, arguments, OURS.get(case, {})]))
        for step, (x, y) in enumerate(batches, start=1):
            model.train_on_batch(x, y)
            for name, value in zip(PARAMETERS, model.get_weights(), strict=True):
                arrays[f"{case}/{step}/{name}"] = value
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(CASES)} cases, {STEPS} steps each; Keras {keras.__version__})")


if __name__ == "__main__":
    main()
