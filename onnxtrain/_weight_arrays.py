"""set_weights' argument as float32 arrays by parameter name, each checked against the parameter it replaces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


def weight_arrays(
    weights: Mapping[str, Any] | Sequence[Any], current: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """`weights`, a mapping by parameter name (any subset of `current`) or a list of every parameter in `current`'s
    order, as {name: float32 array} of the shapes in `current`.

    Raises:
        InvalidTypeError: a list of names (a get_weights() dict iterated), neither a mapping nor a list, or an
            array of another dtype than float or integer.
        InvalidArgumentError: a list of another length, unknown names, other shapes, non-finite values.
    """
    if isinstance(weights, list | tuple):
        if any(isinstance(value, str) for value in weights):  # [w * 0 for w in model.get_weights()]: its keys
            raise InvalidTypeError(
                "set_weights with a list expects arrays, in get_weights() order. Received: strings "
                f"({weights[:3]!r}{'...' if len(weights) > 3 else ''}). get_weights() returns a dict "
                "{name: array}, so iterating it gives the names: pass a dict, e.g. "
                "{name: w * 0 for name, w in model.get_weights().items()}, or list(model.get_weights().values())."
            )
        if len(weights) != len(current):
            raise InvalidArgumentError(
                f"set_weights with a list expects one array per parameter, in get_weights() order: "
                f"{len(current)} ({list(current)}). Received: {len(weights)} arrays"
            )
        weights = dict(zip(current, weights, strict=True))
    if not isinstance(weights, Mapping):
        raise InvalidTypeError(
            "set_weights expects a mapping of parameter name to array, or a list of arrays in get_weights() "
            f"order. Received: {type(weights).__name__}"
        )
    unknown = sorted(set(weights) - set(current))
    if unknown:
        raise InvalidArgumentError(f"set_weights got unknown parameter names {unknown}. Expected: {sorted(current)}")
    return {name: _weight_array(name, value, current[name].shape) for name, value in weights.items()}


def _weight_array(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`value` as the float32 array of parameter `name`, or one clear error."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise InvalidTypeError(f"set_weights: {name} expects a float or integer array. Received: dtype={array.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32's range become inf, refused below
        array = array.astype(np.float32)
    if array.shape != shape:
        raise InvalidArgumentError(f"set_weights: {name} expects shape {shape}. Received: {array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise InvalidArgumentError(
            f"set_weights: {name} expects finite float32 values. Received: {name}{list(where)}={array[where]} "
            f"({len(bad)} non-finite in all; float64 values beyond float32's range become inf)"
        )
    return array
