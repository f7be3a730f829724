"""What the normalization layers share: a number in an interval (epsilon, momentum), Keras' `axis` (counting the batch
axis, negative from the end) as indices of an input's axes, and the penalties of gamma and beta."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain._checks import as_real
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.regularizers import Regularizer, add_penalty


def _number(owner: str, arg: str, value: object, low: float, high: float, low_open: bool = False) -> float:
    number = as_real(value)
    if number is None or not (low < number if low_open else low <= number) or not number <= high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise InvalidArgumentError(f"{owner}({arg}=...) expects a number in {interval}. Received: {arg}={value!r}")
    return number


def _batched_axis(layer: Layer, axis: int, input_shape: Shape) -> int:
    """Keras' `axis` (counting the batch axis, negative from the end) as a positive index; never the batch axis."""
    rank = len(input_shape) + 1
    if not -rank < axis < rank or axis % rank == 0:
        raise ShapeError(
            f"{describe(layer)} got axis={axis}, which is no feature axis of inputs of "
            f"shape {format_shape(input_shape)} (expected -{rank - 1}..-1 or 1..{rank - 1})."
        )
    return axis % rank


def _axis_list(owner: str, axis: object) -> int | list[int]:
    """Keras' `axis` of LayerNormalization and UnitNormalization: an int, or a non-empty list of ints."""
    axes = [axis] if isinstance(axis, int | np.integer) and not isinstance(axis, bool) else axis
    if (
        not isinstance(axes, list | tuple)
        or not axes
        or any(isinstance(a, bool) or not isinstance(a, int | np.integer) for a in axes)
    ):
        raise InvalidArgumentError(
            f"{owner}(axis=...) expects an int or a non-empty list of ints. Received: axis={axis!r}"
        )
    return int(axis) if isinstance(axis, int | np.integer) else [int(a) for a in axes]


def _batched_axes(layer: Layer, axis: int | list[int], input_shape: Shape) -> list[int]:
    """`_axis_list`'s axis as sorted positive indices (`_batched_axis`), each once."""
    axes = axis if isinstance(axis, list) else [axis]
    positive = sorted({_batched_axis(layer, a, input_shape) for a in axes})
    if len(positive) != len(axes):
        raise InvalidArgumentError(f"{type(layer).__name__}(axis=...) names an axis twice. Received: axis={axis}")
    return positive


def penalties(layer: Layer) -> dict[str, Any]:
    """The config of a normalization layer's `beta_regularizer` and `gamma_regularizer` (None where it has none)."""
    result: dict[str, Any] = {}
    for local in ("beta", "gamma"):
        regularizer: Regularizer | None = getattr(layer, f"{local}_regularizer")
        result[f"{local}_regularizer"] = None if regularizer is None else regularizer.get_config()
    return result


def add_penalties(builder: GraphBuilder, layer: Layer, params: dict[str, str]) -> None:
    """Add the penalties of a normalization layer's gamma and beta (graph names in `params`) to the loss, as Keras
    does: not for a frozen layer."""
    if not layer.trainable:
        return
    for local in ("gamma", "beta"):
        if local in params:
            add_penalty(builder, getattr(layer, f"{local}_regularizer"), params[local])
