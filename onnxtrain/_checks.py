"""What counts as a number or a flag in a hyper-parameter: one rule for every module that checks arguments.

A number is a Python or numpy real (never a bool, which is an int to Python); a flag is a Python or numpy bool.
The callers keep their own messages, which name the class, the argument, the received value and the range.
"""

from __future__ import annotations

import math
import numbers

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
