"""Resizing and CenterCrop: Keras 3's deterministic image layers, applied in training, evaluation, prediction and the
export alike, with Keras' numbers (its JAX backend's `jax.image.resize`).

Each axis whose size changes is resized on its own, as JAX does:

- "bilinear": ONNX Resize (mode linear, half_pixel): samples at pixel centers, (i + 0.5) * in / out - 0.5, edges
  clamped, which is JAX's triangle kernel without antialiasing.
- "nearest": a Gather of input (i + 0.5) * in / out, rounded down in float32, JAX's indices exactly (Resize's
  nearest modes round some sizes differently: 20 -> 6 rows, 14 -> 1).
- "bicubic": a MatMul by the matrix of JAX's weights (Keys' kernel, a = -0.5, renormalized at the edges), as
  UpSampling2D does: ONNX Runtime's layout optimizer hands a cubic Resize to a kernel that refuses it.

Keras' "lanczos3" and "lanczos5" and `antialias=True` are refused (not implemented here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real, check_bool
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import channels_first, mark_channels_first

INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
_NOT_IMPLEMENTED = ("lanczos3", "lanczos5")  # Keras' (JAX's) other resize methods
Size = tuple[int, int]
Box = tuple[int, int, int, int]  # top, left, height, width


def image_shape(layer: Layer, input_shape: Shape) -> Shape:
    """`input_shape` when it is one image's (height, width, channels); ShapeError otherwise."""
    if len(input_shape) != 3:
        raise ShapeError(
            f"{describe(layer)} expects images of shape [None, height, width, channels]. "
            f"Received: input shape {format_shape(input_shape)}"
        )
    return input_shape


def aspect_crop(size: Size, target: Size) -> Box:
    """Keras' `smart_resize` crop: the largest centered window of `size` with the aspect ratio of `target`."""
    (height, width), (target_height, target_width) = size, target
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - crop_height) / 2), int(float(width - crop_width) / 2), crop_height, crop_width


def crop(builder: GraphBuilder, x: str, box: Box) -> str:
    """The `box` of channels-first images `x` (a Slice of the height and width axes)."""
    top, left, height, width = box
    starts, ends = builder.ints([top, left], "starts"), builder.ints([top + height, left + width], "ends")
    return builder.node("Slice", [x, starts, ends, builder.ints([2, 3], "axes")], hint="cropped")


def smart_resize(builder: GraphBuilder, x: str, size: Size, target: Size) -> str:
    """Keras' `smart_resize` of channels-first images `x` of `size`: the centered crop of the target's aspect
    ratio, resized (bilinear) to `target`."""
    box = aspect_crop(size, target)
    return resize(builder, crop(builder, x, box), box[2:], target, "bilinear")


def resize(builder: GraphBuilder, x: str, size: Size, target: Size, interpolation: str) -> str:
    """Channels-first images `x` of `size` (height, width) resized to `target` as Keras' `ops.image.resize` (the
    module docstring); `x` itself where the sizes are equal."""
    if size == target:
        return x
    if interpolation == "bilinear":
        kept = builder.node("Slice", [builder.node("Shape", [x]), builder.ints([0], "zero"), builder.ints([2], "two")])
        sizes = builder.node("Concat", [kept, builder.ints(list(target), "target")], axis=0, hint="sizes")
        return builder.node(
            "Resize", [x, "", "", sizes], hint="resized", mode="linear", coordinate_transformation_mode="half_pixel"
        )
    for axis, inputs, outputs in ((2, size[0], target[0]), (3, size[1], target[1])):
        if inputs == outputs:
            continue
        if interpolation == "nearest":
            index = builder.ints(_nearest_indices(inputs, outputs), "nearest")
            x = builder.node("Gather", [x, index], hint="resized", axis=axis)
        else:
            weights = _bicubic_weights(inputs, outputs)
            if axis == 2:  # (out, in) @ (N, C, in, W)
                x = builder.node("MatMul", [builder.constant(weights, "rows"), x], hint="resized")
            else:  # (N, C, H, in) @ (in, out)
                x = builder.node("MatMul", [x, builder.constant(weights.T, "columns")], hint="resized")
    return x


def _nearest_indices(inputs: int, outputs: int) -> np.ndarray:
    """JAX's `_resize_nearest`: floor((i + 0.5) * in / out), computed in float32 as JAX computes it."""
    offsets = (np.arange(outputs, dtype=np.float32) + np.float32(0.5)) * np.float32(inputs) / np.float32(outputs)
    return np.floor(offsets).astype(np.int64)


def _bicubic_weights(inputs: int, outputs: int) -> np.ndarray:
    """(outputs, inputs) float32: JAX's `compute_weight_mat` for Keys' cubic kernel (a = -0.5), no antialiasing."""
    positions = (np.arange(outputs) + 0.5) * inputs / outputs - 0.5
    d = np.abs(positions[:, None] - np.arange(inputs)[None, :])
    near = ((1.5 * d - 2.5) * d) * d + 1.0
    far = ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0
    weights = np.where(d >= 2.0, 0.0, np.where(d >= 1.0, far, near))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def check_interpolation(owner: str, value: object) -> str:
    if isinstance(value, str) and value in _NOT_IMPLEMENTED:
        raise UnsupportedError(
            f"{owner}(interpolation={value!r}) is not supported: onnxtrain resizes with {list(INTERPOLATIONS)}. "
            f"Received: interpolation={value!r}"
        )
    if not isinstance(value, str) or value not in INTERPOLATIONS:
        raise InvalidArgumentError(
            f"{owner}(interpolation=...) expects one of {list(INTERPOLATIONS)}. Received: interpolation={value!r}"
        )
    return value


class Resizing(Layer):
    """Resizes images to (height, width) as Keras 3 does (module docstring), in every graph and the export.

    Args:
        height, width: the output size.
        interpolation: "bilinear", "nearest" or "bicubic".
        crop_to_aspect_ratio: resize the largest centered crop of the output's aspect ratio instead (no distortion).
        pad_to_aspect_ratio: pad the short side evenly with `fill_value` to the output's aspect ratio first.
        fill_mode: "constant" (Keras' only mode for the padding).
        fill_value: the padding's value.
        antialias: False (Keras' default); True is refused.
    """

    accepts_channels_first = True
    keras_data_format = True

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        antialias: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.height = _positive_int("Resizing", "height", height)
        self.width = _positive_int("Resizing", "width", width)
        self.interpolation = check_interpolation("Resizing", interpolation)
        self.crop_to_aspect_ratio = check_bool("Resizing", "crop_to_aspect_ratio", crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = check_bool("Resizing", "pad_to_aspect_ratio", pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise InvalidArgumentError(
                "Resizing expects at most one of crop_to_aspect_ratio and pad_to_aspect_ratio to be True. "
                "Received: crop_to_aspect_ratio=True, pad_to_aspect_ratio=True"
            )
        if fill_mode != "constant":
            raise UnsupportedError(
                "Resizing(fill_mode=...) takes 'constant' only (as Keras' JAX and TensorFlow backends). "
                f"Received: fill_mode={fill_mode!r}"
            )
        self.fill_mode = fill_mode
        self.fill_value = finite_number("Resizing", "fill_value", fill_value)
        if check_bool("Resizing", "antialias", antialias):
            raise UnsupportedError(
                "Resizing(antialias=True) is not supported: onnxtrain resizes without an antialiasing filter. "
                "Received: antialias=True"
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.height, self.width, image_shape(self, input_shape)[2])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        size: Size = (self.input_shape[0], self.input_shape[1])
        target = (self.height, self.width)
        if size == target and not self.pad_to_aspect_ratio:  # crop_to_aspect_ratio would keep every pixel too
            return x
        x = channels_first(builder, x, 4)
        if self.crop_to_aspect_ratio:
            box = aspect_crop(size, target)
            x, size = mark_channels_first(builder, crop(builder, x, box)), box[2:]
        elif self.pad_to_aspect_ratio:
            x, size = self._padded(builder, x, size, target)
        return mark_channels_first(builder, resize(builder, x, size, target, self.interpolation))

    def _padded(self, builder: GraphBuilder, x: str, size: Size, target: Size) -> tuple[str, Size]:
        """Keras' padding to the target's aspect ratio: the same number of rows (or columns) on both sides."""
        (height, width), (target_height, target_width) = size, target
        top = int(float(max(height, int(float(width * target_height) / target_width)) - height) / 2)
        left = int(float(max(width, int(float(height * target_width) / target_height)) - width) / 2)
        if top > 0:
            pads, size = [0, 0, top, 0, 0, 0, top, 0], (height + 2 * top, width)
        elif left > 0:
            pads, size = [0, 0, 0, left, 0, 0, 0, left], (height, width + 2 * left)
        else:
            return x, size
        fill = builder.constant(np.float32(self.fill_value), "fill_value")
        padded = builder.node("Pad", [x, builder.ints(pads, "pads"), fill], hint="padded", mode="constant")
        return mark_channels_first(builder, padded), size

    def get_config(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            **super().get_config(),
        }


class CenterCrop(Layer):
    """The central (height, width) window of each image, in every graph and the export; an image smaller than that
    in either dimension is resized instead, as Keras does: its largest centered crop of the target's aspect ratio,
    bilinear (Keras' `smart_resize`)."""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(self, height: int, width: int, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.height = _positive_int("CenterCrop", "height", height)
        self.width = _positive_int("CenterCrop", "width", width)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.height, self.width, image_shape(self, input_shape)[2])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        (height, width), target = self.input_shape[:2], (self.height, self.width)
        if (height, width) == target:
            return x
        x = channels_first(builder, x, 4)
        if height >= self.height and width >= self.width:
            y = crop(builder, x, ((height - self.height) // 2, (width - self.width) // 2, self.height, self.width))
        else:
            y = smart_resize(builder, x, (height, width), target)
        return mark_channels_first(builder, y)

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, **super().get_config()}


def finite_number(owner: str, arg: str, value: object) -> float:
    number = as_real(value)
    if number is None or not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        raise InvalidArgumentError(f"{owner}({arg}=...) expects a finite number. Received: {arg}={value!r}")
    return number
