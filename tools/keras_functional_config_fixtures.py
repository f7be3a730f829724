"""Write the configs Keras 3 writes for Functional models with nested Sequentials, Keras' masks and attention calls,
with each model's inputs, per-layer weights and outputs, for tests/test_keras_functional_config_rebuilt.py:
tests/data/keras/functional_configs.{json,npz}.

Keras records what onnxtrain's layers do themselves as parts of the config: the mask of an Embedding(mask_zero=True)
or a Masking layer as entries of Keras operations (`NotEqual`, `Any`, `LogicalOr`, ...) passed as each later call's
`mask=`, the signature's `training: false` of every Dropout and recurrent layer, `mask: null` on a call without one,
and an attention layer's `use_causal_mask=True` as its call's argument. The models (token ids hold trailing zeros,
padding that the masks leave out):

- `nested_sequential`: Input(4) -> a Sequential `inner` (keras.Input(4), Dense(3, tanh)) -> Dense(2).
- `nested_unbuilt_sequential`: Input(4) -> a Sequential `inner` of Dense(3, tanh) only, built by the call (its
  config has `build_input_shape`, no InputLayer) -> Dense(2).
- `masked_bidirectional`: inputs `feat` (6) and `tok` (5 int32 ids); Embedding(20, 4, mask_zero=True) ->
  Bidirectional(LSTM(3)); Dense(4, gelu) of `feat`; concatenated; a dict of outputs `cls` (softmax) and `reg`.
- `masked_pooling`: ids -> Embedding(mask_zero=True) -> Dropout(0.2) -> LSTM(3, return_sequences) ->
  GlobalAveragePooling1D (the mask leaves the padding out of the mean) -> Dense(2).
- `masked_concat`: ids -> Embedding(mask_zero=True), and a Dense(4) of it, concatenated (Keras merges their masks
  with ZerosLike, ExpandDims, LogicalOr, Concatenate and Any operations) -> LSTM(2).
- `masking_layer`: Input(5, 3) (steps 3 and 4 zero) -> Masking(0.0) -> GRU(2).
- `causal_attention`: Input(7, 3) -> LayerNormalization -> MultiHeadAttention(2, 4)(x, x, use_causal_mask=True)
  -> GlobalAveragePooling1D -> Dense(2).
- `keras_operations` (config only): keras.ops.concatenate([keras.ops.add(a, b), b], axis=1), Keras operations that
  compute data, which onnxtrain refuses.
- `explicit_mask` (config only): LSTM(2)(x, mask=m) with `m` a bool Input, a mask onnxtrain does not derive.

`functional_configs.json`: {name: model.get_config()}. `functional_configs.npz`: `<name>/x/<i>` (the inputs in
`model.inputs` order), `<name>/y/<i>` (the outputs flattened as Keras flattens them: a dict by sorted key) and
`<name>/layer/<layer name>/<i>` (each layer's `get_weights()`, seeded normal draws).

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_functional_config_fixtures.py
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

L = keras.layers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"


def nested_sequential() -> keras.Model:
    x = keras.Input((4,), name="x")
    inner = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="tanh", name="hidden")], name="inner")
    return keras.Model(x, L.Dense(2, name="out")(inner(x)))


def nested_unbuilt_sequential() -> keras.Model:
    x = keras.Input((4,), name="x")
    inner = keras.Sequential([L.Dense(3, activation="tanh", name="hidden")], name="inner")
    return keras.Model(x, L.Dense(2, name="out")(inner(x)))


def masked_bidirectional() -> keras.Model:
    feat, tok = keras.Input((6,), name="feat"), keras.Input((5,), dtype="int32", name="tok")
    states = L.Bidirectional(L.LSTM(3), name="bi")(L.Embedding(20, 4, mask_zero=True, name="embed")(tok))
    joined = L.Concatenate(name="joined")([L.Dense(4, activation="gelu", name="dense")(feat), states])
    outputs = {"cls": L.Dense(3, activation="softmax", name="cls")(joined), "reg": L.Dense(1, name="reg")(joined)}
    return keras.Model([feat, tok], outputs)


def masked_pooling() -> keras.Model:
    tok = keras.Input((6,), dtype="int32", name="tok")
    x = L.Dropout(0.2, name="drop")(L.Embedding(20, 4, mask_zero=True, name="embed")(tok))
    x = L.GlobalAveragePooling1D(name="pool")(L.LSTM(3, return_sequences=True, name="lstm")(x))
    return keras.Model(tok, L.Dense(2, name="out")(x))


def masked_concat() -> keras.Model:
    tok = keras.Input((5,), dtype="int32", name="tok")
    embedded = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    joined = L.Concatenate(name="joined")([embedded, L.Dense(4, name="dense")(embedded)])
    return keras.Model(tok, L.LSTM(2, name="lstm")(joined))


def masking_layer() -> keras.Model:
    x = keras.Input((5, 3), name="x")
    return keras.Model(x, L.GRU(2, name="gru")(L.Masking(0.0, name="masking")(x)))


def causal_attention() -> keras.Model:
    x = keras.Input((7, 3), name="x")
    h = L.LayerNormalization(name="norm")(x)
    h = L.MultiHeadAttention(2, 4, name="mha")(h, h, use_causal_mask=True)
    return keras.Model(x, L.Dense(2, name="out")(L.GlobalAveragePooling1D(name="pool")(h)))


def keras_operations() -> keras.Model:
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    return keras.Model([a, b], keras.ops.concatenate([keras.ops.add(a, b), b], axis=1))


def explicit_mask() -> keras.Model:
    x, m = keras.Input((5, 3), name="x"), keras.Input((5,), dtype="bool", name="m")
    return keras.Model([x, m], L.LSTM(2, name="lstm")(x, mask=m))


MODELS: dict[str, Callable[[], keras.Model]] = {
    "nested_sequential": nested_sequential,
    "nested_unbuilt_sequential": nested_unbuilt_sequential,
    "masked_bidirectional": masked_bidirectional,
    "masked_pooling": masked_pooling,
    "masked_concat": masked_concat,
    "masking_layer": masking_layer,
    "causal_attention": causal_attention,
}
CONFIG_ONLY: dict[str, Callable[[], keras.Model]] = {
    "keras_operations": keras_operations,
    "explicit_mask": explicit_mask,
}


def inputs(model: keras.Model, rng: np.random.Generator) -> list[np.ndarray]:
    """Each input drawn for 4 examples: ids with trailing zeros (padding) in 3 of them, features with zero steps."""
    drawn = []
    for tensor in model.inputs:
        shape = (4, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            ids = rng.integers(1, 20, shape)
            for row, kept in enumerate((shape[1], shape[1] - 1, 2, 3)):
                ids[row, kept:] = 0
            drawn.append(ids.astype(np.int32))
        else:
            x = rng.normal(size=shape).astype(np.float32)
            if x.ndim == 3:
                x[:, 3:] = 0.0
            drawn.append(x)
    return drawn


def main() -> None:
    rng = np.random.default_rng(0)
    configs: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, make in {**MODELS, **CONFIG_ONLY}.items():
        keras.utils.clear_session()
        keras.utils.set_random_seed(0)
        model = make()
        configs[name] = model.get_config()
        if name in CONFIG_ONLY:
            continue
        for layer in model.layers:
            weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
            layer.set_weights(weights)
            arrays |= {f"{name}/layer/{layer.name}/{i}": w for i, w in enumerate(weights)}
        x = inputs(model, rng)
        arrays |= {f"{name}/x/{i}": value for i, value in enumerate(x)}
        outputs = keras.tree.flatten(model.predict(x if len(x) > 1 else x[0], verbose=0))
        arrays |= {f"{name}/y/{i}": np.asarray(y) for i, y in enumerate(outputs)}
        print(name, [layer.name for layer in model.layers], [y.shape for y in outputs])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "functional_configs.json").write_text(json.dumps(configs, indent=1) + "\n")
    np.savez_compressed(OUT / "functional_configs.npz", **arrays)


if __name__ == "__main__":
    main()
