"""Write the dicts Keras 3 writes for its optimizers, for tests/test_optimizers_keras_configs.py:
tests/data/keras/keras_optimizer_configs.json.

Each case is one Keras optimizer made with `kwargs` (Keras' keywords, every one explicit so onnxtrain's constructor
given the same keywords is the reference): `serialized` is `keras.optimizers.serialize(optimizer)` ({"module",
"class_name", "config", "registered_name"}) and `config` its `get_config()` (flat, with Keras' instance name:
"adam", then "adam_1" for a second Adam). Cases under "refused" ask for what onnxtrain does not do (use_ema=True,
gradient_accumulation_steps, loss_scale_factor), with the keyword onnxtrain's message must name.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_optimizer_config_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "keras_optimizer_configs.json"

# case: (Keras' class name, Keras' keywords)
ACCEPTED: dict[str, tuple[str, dict[str, Any]]] = {
    "adam": ("Adam", {"learning_rate": 0.01}),
    "adam_again": ("Adam", {"learning_rate": 0.01}),  # Keras names the second one "adam_1"
    "adam_settings": (
        "Adam",
        {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5, "amsgrad": True, "clipvalue": 0.5},
    ),
    "adamw": ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.01, "global_clipnorm": 1.0}),
    "sgd": ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    "rmsprop": ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True}),
    "adagrad": ("Adagrad", {"learning_rate": 0.02, "initial_accumulator_value": 0.2}),
    "adadelta": ("Adadelta", {"learning_rate": 0.5, "rho": 0.9}),
    "adamax": ("Adamax", {"learning_rate": 0.002, "beta_1": 0.85}),
    "nadam": ("Nadam", {"learning_rate": 0.002}),
    "ftrl": ("Ftrl", {"learning_rate": 0.05, "l1_regularization_strength": 0.01, "initial_accumulator_value": 0.1}),
}
REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "use_ema": ("Adam", {"learning_rate": 0.01, "use_ema": True}, "use_ema"),
    "gradient_accumulation_steps": ("SGD", {"learning_rate": 0.1, "gradient_accumulation_steps": 4}, "gradient_acc"),
    "loss_scale_factor": ("RMSprop", {"learning_rate": 0.01, "loss_scale_factor": 128.0}, "loss_scale_factor"),
}


def written(cls: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    optimizer = getattr(keras.optimizers, cls)(**kwargs)
    return {
        "class": cls,
        "kwargs": kwargs,
        "serialized": keras.optimizers.serialize(optimizer),
        "config": optimizer.get_config(),
    }


def main() -> None:
    cases = {
        "keras_version": keras.__version__,
        "accepted": {case: written(cls, kwargs) for case, (cls, kwargs) in ACCEPTED.items()},
        "refused": {case: {**written(cls, kwargs), "names": names} for case, (cls, kwargs, names) in REFUSED.items()},
    }
    OUT.write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
