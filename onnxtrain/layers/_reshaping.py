"""Reshaping layers: Reshape, Permute, RepeatVector, and the image ones ZeroPadding2D, Cropping2D and UpSampling2D.

Shapes are Keras' (channels last); the image layers also take channels-first values (see `_layout.py`), so they sit
between convolutions without a Transpose.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Shape, format_shape
from onnxtrain.layers._layout import channels_first, is_channels_first, mark_channels_first, same_layout

Pairs = tuple[tuple[int, int], tuple[int, int]]


def _int_list(value: object) -> list[int] | None:
    if isinstance(value, tuple | list) and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value
    ):
        return [int(v) for v in value]
    return None


def _image_shape(layer: Layer, input_shape: Shape) -> None:
    if len(input_shape) != 3:
        raise ShapeError(
            f"{type(layer).__name__} layer {layer.name!r} expects images of shape [None, height, width, channels]. "
            f"Received: input shape {format_shape(input_shape)}"
        )


def _spatial_axes(builder: GraphBuilder, x: str) -> list[int]:
    """The height and width axes of image value `x` in the graph: (2, 3) channels first, else (1, 2)."""
    return [2, 3] if is_channels_first(builder, x) else [1, 2]


def _pairs(owner: str, arg: str, value: object) -> Pairs:
    """Keras' 2D padding or cropping: an int (every side), (rows, cols) or ((top, bottom), (left, right))."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
        return ((int(value),) * 2, (int(value),) * 2)
    flat = _int_list(value)
    if flat is not None and len(flat) == 2 and min(flat) >= 0:
        return ((flat[0], flat[0]), (flat[1], flat[1]))
    if isinstance(value, tuple | list) and len(value) == 2:
        sides = [_int_list(side) for side in value]
        if all(side is not None and len(side) == 2 and min(side) >= 0 for side in sides):
            (top, bottom), (left, right) = sides  # type: ignore[misc]
            return ((top, bottom), (left, right))
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects a non-negative int, a tuple of 2 (rows, columns) or a tuple of 2 tuples "
        f"((top, bottom), (left, right)). Received: {arg}={value!r}"
    )


def _as_lists(pairs: Pairs) -> list[list[int]]:
    return [list(pairs[0]), list(pairs[1])]


class Reshape(Layer):
    """Reshapes each example to `target_shape` (the batch is kept); one dimension may be -1, inferred.

    Example: `Reshape((4, -1))` turns (N, 2, 6) into (N, 4, 3).
    """

    def __init__(self, target_shape: tuple[int, ...] | list[int], name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        dims = _int_list(target_shape)
        if not dims or any(d == 0 or d < -1 for d in dims) or dims.count(-1) > 1:
            raise InvalidArgumentError(
                "Reshape(target_shape=...) expects a tuple of positive ints, at most one of them -1, without the "
                f"batch dimension. Received: target_shape={target_shape!r}"
            )
        self.target_shape: Shape = tuple(dims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        size, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if math.prod(shape) != size:
            raise ShapeError(
                f"Reshape layer {self.name!r} cannot reshape input {format_shape(input_shape)} ({size} values per "
                f"example) to target_shape {self.target_shape}. Received: input shape {format_shape(input_shape)}"
            )
        return shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.output_shape is not None, "layers must be built"
        shape = builder.ints([0, *self.output_shape], "target_shape")
        return builder.node("Reshape", [x, shape], hint="reshape")  # 0: the batch dimension as it is

    def get_config(self) -> dict[str, Any]:
        return {"target_shape": list(self.target_shape), **super().get_config()}


class Permute(Layer):
    """Permutes the axes of each example; `dims` numbers them from 1, as Keras does (the batch axis is 0).

    Example: `Permute((2, 1))` turns (N, 3, 5) into (N, 5, 3).
    """

    def __init__(self, dims: tuple[int, ...] | list[int], name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        values = _int_list(dims)
        if not values or sorted(values) != list(range(1, len(values) + 1)):
            raise InvalidArgumentError(
                "Permute(dims=...) expects a permutation of 1..rank (the batch axis is 0 and stays), e.g. (2, 1). "
                f"Received: dims={dims!r}"
            )
        self.dims: Shape = tuple(values)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(self.dims) != len(input_shape):
            raise ShapeError(
                f"Permute layer {self.name!r} with dims={self.dims} expects inputs of rank {len(self.dims)} (batch "
                f"excluded). Received: input shape {format_shape(input_shape)}"
            )
        return tuple(input_shape[d - 1] for d in self.dims)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Transpose", [x], hint="permute", perm=[0, *self.dims])

    def get_config(self) -> dict[str, Any]:
        return {"dims": list(self.dims), **super().get_config()}


class RepeatVector(Layer):
    """Repeats a vector `n` times: (N, features) becomes (N, n, features)."""

    def __init__(self, n: int, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.n = _positive_int("RepeatVector", "n", n)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ShapeError(
                f"RepeatVector layer {self.name!r} expects a flat input of shape [None, features]. Received: input "
                f"shape {format_shape(input_shape)}. Add Flatten() before it."
            )
        return (self.n, input_shape[0])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        row = builder.node("Unsqueeze", [x, builder.ints([1], "axis")])
        repeats = builder.ints([1, self.n, 1], "repeats")
        return builder.node("Tile", [row, repeats], hint="repeat")

    def get_config(self) -> dict[str, Any]:
        return {"n": self.n, **super().get_config()}


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around images: `padding` is an int (every side), (rows, columns) (both sides
    of each) or ((top, bottom), (left, right))."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(self, padding: int | tuple[Any, Any] = (1, 1), name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.padding: Pairs = _pairs("ZeroPadding2D", "padding", padding)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _image_shape(self, input_shape)
        (top, bottom), (left, right) = self.padding
        return (input_shape[0] + top + bottom, input_shape[1] + left + right, input_shape[2])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        starts, ends = [0] * 4, [0] * 4
        for axis, (begin, end) in zip(_spatial_axes(builder, x), self.padding, strict=True):
            starts[axis], ends[axis] = begin, end
        pads = builder.ints(starts + ends, "pads")
        return same_layout(builder, x, builder.node("Pad", [x, pads], hint="zero_padding", mode="constant"))

    def get_config(self) -> dict[str, Any]:
        return {"padding": _as_lists(self.padding), **super().get_config()}


class Cropping2D(Layer):
    """Removes rows and columns at the edges of images: `cropping` takes the same forms as ZeroPadding2D's
    `padding`."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(
        self, cropping: int | tuple[Any, Any] = ((0, 0), (0, 0)), name: str | None = None, trainable: bool = True
    ):
        super().__init__(name=name, trainable=trainable)
        self.cropping: Pairs = _pairs("Cropping2D", "cropping", cropping)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _image_shape(self, input_shape)
        (top, bottom), (left, right) = self.cropping
        height, width = input_shape[0] - top - bottom, input_shape[1] - left - right
        if height <= 0 or width <= 0:
            raise ShapeError(
                f"Cropping2D layer {self.name!r} with cropping={_as_lists(self.cropping)} leaves nothing of images "
                f"of {input_shape[0]}x{input_shape[1]}. Received: input shape {format_shape(input_shape)}"
            )
        return (height, width, input_shape[2])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        (top, bottom), (left, right) = self.cropping
        height, width = self.input_shape[:2]
        starts, ends = builder.ints([top, left], "starts"), builder.ints([height - bottom, width - right], "ends")
        cropped = builder.node(
            "Slice", [x, starts, ends, builder.ints(_spatial_axes(builder, x), "axes")], hint="cropping"
        )
        return same_layout(builder, x, cropped)

    def get_config(self) -> dict[str, Any]:
        return {"cropping": _as_lists(self.cropping), **super().get_config()}


# Keras' interpolations -> ONNX Resize attributes that compute the same (Keras/JAX and TensorFlow sample at pixel
# centers, and clamp, or renormalize weights, at the edges). Bicubic is two MatMuls instead (`_bicubic_matrix`):
# ONNX Runtime's transpose optimizer moves a cubic Resize to channels last, which its own kernel then refuses.
_RESIZE: dict[str, dict[str, Any]] = {
    "nearest": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    "bilinear": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
}
_INTERPOLATIONS = (*_RESIZE, "bicubic")


def _bicubic_matrix(size: int, factor: int) -> np.ndarray:
    """(size * factor, size): row j weighs the inputs for output j as Keras' bicubic resize does (Keys' kernel with
    a = -0.5 at pixel centers; the weights of taps outside the image are dropped and the rest renormalized)."""
    a = -0.5
    positions = (np.arange(size * factor) + 0.5) / factor - 0.5
    d = np.abs(positions[:, None] - np.arange(size)[None, :])
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    weights = np.where(d <= 1, near, np.where(d < 2, far, 0.0))
    return weights / weights.sum(axis=1, keepdims=True)


class UpSampling2D(Layer):
    """Enlarges images `size` = (rows, columns) times (an int: both): "nearest" repeats each pixel, "bilinear" and
    "bicubic" interpolate as Keras does (at pixel centers, edges clamped)."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(
        self,
        size: int | tuple[int, int] = (2, 2),
        interpolation: str = "nearest",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        sizes = [size, size] if isinstance(size, int | np.integer) and not isinstance(size, bool) else _int_list(size)
        if sizes is None or len(sizes) != 2 or min(sizes) <= 0:
            raise InvalidArgumentError(
                "UpSampling2D(size=...) expects a positive int or a tuple of 2 (rows, columns). "
                f"Received: size={size!r}"
            )
        self.size: tuple[int, int] = (int(sizes[0]), int(sizes[1]))
        key = getattr(interpolation, "value", interpolation)  # KotlinDL's InterpolationMethod-like enums
        if not isinstance(key, str) or key.lower() not in _INTERPOLATIONS:
            raise InvalidArgumentError(
                f"UpSampling2D(interpolation=...) expects one of {list(_INTERPOLATIONS)}. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = key.lower()

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _image_shape(self, input_shape)
        return (input_shape[0] * self.size[0], input_shape[1] * self.size[1], input_shape[2])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        # Channels first: ONNX Runtime's Resize interpolates NCHW images on every kernel.
        x = channels_first(builder, x, 4)
        if self.interpolation == "bicubic":  # (H', H) @ x @ (W, W'): x is (N, C, H, W)
            assert self.input_shape is not None, "layers must be built"
            (height, width, _), (rows, columns) = self.input_shape, self.size
            by_rows = builder.constant(_bicubic_matrix(height, rows).astype(np.float32), "rows")
            by_columns = builder.constant(_bicubic_matrix(width, columns).T.astype(np.float32), "columns")
            resized = builder.node("MatMul", [builder.node("MatMul", [by_rows, x]), by_columns], hint="up_sampling")
        else:
            scales = builder.constant(np.array([1.0, 1.0, *self.size], np.float32), "scales")
            resized = builder.node("Resize", [x, "", scales], hint="up_sampling", **_RESIZE[self.interpolation])
        return mark_channels_first(builder, resized)

    def get_config(self) -> dict[str, Any]:
        return {"size": list(self.size), "interpolation": self.interpolation, **super().get_config()}
