"""Write Keras 3's activations that onnxtrain added from Keras (`onnxtrain/_keras_activations.py`) as Keras computes
them, forward and gradient, for tests/test_keras_activations.py: tests/data/keras/keras_activations.npz (and .json).

Each case is `Dense(units, activation=...)` on a batch: `<case>/x` [6, 5], `<case>/kernel` [5, units], `<case>/bias`
[units], `<case>/target` (the output's shape), Keras' output `<case>/y` = activation(x @ kernel + bias), and the
gradient of the mean squared error mean((y - target)^2) with respect to the kernel and the bias (`<case>/d_kernel`,
`<case>/d_bias`, by JAX's autodiff of Keras' function: what one SGD step of learning rate 1 subtracts). The
pre-activations are drawn to cover each activation's pieces and kept at least 0.01 from its kinks, where a
one-sided derivative is a matter of convention. `keras_activations.json` maps each case to onnxtrain's identifier
of it (a name, or {"name", **arguments}) and Keras' `Dense(...).get_config()` for the cases Keras names by string.

Also the recurrent layers with `hard_sigmoid` (Keras': clip(x / 6 + 0.5, 0, 1)): `<case>/x` [3, 5, 3],
`<case>/weights/<i>` (Keras' get_weights()), `<case>/y`, and each weight's gradient of the mean of y * cotangent
(`<case>/cotangent`, `<case>/grads/<i>`), with the layer's config in the json.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_activation_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras

A = keras.activations
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"

# case: (onnxtrain's identifier, Keras' function of x, Keras' name for Dense(activation=...) or None, units, kinks)
CASES: dict[str, tuple[Any, Any, str | None, int, tuple[float, ...]]] = {
    "celu": ("celu", A.celu, "celu", 4, ()),
    "celu_alpha": ({"name": "celu", "alpha": 0.5}, lambda x: A.celu(x, alpha=0.5), None, 4, ()),
    "glu": ("glu", A.glu, "glu", 8, ()),  # halves the last axis: 4 outputs
    "hard_tanh": ("hard_tanh", A.hard_tanh, "hard_tanh", 4, (-1.0, 1.0)),
    "soft_shrink": ("soft_shrink", A.soft_shrink, "soft_shrink", 4, (-0.5, 0.5)),
    "soft_shrink_threshold": (
        {"name": "soft_shrink", "threshold": 1.0},
        lambda x: A.soft_shrink(x, threshold=1.0),
        None,
        4,
        (-1.0, 1.0),
    ),
    "sparse_plus": ("sparse_plus", A.sparse_plus, "sparse_plus", 4, (-1.0, 1.0)),
    "squareplus": ("squareplus", A.squareplus, "squareplus", 4, ()),
    "squareplus_b": ({"name": "squareplus", "b": 1.0}, lambda x: A.squareplus(x, b=1.0), None, 4, ()),
    "sparsemax": ("sparsemax", A.sparsemax, "sparsemax", 4, ()),
    "tanh_shrink": ("tanh_shrink", A.tanh_shrink, "tanh_shrink", 4, ()),
    "threshold": (
        {"name": "threshold", "threshold": 0.2, "default_value": -1.0},
        lambda x: A.threshold(x, 0.2, -1.0),
        None,
        4,
        (0.2,),
    ),
    "log_sigmoid": ("log_sigmoid", A.log_sigmoid, "log_sigmoid", 4, ()),
    "sparse_sigmoid": ("sparse_sigmoid", A.sparse_sigmoid, "sparse_sigmoid", 4, (-1.0, 1.0)),
}

RECURRENT = {
    "lstm_hard_sigmoid": lambda: keras.layers.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True),
    "lstm_hard_sigmoid_backwards": lambda: keras.layers.LSTM(
        3, activation="relu", recurrent_activation="hard_sigmoid", go_backwards=True
    ),
    "gru_hard_sigmoid": lambda: keras.layers.GRU(4, recurrent_activation="hard_sigmoid", return_sequences=True),
    "gru_hard_sigmoid_reset_before": lambda: keras.layers.GRU(
        3, recurrent_activation="hard_sigmoid", reset_after=False
    ),
    "simple_rnn_hard_sigmoid": lambda: keras.layers.SimpleRNN(3, activation="hard_sigmoid", return_sequences=True),
}


def dense_case(rng: np.random.Generator, function: Any, units: int, kinks: tuple[float, ...]) -> dict[str, Any]:
    for _ in range(100):  # pre-activations in [-3, 3], away from the kinks
        x = rng.normal(size=(6, 5)).astype(np.float32)
        kernel = rng.normal(0.0, 0.6, (5, units)).astype(np.float32)
        bias = rng.normal(0.0, 0.3, units).astype(np.float32)
        pre = x @ kernel + bias
        if all(np.abs(pre - kink).min() > 0.01 for kink in kinks) and np.abs(pre).max() < 3.5:
            break
    else:
        raise RuntimeError("no draw keeps the pre-activations away from the kinks")
    y = np.asarray(function(jnp.asarray(pre)))
    target = rng.normal(size=y.shape).astype(np.float32)

    def loss(kernel: jax.Array, bias: jax.Array) -> jax.Array:
        return jnp.mean((function(jnp.asarray(x) @ kernel + bias) - target) ** 2)

    d_kernel, d_bias = jax.grad(loss, argnums=(0, 1))(jnp.asarray(kernel), jnp.asarray(bias))
    return {"x": x, "kernel": kernel, "bias": bias, "target": target, "y": y, "d_kernel": d_kernel, "d_bias": d_bias}


def recurrent_case(rng: np.random.Generator, make: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    keras.utils.set_random_seed(3)
    layer = make()
    x = rng.normal(size=(3, 5, 3)).astype(np.float32)
    layer.build(x.shape)
    weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    assert len(layer.trainable_variables) == len(weights)
    y = np.asarray(layer(x))
    cotangent = rng.normal(size=y.shape).astype(np.float32)

    fixed = [v.value for v in layer.non_trainable_variables]  # the seed generator's state

    def loss(values: list[jax.Array]) -> jax.Array:
        outputs, _ = layer.stateless_call(values, fixed, jnp.asarray(x))
        return jnp.mean(outputs * cotangent)

    grads = jax.grad(loss)([jnp.asarray(w) for w in weights])
    arrays = {"x": x, "y": y, "cotangent": cotangent}
    arrays |= {f"weights/{i}": w for i, w in enumerate(weights)}
    arrays |= {f"grads/{i}": np.asarray(g) for i, g in enumerate(grads)}
    return arrays, keras.saving.serialize_keras_object(layer)


def main() -> None:
    rng = np.random.default_rng(7)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"dense": {}, "recurrent": {}}
    for case, (identifier, function, keras_name, units, kinks) in CASES.items():
        values = dense_case(rng, function, units, kinks)
        arrays |= {f"{case}/{key}": np.asarray(value) for key, value in values.items()}
        config = None
        if keras_name is not None:
            config = keras.saving.serialize_keras_object(keras.layers.Dense(units, activation=keras_name))
        meta["dense"][case] = {"identifier": identifier, "dense_config": config}
        print(case, values["y"].shape)
    for case, make in RECURRENT.items():
        values, config = recurrent_case(rng, make)
        arrays |= {f"{case}/{key}": np.asarray(value) for key, value in values.items()}
        meta["recurrent"][case] = {"config": config}
        print(case, values["y"].shape, [w.shape for k, w in values.items() if k.startswith("weights/")])
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "keras_activations.npz", **arrays)
    (OUT / "keras_activations.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
