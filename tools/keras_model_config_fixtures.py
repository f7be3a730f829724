"""Write the configs Keras 3 writes for whole models (`model.get_config()`), with each model's weights and outputs,
for tests/test_layers_keras_input.py and tests/test_keras_functional_config.py:
tests/data/keras/model_configs.{json,npz}.

Each model's config starts with its InputLayer's (`{"class_name": "InputLayer", "config": {"batch_shape": [None, 6],
"dtype": "float32", "sparse": False, "ragged": False, "name": ..., "optional": False}}`); a Functional's calls name
the tensors they read as Keras' `__keras_tensor__` entries (`keras_history`: layer name, call index, output index),
its `input_layers` and `output_layers` a single ref, a list of refs or a dict of them:

- `sequential`: Input((6,)), Dense(5, relu), Dropout(0.2), Dense(3).
- `sequential_ids`: Input((5,), dtype="int32") token ids, Embedding(10, 4), GlobalAveragePooling1D, Dense(2).
- `functional_dict`: input `x`, Dense `h` (relu) and Dense `skip` added, and a dict of two outputs, `out` (of the
  sum) and `aux` (of `h`), written in that (unsorted) order.
- `functional_shared`: inputs `a` and `b` through one Dense `shared` (called twice), concatenated, a Dropout called
  with training=False, and a list of two outputs.
- `functional_list_of_one`: one input, a list of one output.

`model_configs.json`: {name: {"config": model.get_config(), "class_name": "Sequential" or "Functional"}}.
`model_configs.npz`: `<name>/x` (or `<name>/x/<input name>` for several inputs), `<name>/y/<i>` (the model's
outputs flattened as Keras flattens them: a dict by sorted key), and `<name>/w/<layer>.<weight>` (each weight by
onnxtrain's graph name).

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_model_config_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

L = keras.layers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"


def sequential() -> keras.Model:
    return keras.Sequential([keras.Input((6,)), L.Dense(5, activation="relu"), L.Dropout(0.2), L.Dense(3)])


def sequential_ids() -> keras.Model:
    return keras.Sequential(
        [keras.Input((5,), dtype="int32"), L.Embedding(10, 4), L.GlobalAveragePooling1D(), L.Dense(2)]
    )


def functional_dict() -> keras.Model:
    x = keras.Input((6,), name="x")
    h = L.Dense(5, activation="relu", name="h")(x)
    total = L.Add()([h, L.Dense(5, name="skip")(x)])
    return keras.Model(x, {"out": L.Dense(3, name="out_layer")(total), "aux": L.Dense(1, name="aux_layer")(h)})


def functional_shared() -> keras.Model:
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = L.Dense(3, activation="tanh", name="shared")
    joined = L.Concatenate(name="joined")([shared(a), shared(b)])
    kept = L.Dropout(0.5, name="drop")(joined, training=False)
    return keras.Model([a, b], [L.Dense(2, name="first")(kept), L.Dense(1, name="second")(joined)])


def functional_list_of_one() -> keras.Model:
    x = keras.Input((3,), name="x")
    return keras.Model(x, [L.Dense(2, name="only")(x)])


MODELS = {
    "sequential": sequential,
    "sequential_ids": sequential_ids,
    "functional_dict": functional_dict,
    "functional_shared": functional_shared,
    "functional_list_of_one": functional_list_of_one,
}


def inputs(model: keras.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    drawn = {}
    for tensor in model.inputs:
        shape = (4, *tensor.shape[1:])
        integer = "int" in str(tensor.dtype)
        drawn[tensor.name] = rng.integers(0, 10, shape).astype("int32") if integer else rng.normal(size=shape)
    return {name: value.astype(np.int32 if value.dtype.kind == "i" else np.float32) for name, value in drawn.items()}


def main() -> None:
    rng = np.random.default_rng(0)
    configs: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, make in MODELS.items():
        keras.utils.clear_session()
        keras.utils.set_random_seed(0)
        model = make()
        for weight in model.weights:  # biases away from zero, so that a bias lost in loading shows
            weight.assign(rng.normal(0.0, 0.5, weight.shape).astype(np.float32))
        configs[name] = {"class_name": type(model).__name__, "config": model.get_config()}
        x = inputs(model, rng)
        given: Any = next(iter(x.values())) if len(x) == 1 else [x[t.name] for t in model.inputs]
        if len(x) == 1:
            arrays[f"{name}/x"] = given
        else:
            arrays |= {f"{name}/x/{key}": value for key, value in x.items()}
        outputs = keras.tree.flatten(model.predict(given, verbose=0))
        arrays |= {f"{name}/y/{i}": np.asarray(y) for i, y in enumerate(outputs)}
        arrays |= {f"{name}/w/{'.'.join(w.path.split('/')[-2:])}": np.asarray(w.numpy()) for w in model.weights}
        print(name, type(model).__name__, [w.path for w in model.weights], [y.shape for y in outputs])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "model_configs.json").write_text(json.dumps(configs, indent=1) + "\n")
    np.savez_compressed(OUT / "model_configs.npz", **arrays)


if __name__ == "__main__":
    main()
