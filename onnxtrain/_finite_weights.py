"""Which weights of a model hold NaN or inf, and that said in a message: what NonFiniteLossError reports after a
step that broke them, what save, save_weights and export refuse, and what load_model refuses in a file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from onnxtrain.errors import ModelStateError


def non_finite_weights(weights: Mapping[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """{name: (non-finite values, values)} of each parameter of `weights` that holds NaN or inf, in order."""
    found = {}
    for name, value in weights.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            found[name] = (int(np.count_nonzero(~np.isfinite(array))), int(array.size))
    return found


def describe_non_finite(found: Mapping[str, tuple[int, int]], limit: int = 5) -> str:
    """The parameters of `non_finite_weights` for a message: "dense_1.kernel (112 of 128 values), ..."."""
    named = [f"{name} ({bad} of {size} values)" for name, (bad, size) in found.items()]
    more = f" and {len(named) - limit} more" if len(named) > limit else ""
    return f"parameter{'s' if len(named) > 1 else ''} {', '.join(named[:limit])}{more}"


def trained_weights(model: Any) -> dict[str, np.ndarray]:
    """The weights of `model` that training changes, which a diverged run breaks: its frozen ones may hold what an
    exporter wrote (a causal mask of -inf in an imported graph), and stay as they are."""
    trainable = set(model.graph.trainable_params_by_name())
    return {name: value for name, value in model.get_weights().items() if name in trainable}


def check_finite_weights(weights: Mapping[str, np.ndarray], action: str) -> None:
    """Refuse to `action` (write) weights that hold NaN or inf: a file of them loads into nothing useful.

    Raises:
        ModelStateError: naming the parameters and what to do.
    """
    found = non_finite_weights(weights)
    if found:
        raise ModelStateError(
            f"{action}: the model's {describe_non_finite(found)} hold NaN or inf (training diverged), so the file "
            "would hold a model that predicts nothing and that load_model and load_weights refuse. Nothing was "
            "written. Start again from a saved model (load_model) or finite weights (set_weights, load_weights), "
            "and train with a lower learning rate or clipped gradients (e.g. Adam(clip_norm=1.0))."
        )
