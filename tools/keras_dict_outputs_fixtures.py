"""Write Keras 3 reference structure and numbers for a model of a dict of outputs whose keys are not in sorted order,
`Model(x, {"score": Dense(2)(h), "box": Dense(3)(h)})`: tests/data/keras/dict_outputs.json and .npz.

Keras 3 flattens a dict of outputs in sorted key order: its `layers`, `get_weights()` list, `outputs`,
`output_names`, predict's dict and compile's and fit's list-form arguments (loss, loss_weights, metrics, y) follow
the sorted keys ("box" before "score"), while `model.output`, a call on data and the config's `output_layers` keep
the dict's own order. tests/test_functional_dict_outputs.py compares onnxtrain's with these, without Keras.

Stored:
  * `structure` (json): layer names, output names, the outputs' shapes, the keys of `model.output`, of predict's
    dict, of a call on data and of `get_config()["output_layers"]`, the weights' paths, the summary's layer order.
  * `list` (json logs, npz arrays `list_*`): compile(SGD(0.05), loss=["mse", "mae"], loss_weights=[0.5, 2.0],
    metrics=[["mae"], ["mse"]]) and fit(x, [y_box, y_score]) from the starting weights `w0_*` (Keras' list), batch
    8, 2 epochs, no shuffle: the history, evaluate's dict after fit, the weights after fit (Keras' list) and
    predict's arrays after fit.
  * `dict` (json logs, npz arrays `dict_*`): the same by name (loss={"score": "mae", "box": "mse"}, ...), and fit's
    targets and sample weights as dicts (`sw` weighing the box output): a dict-form argument keeps working by name.
Data: x [16, 4], y_box [16, 3], y_score [16, 2], sw [16].

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_dict_outputs_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "dict_outputs"
EXAMPLES, FEATURES, HIDDEN, BATCH, EPOCHS, LEARNING_RATE = 16, 4, 5, 8, 2, 0.05


def _model() -> keras.Model:
    x = keras.Input((FEATURES,), name="x")
    h = keras.layers.Dense(HIDDEN, activation="tanh", name="h")(x)
    return keras.Model(
        x, {"score": keras.layers.Dense(2, name="score")(h), "box": keras.layers.Dense(3, name="box")(h)}
    )


def _structure(model: keras.Model, x: np.ndarray) -> dict[str, Any]:
    rows: list[str] = []
    model.summary(print_fn=lambda line, **_: rows.append(line))
    in_summary = [name for name in (layer.name for layer in model.layers) if any(f"{name} (" in r for r in rows)]
    return {
        "layers": [layer.name for layer in model.layers],
        "output_names": list(model.output_names),
        "output_shapes": [list(t.shape[1:]) for t in model.outputs],
        "output_keys": list(model.output),
        "predict_keys": list(model.predict(x, verbose=0)),
        "call_keys": list(model(x)),
        "config_output_layers": list(model.get_config()["output_layers"]),
        "weight_paths": [w.path for w in model.weights],
        "summary_layers": in_summary,
    }


def _fit(
    model: keras.Model, x: np.ndarray, y: Any, sample_weight: Any, compile_args: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), **compile_args)
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    evaluated = model.evaluate(x, y, sample_weight=sample_weight, batch_size=BATCH, verbose=0, return_dict=True)
    predicted = model.predict(x, batch_size=BATCH, verbose=0)
    logs = {
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        "evaluate": {key: float(value) for key, value in evaluated.items()},
    }
    arrays = {f"w1_{k}": w for k, w in enumerate(model.get_weights())}
    arrays.update({f"predict_{key}": value for key, value in predicted.items()})
    return logs, arrays


def main() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    y_box = rng.normal(size=(EXAMPLES, 3)).astype(np.float32)
    y_score = (3.0 * rng.normal(size=(EXAMPLES, 2))).astype(np.float32)
    sw = rng.uniform(0.2, 1.0, size=EXAMPLES).astype(np.float32)
    keras.utils.set_random_seed(3)
    model = _model()
    start = [w.copy() for w in model.get_weights()]
    facts: dict[str, Any] = {"keras_version": keras.__version__, "structure": _structure(model, x)}
    arrays: dict[str, np.ndarray] = {"x": x, "y_box": y_box, "y_score": y_score, "sw": sw}
    arrays.update({f"w0_{k}": w for k, w in enumerate(start)})
    arrays.update({f"predict0_{key}": value for key, value in model.predict(x, verbose=0).items()})

    as_list = {"loss": ["mse", "mae"], "loss_weights": [0.5, 2.0], "metrics": [["mae"], ["mse"]]}
    facts["list"], own = _fit(model, x, [y_box, y_score], None, as_list)
    arrays.update({f"list_{key}": value for key, value in own.items()})

    model = _model()
    model.set_weights(start)
    by_name = {
        "loss": {"score": "mae", "box": "mse"},
        "loss_weights": {"score": 2.0, "box": 0.5},
        "metrics": {"score": ["mse"], "box": ["mae"]},
    }
    weights = {"score": np.ones(EXAMPLES, np.float32), "box": sw}
    facts["dict"], own = _fit(model, x, {"score": y_score, "box": y_box}, weights, by_name)
    arrays.update({f"dict_{key}": value for key, value in own.items()})

    OUT.with_suffix(".json").write_text(json.dumps(facts, indent=1) + "\n")
    np.savez(OUT.with_suffix(".npz"), **arrays)
    print(json.dumps(facts["structure"]))


if __name__ == "__main__":
    main()
