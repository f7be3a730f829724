"""Keras' default model names: an unnamed Model is "functional", the next "functional_1", and so on, and an unnamed
Sequential "sequential", "sequential_1", ..., numbered per process as Keras numbers them per session
(`auto_model_name`). A model nested in another takes, while its name is such a default, a name that the other model
gives it (`name_layers` in `_layer_names.py`: "functional", then "functional_1", ..., in that model), so that its
weights' names in the other model's graphs (`functional.dense_1.kernel`) are the same each time it is built.
"""

from __future__ import annotations

import threading
from collections import Counter

AUTO_NAMED = "_auto_named"
"""In a model's `__dict__`, and its graph's: the prefix of its default name ("functional"), while it has one."""

_COUNTS: Counter[str] = Counter()
_LOCK = threading.Lock()


def auto_model_name(prefix: str) -> str:
    """The next default name of a model of kind `prefix` ("functional", "sequential"): `prefix` itself the first
    time in a process, then `prefix_1`, `prefix_2`, ..., as Keras names them (`keras.src.backend.common.global_state`
    counts them per session)."""
    with _LOCK:
        count = _COUNTS[prefix]
        _COUNTS[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def reset_model_names() -> None:
    """Number default model names from the start again, as Keras' `clear_session()` does (tests compare names with
    Keras' in a fresh session)."""
    with _LOCK:
        _COUNTS.clear()
