"""The volume reshaping layers: ZeroPadding3D, Cropping3D and UpSampling3D, over (depth, height, width, channels)
inputs.

Shapes are Keras' (channels last); the layers also take channels-first values, (N, C, D, H, W), as Conv3D hands
them on (see `_layout.py`), so they sit between convolutions without a Transpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import channels_first, is_channels_first, mark_channels_first, same_layout

Sides = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
_AXES = "(depth, height, width)"


def _count(value: object) -> int | None:
    """`value` as a non-negative int, or None."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
        return int(value)
    return None


def _entry(value: object) -> tuple[int, int] | None:
    """One axis' (start, end) from an int (both) or a pair of non-negative ints; None otherwise."""
    if (n := _count(value)) is not None:
        return (n, n)
    if isinstance(value, tuple | list) and len(value) == 2:
        start, end = _count(value[0]), _count(value[1])
        if start is not None and end is not None:
            return (start, end)
    return None


def _sides(owner: str, arg: str, value: object) -> Sides:
    """Keras' 3D padding or cropping: an int (every side), or one entry per axis (depth, height, width), each an
    int (both sides) or (start, end)."""
    if (n := _count(value)) is not None:
        return ((n, n), (n, n), (n, n))
    if isinstance(value, tuple | list) and len(value) == 3:
        depth, height, width = (_entry(entry) for entry in value)
        if depth is not None and height is not None and width is not None:
            return (depth, height, width)
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects a non-negative int, or 3 entries {_AXES}, each a non-negative int or a tuple "
        f"(start, end) of them, e.g. ((1, 1), 2, (0, 1)). Received: {arg}={value!r}"
    )


def _volume_shape(layer: Layer, input_shape: Shape) -> None:
    if len(input_shape) != 4:
        raise ShapeError(
            f"{describe(layer)} expects volumes of shape [None, depth, height, width, channels]. "
            f"Received: input shape {format_shape(input_shape)}"
        )


def _spatial_axes(builder: GraphBuilder, x: str) -> list[int]:
    """The depth, height and width axes of volume value `x` in the graph: (2, 3, 4) channels first, else (1, 2, 3)."""
    return [2, 3, 4] if is_channels_first(builder, x) else [1, 2, 3]


class ZeroPadding3D(Layer):
    """Adds zeros around volumes: `padding` is an int (every side) or one entry per axis (depth, height, width),
    each an int (both sides) or (start, end). Example: `ZeroPadding3D((1, (0, 2), 1))`."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(
        self,
        padding: int | tuple[Any, Any, Any] = ((1, 1), (1, 1), (1, 1)),
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.padding: Sides = _sides("ZeroPadding3D", "padding", padding)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _volume_shape(self, input_shape)
        return (*(n + sum(ends) for n, ends in zip(input_shape[:3], self.padding, strict=True)), input_shape[3])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        starts, ends = [0] * 5, [0] * 5
        for axis, (begin, end) in zip(_spatial_axes(builder, x), self.padding, strict=True):
            starts[axis], ends[axis] = begin, end
        pads = builder.ints(starts + ends, "pads")
        return same_layout(builder, x, builder.node("Pad", [x, pads], hint="zero_padding", mode="constant"))

    def get_config(self) -> dict[str, Any]:
        return {"padding": [list(ends) for ends in self.padding], **super().get_config()}


class Cropping3D(Layer):
    """Removes the edges of volumes: `cropping` takes the same forms as ZeroPadding3D's `padding`."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(
        self,
        cropping: int | tuple[Any, Any, Any] = ((1, 1), (1, 1), (1, 1)),
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.cropping: Sides = _sides("Cropping3D", "cropping", cropping)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _volume_shape(self, input_shape)
        sizes = tuple(n - sum(ends) for n, ends in zip(input_shape[:3], self.cropping, strict=True))
        if min(sizes) <= 0:
            raise ShapeError(
                f"{describe(self)} with cropping={[list(ends) for ends in self.cropping]} leaves nothing of volumes "
                f"of {'x'.join(map(str, input_shape[:3]))}. Received: input shape {format_shape(input_shape)}"
            )
        return (*sizes, input_shape[3])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        starts = [begin for begin, _ in self.cropping]
        ends = [n - end for n, (_, end) in zip(self.input_shape[:3], self.cropping, strict=True)]
        inputs = [
            x,
            builder.ints(starts, "starts"),
            builder.ints(ends, "ends"),
            builder.ints(_spatial_axes(builder, x), "axes"),
        ]
        return same_layout(builder, x, builder.node("Slice", inputs, hint="cropping"))

    def get_config(self) -> dict[str, Any]:
        return {"cropping": [list(ends) for ends in self.cropping], **super().get_config()}


class UpSampling3D(Layer):
    """Repeats each voxel `size` = (depth, height, width) times (an int: on every axis): (N, D, H, W, C) becomes
    (N, D * size[0], H * size[1], W * size[2], C). Keras' UpSampling3D has no interpolation: nearest only."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(self, size: int | tuple[int, int, int] = (2, 2, 2), name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        sizes = [size] * 3 if isinstance(size, int | np.integer) and not isinstance(size, bool) else size
        if (
            not isinstance(sizes, tuple | list)
            or len(sizes) != 3
            or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0 for v in sizes)
        ):
            raise InvalidArgumentError(
                f"UpSampling3D(size=...) expects a positive int or a tuple of 3 positive ints {_AXES}. "
                f"Received: size={size!r}"
            )
        self.size: tuple[int, int, int] = (int(sizes[0]), int(sizes[1]), int(sizes[2]))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _volume_shape(self, input_shape)
        return (*(n * s for n, s in zip(input_shape[:3], self.size, strict=True)), input_shape[3])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        # Channels first, as UpSampling2D: a nearest Resize by whole factors repeats each voxel.
        x = channels_first(builder, x, 5)
        scales = builder.constant(np.array([1.0, 1.0, *self.size], np.float32), "scales")
        attributes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        return mark_channels_first(builder, builder.node("Resize", [x, "", scales], hint="up_sampling", **attributes))

    def get_config(self) -> dict[str, Any]:
        return {"size": list(self.size), **super().get_config()}
