"""Write Keras 3's learning-rate schedule values for tests/test_optimizers_schedules.py:
tests/data/keras/schedules.npz.

For each case, a Keras schedule from `keras.optimizers.schedules` is called at steps 0..STEPS-1 (what Keras' optimizer
passes: its `iterations` before the update). The file holds, per case, `<case>/values` (Keras' float32 results) and
`<case>/schedule` (Keras' own serialized form of the schedule, JSON: {"module", "class_name", "config",
"registered_name"}), which the test rebuilds with onnxtrain's class of the same name, without Keras installed.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_schedule_fixtures.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "schedules.npz"
STEPS = 80

# case -> (Keras class name, keyword arguments): each past its decay steps, staircase, cycle, warmup and restarts.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "exponential": ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5}),
    "exponential_staircase": (
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5, "staircase": True},
    ),
    "exponential_growth_float_steps": (
        "ExponentialDecay",
        {"initial_learning_rate": 1e-3, "decay_steps": 2.5, "decay_rate": 1.05},
    ),
    "piecewise": ("PiecewiseConstantDecay", {"boundaries": [5, 10, 20], "values": [0.1, 0.05, 0.01, 0.001]}),
    "piecewise_one_boundary": ("PiecewiseConstantDecay", {"boundaries": [0], "values": [0.5, 0.25]}),
    "polynomial_defaults": ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 10}),
    "polynomial": (
        "PolynomialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 20, "end_learning_rate": 0.001, "power": 2.0},
    ),
    "polynomial_cycle": (
        "PolynomialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 9, "end_learning_rate": 0.01, "power": 0.5, "cycle": True},
    ),
    "inverse_time": ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}),
    "inverse_time_staircase": (
        "InverseTimeDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5, "staircase": True},
    ),
    "cosine": ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 20}),
    "cosine_alpha": ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 30, "alpha": 0.1}),
    "cosine_warmup_from_zero": (
        "CosineDecay",
        {"initial_learning_rate": 0.0, "decay_steps": 20, "alpha": 0.05, "warmup_target": 0.2, "warmup_steps": 8},
    ),
    "cosine_warmup": (
        "CosineDecay",
        {"initial_learning_rate": 0.01, "decay_steps": 15, "warmup_target": 0.1, "warmup_steps": 5},
    ),
    "restarts_defaults": ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 5}),
    "restarts": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 4, "t_mul": 1.5, "m_mul": 0.8, "alpha": 0.05},
    ),
    "restarts_same_length": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 6, "t_mul": 1.0, "m_mul": 0.5},
    ),
}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for case, (class_name, arguments) in CASES.items():
        schedule = getattr(keras.optimizers.schedules, class_name)(**arguments)
        # Keras' optimizer calls its schedule with `iterations`, an int variable: the same as an int tensor.
        values = [float(schedule(keras.ops.convert_to_tensor(step))) for step in range(STEPS)]
        arrays[f"{case}/values"] = np.array(values, np.float32)
        arrays[f"{case}/schedule"] = np.array(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    arrays["keras_version"] = np.array(keras.__version__)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(CASES)} cases, steps 0..{STEPS - 1}, Keras {keras.__version__})")


if __name__ == "__main__":
    main()
