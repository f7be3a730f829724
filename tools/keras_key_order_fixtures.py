"""Write what Keras 3 returns where onnxtrain must give the same structure and key order:
tests/data/keras/keras_key_order.json.

* `nested_calls`: a model made of `outputs` (one tensor, a list of one, a list, a tuple, a dict of one, a dict
  {"b": ..., "a": ...}), called on a new Input as a layer of another model: the type of what the call returns
  ("tensor", "list", "tuple", "dict"), a dict's keys in order, and the type of the model's `output`.
  tests/test_functional_outputs.py compares onnxtrain's `Functional` with these.
* `logs`: the key order of `fit(...).history`, of the logs each callback hook gets (train batch end, epoch end
  before and after a callback that adds a key, train end), of a CSVLogger's header, and of
  `evaluate(..., return_dict=True)` / `test_on_batch(..., return_dict=True)`, for models with metrics, weighted
  metrics, validation data (also every second epoch), several outputs (a list and a dict of them) and
  callbacks that add keys (ReduceLROnPlateau's learning_rate, a figure of one's own). Keras 3's CallbackList
  hands every hook its logs sorted by key (`python_utils.pythonify_logs`), so its History lists the first epoch's
  keys sorted, then those first logged later or added by a callback; its CSVLogger sorts its columns.
  tests/test_history_key_order.py compares onnxtrain's with these.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): a few seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_key_order_fixtures.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "keras_key_order.json"
EXAMPLES, FEATURES, BATCH = 16, 4, 8
FITS = {  # fit -> (validation data, epochs, validation_freq, callbacks that add keys)
    "validation": (True, 2, 1, False),
    "validation_every_second_epoch": (True, 3, 2, False),
    "callbacks_add_keys": (True, 2, 1, True),
    "no_validation": (False, 1, 1, False),
}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, tuple):
        return "tuple"
    return "list" if isinstance(value, list) else "tensor"


def nested_calls() -> dict[str, dict[str, Any]]:
    x = keras.Input((FEATURES,), name="x")
    ha = keras.layers.Dense(2, name="da")(x)
    hb = keras.layers.Dense(3, name="db")(x)
    cases: dict[str, Any] = {
        "tensor": ha,
        "list_of_one": [ha],
        "list": [ha, hb],
        "tuple": (ha, hb),
        "dict_of_one": {"a": ha},
        "dict": {"b": hb, "a": ha},
    }
    facts = {}
    for case, outputs in cases.items():
        inner = keras.Model(x, outputs, name=f"inner_{case}")
        called = inner(keras.Input((FEATURES,)))
        facts[case] = {
            "call": _kind(called),
            "keys": list(called) if isinstance(called, dict) else None,
            "output": _kind(inner.output),
        }
    return facts


class _Recorder(keras.callbacks.Callback):
    """The key order of the logs each hook gets (the first call of each)."""

    def __init__(self, name: str, seen: dict[str, list[str]]):
        super().__init__()
        self.name, self.seen = name, seen

    def _keep(self, hook: str, logs: Any) -> None:
        self.seen.setdefault(f"{self.name}.{hook}", list(logs or {}))

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._keep("on_train_batch_end", logs)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._keep(f"on_epoch_end[{epoch}]", logs)

    def on_train_end(self, logs: Any = None) -> None:
        self._keep("on_train_end", logs)


class _AddsFigure(keras.callbacks.Callback):
    """Adds a figure of its own, "scripted", to the epoch logs."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs["scripted"] = 1.0 / (epoch + 1)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    return x, rng.normal(size=(EXAMPLES, 2)).astype(np.float32), rng.integers(0, 3, EXAMPLES).astype(np.int64)


def _model(case: str) -> tuple[keras.Model, Any]:
    """The model of `case`, compiled as tests/test_history_key_order.py compiles onnxtrain's, and its targets."""
    _, regression, classes = _data()
    x = keras.Input((FEATURES,))
    if case == "metrics":
        model = keras.Model(x, keras.layers.Dense(2)(x))
        model.compile(optimizer="sgd", loss="mse", metrics=["mse", "mae"])
        return model, regression
    if case == "weighted":
        model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(x))
        model.compile(
            optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"]
        )
        return model, classes
    reg = keras.layers.Dense(2, name="reg")(x)
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(x)
    if case == "two_outputs":
        model = keras.Model(x, [reg, cls])
        model.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"], metrics=[["mae"], ["accuracy"]])
        return model, [regression, classes]
    assert case == "dict_outputs", case
    model = keras.Model(x, {"zeta": reg, "alpha": cls})
    model.compile(
        optimizer="sgd",
        loss={"zeta": "mse", "alpha": "sparse_categorical_crossentropy"},
        metrics={"zeta": ["mae", "mse"], "alpha": ["accuracy"]},
    )
    return model, {"zeta": regression, "alpha": classes}


def logs() -> dict[str, dict[str, list[str]]]:
    """Per case and fit: the keys, in order, of the History, each hook's logs and the CSVLogger's header."""
    x, _, _ = _data()
    facts: dict[str, dict[str, list[str]]] = {}
    folder = Path(tempfile.mkdtemp())
    for case in ("metrics", "weighted", "two_outputs", "dict_outputs"):
        for fit, (validating, epochs, validation_freq, adds) in FITS.items():
            model, y = _model(case)
            seen: dict[str, list[str]] = {}
            path = folder / f"{case}_{fit}.csv"
            callbacks: list[keras.callbacks.Callback] = [_Recorder("first", seen)]
            if adds:
                callbacks += [_AddsFigure(), keras.callbacks.ReduceLROnPlateau(patience=0)]
            callbacks += [_Recorder("last", seen), keras.callbacks.CSVLogger(str(path))]
            history = model.fit(
                x,
                y,
                validation_data=(x, y) if validating else None,
                validation_freq=validation_freq,
                epochs=epochs,
                batch_size=BATCH,
                shuffle=False,
                verbose=0,
                callbacks=callbacks,
            )
            facts[f"{case}/{fit}"] = {
                "history": list(history.history),
                **seen,
                "csv_header": path.read_text().splitlines()[0].split(","),
                "evaluate_return_dict": list(model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)),
                "test_on_batch_return_dict": list(model.test_on_batch(x, y, return_dict=True)),
            }
    return facts


def main() -> None:
    facts = {"keras_version": keras.__version__, "nested_calls": nested_calls(), "logs": logs()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(facts, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
