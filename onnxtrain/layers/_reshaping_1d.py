"""The sequence reshaping layers: ZeroPadding1D, Cropping1D and UpSampling1D, over (steps, features) inputs.

Shapes are Keras' (features last); the layers also take channels-first values, (N, features, steps), as Conv1D
hands them on (see `_layout.py`), so they sit between convolutions without a Transpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import is_channels_first, same_layout


def _sequence_shape(layer: Layer, input_shape: Shape) -> None:
    if len(input_shape) != 2:
        raise ShapeError(
            f"{describe(layer)} expects sequences of shape [None, steps, features]. "
            f"Received: input shape {format_shape(input_shape)}"
        )


def _steps_axis(builder: GraphBuilder, x: str) -> int:
    """The steps axis of sequence value `x` in the graph: 2 channels first, else 1."""
    return 2 if is_channels_first(builder, x) else 1


def _ends(owner: str, arg: str, value: object) -> tuple[int, int]:
    """Keras' 1D padding or cropping: an int (both ends) or (start, end), each >= 0."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
        return (int(value), int(value))
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects a non-negative int or a tuple of 2 non-negative ints (start, end). "
        f"Received: {arg}={value!r}"
    )


class ZeroPadding1D(Layer):
    """Adds steps of zeros at the start and end of sequences: `padding` is an int (both ends) or (start, end)."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(self, padding: int | tuple[int, int] = 1, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.padding = _ends("ZeroPadding1D", "padding", padding)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _sequence_shape(self, input_shape)
        return (input_shape[0] + sum(self.padding), input_shape[1])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        starts, ends = [0] * 3, [0] * 3
        axis = _steps_axis(builder, x)
        starts[axis], ends[axis] = self.padding
        pads = builder.ints(starts + ends, "pads")
        return same_layout(builder, x, builder.node("Pad", [x, pads], hint="zero_padding", mode="constant"))

    def get_config(self) -> dict[str, Any]:
        return {"padding": list(self.padding), **super().get_config()}


class Cropping1D(Layer):
    """Removes steps at the start and end of sequences: `cropping` is an int (both ends) or (start, end)."""

    accepts_channels_first = True

    def __init__(self, cropping: int | tuple[int, int] = (1, 1), name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.cropping = _ends("Cropping1D", "cropping", cropping)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _sequence_shape(self, input_shape)
        steps = input_shape[0] - sum(self.cropping)
        if steps <= 0:
            raise ShapeError(
                f"{describe(self)} with cropping={list(self.cropping)} leaves nothing of sequences of "
                f"{input_shape[0]} steps. Received: input shape {format_shape(input_shape)}"
            )
        return (steps, input_shape[1])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        start, end = self.cropping
        inputs = [
            x,
            builder.ints([start], "starts"),
            builder.ints([self.input_shape[0] - end], "ends"),
            builder.ints([_steps_axis(builder, x)], "axes"),
        ]
        return same_layout(builder, x, builder.node("Slice", inputs, hint="cropping"))

    def get_config(self) -> dict[str, Any]:
        return {"cropping": list(self.cropping), **super().get_config()}


class UpSampling1D(Layer):
    """Repeats each step `size` times: (N, steps, features) becomes (N, steps * size, features)."""

    accepts_channels_first = True

    def __init__(self, size: int = 2, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.size = _positive_int("UpSampling1D", "size", size)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _sequence_shape(self, input_shape)
        return (input_shape[0] * self.size, input_shape[1])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.output_shape is not None, "layers must be built"
        # (N, steps, 1, F) tiled to (N, steps, size, F) and merged; channels first (N, F, steps, 1) the same way.
        axis = _steps_axis(builder, x)
        column = builder.node("Unsqueeze", [x, builder.ints([axis + 1], "axis")])
        repeats = [1, 1, 1, 1]
        repeats[axis + 1] = self.size
        tiled = builder.node("Tile", [column, builder.ints(repeats, "repeats")], hint="repeat")
        steps, features = self.output_shape
        shape = [0, features, steps] if axis == 2 else [0, steps, features]
        return same_layout(
            builder, x, builder.node("Reshape", [tiled, builder.ints(shape, "shape")], hint="up_sampling")
        )

    def get_config(self) -> dict[str, Any]:
        return {"size": self.size, **super().get_config()}
