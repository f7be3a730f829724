"""What counts as a number or a flag in a hyper-parameter, and the argument checks that several entry points share
(thread counts, positive ints, `validation_split`): one rule for every module that checks arguments.

A number is a Python or numpy real (never a bool, which is an int to Python); a flag is a Python or numpy bool.
The callers keep their own messages, which name the class, the argument, the received value and the range.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_real(value: object) -> float | None:
    """`value` as a Python float when it is a real number, else None; an int beyond float64's range is inf."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def check_bool(owner: str, arg: str, value: object) -> bool:
    """`value` as a Python bool; InvalidArgumentError for anything else (a truthy string is not True)."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidArgumentError(f"{owner}({arg}=...) expects a bool. Received: {arg}={value!r}")
    return bool(value)


MAX_THREADS = 1024
"""More intra-op threads than this is a mistake, not a machine: ONNX Runtime would fail allocating them."""


def check_threads(value: Any) -> int:
    """A positive thread count up to MAX_THREADS."""
    threads = check_positive_int("threads", value)
    if threads > MAX_THREADS:
        raise InvalidArgumentError(
            f"threads expects an int in [1, {MAX_THREADS}] (this machine has {os.cpu_count()} logical CPUs). "
            f"Received: threads={value!r}"
        )
    return threads


def check_positive_int(argument: str, value: Any) -> int:
    """`value` as an int when it is a positive Python or numpy int (not a bool); InvalidArgumentError naming
    `argument` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InvalidArgumentError(f"{argument} expects a positive int. Received: {argument}={value!r}")
    return int(value)


def check_validation_split(value: Any) -> float:
    """fit's `validation_split`: a number in [0, 1), the fraction of the data held out (0 holds out none).

    Raises:
        InvalidArgumentError: a bool (True is an int, but no fraction), a non-number, NaN or a value outside [0, 1).
    """
    fraction = as_real(value)  # Python or numpy reals; never a bool
    if fraction is None or not 0.0 <= fraction < 1.0:
        raise InvalidArgumentError(f"validation_split expects a float in [0, 1). Received: {value!r}")
    return fraction
