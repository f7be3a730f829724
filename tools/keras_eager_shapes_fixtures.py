"""Write what Keras 3's layers return when one built layer is called on numpy arrays of other shapes than its first
call's (sequences of another length, images of another size), for tests/test_layers_eager_shapes.py:
tests/data/keras/eager_other_shapes.npz.

Keras builds a layer at its first call and computes a later call on any inputs its weights fit: a Dense, Conv1D,
LSTM, Embedding or MultiHeadAttention takes sequences of any length, whose weights depend on the feature sizes only.
For each layer below the file holds its weights `<layer>/w<i>` (`get_weights()` order, seeded normal draws set after
its first call), the first call's input `<layer>/x_first` and each later call's input and output
(`<layer>/x_<call>`, `<layer>/y_<call>`), in the order written; inputs are float32, Embedding's int32 ids:

  * dense (Dense(3)) built on [2, 5, 4]: seq7 [3, 7, 4], flat [3, 4] (a rank-2 input);
  * conv1d (Conv1D(2, 3)) on [2, 8, 3]: len11 [2, 11, 3];
  * conv2d (Conv2D(2, 3, padding="same")) on [2, 6, 6, 1]: size9x7 [2, 9, 7, 1];
  * lstm (LSTM(3, return_sequences=True)) on [2, 5, 3]: len9 [2, 9, 3];
  * gru (GRU(2)) on [2, 5, 3]: len4 [2, 4, 3];
  * bidirectional (Bidirectional(LSTM(2))) on [2, 5, 3]: len7 [2, 7, 3];
  * embedding (Embedding(10, 3)) on ids [2, 5]: len9 [2, 9];
  * time_distributed (TimeDistributed(Dense(2))) on [2, 5, 3]: len8 [2, 8, 3];
  * layer_norm (LayerNormalization()) on [2, 5, 3]: len6 [2, 6, 3];
  * batch_norm (BatchNormalization(momentum=0.5)) on [2, 5, 3]: a training call train7 [4, 7, 3], then
    `batch_norm/moving_mean` and `batch_norm/moving_variance` after it;
  * mha (MultiHeadAttention(num_heads=2, key_dim=3)), built by mha(query [2, 4, 6], value [2, 5, 6]):
    causal_self (mha(query, query, use_causal_mask=True)), q7_self (mha(q7, q7), q7 [3, 7, 6]), q7_causal
    (use_causal_mask=True), short_value (mha(query, value[:, :3])), plain_again (mha(query, value)); each call's
    inputs as `mha/q_<call>` and `mha/v_<call>`.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_eager_shapes_fixtures.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

L = keras.layers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "eager_other_shapes.npz"

# name: (layer, first input's shape, {call: (input shape, training)}); an int shape draws Embedding ids
LAYERS: dict[str, tuple[Any, tuple[int, ...], dict[str, tuple[tuple[int, ...], bool]]]] = {
    "dense": (lambda: L.Dense(3), (2, 5, 4), {"seq7": ((3, 7, 4), False), "flat": ((3, 4), False)}),
    "conv1d": (lambda: L.Conv1D(2, 3), (2, 8, 3), {"len11": ((2, 11, 3), False)}),
    "conv2d": (lambda: L.Conv2D(2, 3, padding="same"), (2, 6, 6, 1), {"size9x7": ((2, 9, 7, 1), False)}),
    "lstm": (lambda: L.LSTM(3, return_sequences=True), (2, 5, 3), {"len9": ((2, 9, 3), False)}),
    "gru": (lambda: L.GRU(2), (2, 5, 3), {"len4": ((2, 4, 3), False)}),
    "bidirectional": (lambda: L.Bidirectional(L.LSTM(2)), (2, 5, 3), {"len7": ((2, 7, 3), False)}),
    "embedding": (lambda: L.Embedding(10, 3), (2, 5), {"len9": ((2, 9), False)}),
    "time_distributed": (lambda: L.TimeDistributed(L.Dense(2)), (2, 5, 3), {"len8": ((2, 8, 3), False)}),
    "layer_norm": (lambda: L.LayerNormalization(), (2, 5, 3), {"len6": ((2, 6, 3), False)}),
    "batch_norm": (lambda: L.BatchNormalization(momentum=0.5), (2, 5, 3), {"train7": ((4, 7, 3), True)}),
}


def draw(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name == "embedding":
        return rng.integers(0, 10, shape).astype(np.int32)
    return rng.normal(size=shape).astype(np.float32)


def seeded_weights(layer: keras.layers.Layer, rng: np.random.Generator) -> list[np.ndarray]:
    """Normal draws for the layer's weights (a variance's absolute value), set on it."""
    weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    weights = [np.abs(w) + 0.5 if "variance" in v.path else w for w, v in zip(weights, layer.weights, strict=True)]
    layer.set_weights(weights)
    return weights


def attention(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    query, value, q7 = (rng.normal(size=shape).astype(np.float32) for shape in ((2, 4, 6), (2, 5, 6), (3, 7, 6)))
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3)
    mha(query, value)
    arrays |= {f"mha/w{i}": w for i, w in enumerate(seeded_weights(mha, rng))}
    calls = {
        "causal_self": (query, query, True),
        "q7_self": (q7, q7, False),
        "q7_causal": (q7, q7, True),
        "short_value": (query, value[:, :3], False),
        "plain_again": (query, value, False),
    }
    for call, (q, v, causal) in calls.items():
        arrays |= {
            f"mha/q_{call}": q,
            f"mha/v_{call}": v,
            f"mha/y_{call}": np.asarray(mha(q, v, use_causal_mask=causal)),
        }


def main() -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for name, (make, first, calls) in LAYERS.items():
        layer = make()
        arrays[f"{name}/x_first"] = x = draw(rng, name, first)
        layer(x)
        arrays |= {f"{name}/w{i}": w for i, w in enumerate(seeded_weights(layer, rng))}
        for call, (shape, training) in calls.items():
            arrays[f"{name}/x_{call}"] = x = draw(rng, name, shape)
            arrays[f"{name}/y_{call}"] = np.asarray(layer(x, training=training))
        if name == "batch_norm":
            arrays |= {f"{name}/{w.name}": np.asarray(w.numpy()) for w in layer.non_trainable_weights}
    attention(arrays, rng)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print({key: value.shape for key, value in arrays.items() if "/y_" in key})


if __name__ == "__main__":
    main()
