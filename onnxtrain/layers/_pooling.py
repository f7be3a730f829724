"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global poolings, as ONNX's channels-first
pooling ops.

Shapes and arguments are Keras': channels last, `strides` defaulting to `pool_size`, `padding="same"` padding the
odd element at the end and leaving padding out of an average (ONNX's `count_include_pad=0`). KotlinDL's spellings
are read as the convolutions read them (`_conv.conv_ints`, `conv_padding`): `pool_size` and `strides` of
(1, n, n, 1) and `padding=ConvPadding.VALID`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from onnx import TensorProto

from onnxtrain._checks import check_bool
from onnxtrain.errors import ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._conv import ConvPadding, conv_ints, conv_padding
from onnxtrain.layers._layer import Layer, Mask, Shape, format_shape
from onnxtrain.layers._layout import channels_first, is_channels_first, mark_channels_first

_EXPECTED_SHAPES = {
    1: "[None, steps, channels]",
    2: "[None, height, width, channels]",
    3: "[None, depth, height, width, channels]",
}


def _spatial_rank(layer: Layer, input_shape: Shape, rank: int) -> None:
    if len(input_shape) != rank + 1:
        raise ShapeError(
            f"{type(layer).__name__} layer {layer.name!r} expects inputs of shape {_EXPECTED_SHAPES[rank]}. "
            f"Received: input shape {format_shape(input_shape)}."
        )


class _Pooling(Layer):
    """A window pooling over the `rank` spatial axes of a channels-last input. An int is that size on every axis,
    so the default `pool_size=2` is a 2x2 window for the 2-D poolings (2x2x2 for the 3-D ones, as Keras')."""

    accepts_channels_first = True
    keras_data_format = True
    op_type: ClassVar[str]
    rank: ClassVar[int]

    def __init__(
        self,
        pool_size: int | tuple[int, ...] = 2,
        strides: int | tuple[int, ...] | None = None,
        padding: str | ConvPadding = "valid",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = type(self).__name__
        self.pool_size = conv_ints(owner, "pool_size", pool_size, self.rank, kotlindl=True)
        self.strides = self.pool_size if strides is None else conv_ints(owner, "strides", strides, self.rank, True)
        self.padding = conv_padding(owner, padding)

    def _pads(self, input_shape: Shape) -> tuple[list[int], list[int]]:
        """(begin, end) pads per spatial axis: none for "valid"; for "same", TensorFlow's (the odd one at the end)."""
        begin, end = [], []
        for size, k, s in zip(input_shape[:-1], self.pool_size, self.strides, strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0) if self.padding == "same" else 0
            begin.append(total // 2)
            end.append(total - total // 2)
        return begin, end

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _spatial_rank(self, input_shape, self.rank)
        *spatial, channels = input_shape
        if self.padding == "same":
            return (*(math.ceil(n / s) for n, s in zip(spatial, self.strides, strict=True)), channels)
        if any(n < k for n, k in zip(spatial, self.pool_size, strict=True)):
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} with padding='valid' needs inputs at least as large as "
                f"pool_size={self.pool_size}. Received: input shape {format_shape(input_shape)}. Use padding='same' "
                "or a smaller pool_size."
            )
        return (*((n - k) // s + 1 for n, k, s in zip(spatial, self.pool_size, self.strides, strict=True)), channels)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        x = channels_first(builder, x, self.rank + 2)
        begin, end = self._pads(self.input_shape)
        attributes: dict[str, Any] = {"kernel_shape": list(self.pool_size), "strides": list(self.strides)}
        if any(begin) or any(end):
            attributes["pads"] = begin + end
        if self.op_type == "AveragePool":
            attributes["count_include_pad"] = 0  # Keras averages over the window's elements inside the input
        return mark_channels_first(builder, builder.node(self.op_type, [x], hint=self.op_type.lower(), **attributes))

    def get_config(self) -> dict[str, Any]:
        return {
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
            **super().get_config(),
        }


class MaxPooling1D(_Pooling):
    """The maximum of each window of `pool_size` steps: (N, steps, C) -> (N, steps', C)."""

    op_type, rank = "MaxPool", 1


class MaxPooling2D(_Pooling):
    """The maximum of each `pool_size` window: (N, H, W, C) -> (N, H', W', C). `MaxPooling2D()` halves H and W."""

    op_type, rank = "MaxPool", 2


class AveragePooling1D(_Pooling):
    """The mean of each window of `pool_size` steps (padding left out of the mean)."""

    op_type, rank = "AveragePool", 1


class AveragePooling2D(_Pooling):
    """The mean of each `pool_size` window (padding left out of the mean, as in Keras)."""

    op_type, rank = "AveragePool", 2


class MaxPooling3D(_Pooling):
    """The maximum of each `pool_size` window: (N, D, H, W, C) -> (N, D', H', W', C). `MaxPooling3D()` halves D, H
    and W."""

    op_type, rank = "MaxPool", 3


class AveragePooling3D(_Pooling):
    """The mean of each `pool_size` window of (N, D, H, W, C) inputs (padding left out of the mean, as in Keras)."""

    op_type, rank = "AveragePool", 3


MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D


class _GlobalPooling(Layer):
    """The mean or maximum over every spatial position: (N, *spatial, C) -> (N, C), or (N, 1, ..., 1, C) with
    `keepdims=True`."""

    accepts_channels_first = True
    keras_data_format = True
    op_type: ClassVar[str]
    rank: ClassVar[int]

    def __init__(self, keepdims: bool = False, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.keepdims = check_bool(type(self).__name__, "keepdims", keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _spatial_rank(self, input_shape, self.rank)
        return (*[1] * self.rank, input_shape[-1]) if self.keepdims else (input_shape[-1],)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        pooled = builder.node(self.op_type, [channels_first(builder, x, self.rank + 2)], hint=self.op_type.lower())
        if self.keepdims:
            return mark_channels_first(builder, pooled)
        return builder.node("Flatten", [pooled], hint="flatten", axis=1)

    def get_config(self) -> dict[str, Any]:
        return {"keepdims": self.keepdims, **super().get_config()}


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over the steps: (N, steps, C) -> (N, C); with a mask of the steps (Embedding(mask_zero=True),
    Masking), the mean over the unmasked ones, as Keras 3's (NaN where every step is masked, as there)."""

    op_type, rank = "GlobalAveragePool", 1
    reads_mask = True

    def emit_masked(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> str:
        assert isinstance(mask, str)
        first = is_channels_first(builder, x)  # [N, C, steps] after a convolution, else [N, steps, C]
        steps_axis = 2 if first else 1
        kept = builder.node("Unsqueeze", [mask, builder.ints([1 if first else 2], "axes")], hint="kept")
        total = builder.reduce(
            "ReduceSum", builder.node("Where", [kept, x, builder.constant(np.float32(0.0))]), [steps_axis], True
        )
        count = builder.reduce("ReduceSum", builder.node("Cast", [kept], to=TensorProto.FLOAT), [steps_axis], True)
        mean = builder.node("Div", [total, count], hint="masked_mean")
        if self.keepdims:
            return mark_channels_first(builder, mean) if first else mean
        return builder.node("Flatten", [mean], hint="flatten", axis=1)


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean over height and width: (N, H, W, C) -> (N, C)."""

    op_type, rank = "GlobalAveragePool", 2


class GlobalMaxPooling1D(_GlobalPooling):
    """The maximum over the steps: (N, steps, C) -> (N, C)."""

    op_type, rank = "GlobalMaxPool", 1


class GlobalMaxPooling2D(_GlobalPooling):
    """The maximum over height and width: (N, H, W, C) -> (N, C)."""

    op_type, rank = "GlobalMaxPool", 2


class GlobalAveragePooling3D(_GlobalPooling):
    """The mean over depth, height and width: (N, D, H, W, C) -> (N, C)."""

    op_type, rank = "GlobalAveragePool", 3


class GlobalMaxPooling3D(_GlobalPooling):
    """The maximum over depth, height and width: (N, D, H, W, C) -> (N, C)."""

    op_type, rank = "GlobalMaxPool", 3


GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
)
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
