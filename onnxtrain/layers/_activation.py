"""Activation layers: `Activation` applies any activation of `onnxtrain.activations`; ReLU, LeakyReLU, ELU,
ThresholdedReLU, Softmax and PReLU are Keras' and KotlinDL's layers with their own arguments.

Elementwise, they take values in either layout (see `_layout.py`) and keep it; Softmax moves its axis with the layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain import activations, initializers, regularizers
from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import Initializer
from onnxtrain.layers._layer import Layer, Shape, format_shape
from onnxtrain.layers._layout import is_channels_first, same_layout
from onnxtrain.regularizers import Regularizer, RegularizerLike


def _number(owner: str, arg: str, value: object, non_negative: bool = True) -> float:
    """`value` as a float: a real number finite in float32 (and >= 0 unless `non_negative` is False)."""
    number = as_real(value)
    if number is not None and abs(number) <= FLOAT32_MAX and (number >= 0 or not non_negative):
        return number
    what = "a non-negative finite number" if non_negative else "a finite number"
    raise InvalidArgumentError(f"{owner}({arg}=...) expects {what}. Received: {arg}={value!r}")


def _relu(builder: GraphBuilder, x: str, max_value: float | None, negative_slope: float, threshold: float) -> str:
    """Keras' relu: x above `threshold` (else 0), at most `max_value`, minus negative_slope * (threshold - x) below
    the threshold."""
    if max_value is None and threshold == 0.0:
        if negative_slope == 0.0:
            return activations.Relu().emit(builder, x)
        return activations.LeakyRelu(negative_slope).emit(builder, x)
    if threshold == 0.0:
        y = builder.node("Relu", [x])
    else:
        t = builder.constant(threshold, "threshold")
        y = builder.node("Where", [builder.node("Greater", [x, t]), x, builder.constant(0.0, "zero")])
    if max_value is not None:
        y = builder.node("Min", [y, builder.constant(max_value, "max_value")])
    if negative_slope != 0.0:
        below = builder.node("Relu", [builder.node("Sub", [builder.constant(threshold, "threshold"), x])])
        y = builder.node("Sub", [y, builder.node("Mul", [below, builder.constant(negative_slope, "negative_slope")])])
    return y


class _Elementwise(Layer):
    """A layer applied value by value: the output has the input's shape and layout."""

    accepts_channels_first = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return same_layout(builder, x, self.emit_values(builder, x))

    def emit_values(self, builder: GraphBuilder, x: str) -> str:
        raise NotImplementedError


class Activation(_Elementwise):
    """Applies an activation by name, `Activations` member or instance: `Activation("tanh")` (KotlinDL:
    `ActivationLayer`)."""

    def __init__(self, activation: Any, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.activation = activations.get(activation)

    @property
    def accepts_channels_first(self) -> bool:  # type: ignore[override]
        return not self.activation.along_last_axis  # softmax, glu, ... read the last (Keras) axis

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.activation.output_shape(input_shape)  # glu halves the last axis

    def emit_values(self, builder: GraphBuilder, x: str) -> str:
        return self.activation.emit(builder, x)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation.get_config(), **super().get_config()}


ActivationLayer = Activation  # KotlinDL's name


class ReLU(_Elementwise):
    """Keras' ReLU: x where threshold < x < max_value, max_value above it, negative_slope * (x - threshold) below.

    Args:
        max_value: the largest output (>= 0); None: unbounded.
        negative_slope: the slope below the threshold (>= 0).
        threshold: where the output starts to follow x (>= 0); below it, 0 (or the slope's line).
    """

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.max_value = None if max_value is None else _number("ReLU", "max_value", max_value)
        self.negative_slope = _number("ReLU", "negative_slope", negative_slope)
        self.threshold = _number("ReLU", "threshold", threshold)

    def emit_values(self, builder: GraphBuilder, x: str) -> str:
        return _relu(builder, x, self.max_value, self.negative_slope, self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
            **super().get_config(),
        }


class ThresholdedReLU(_Elementwise):
    """KotlinDL's (and Keras 2's) ThresholdedReLU: x where x > theta, else 0 (Keras 3: `ReLU(threshold=theta)`)."""

    def __init__(self, theta: float = 1.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.theta = _number("ThresholdedReLU", "theta", theta)

    def emit_values(self, builder: GraphBuilder, x: str) -> str:
        if self.theta == 0.0:
            return activations.Relu().emit(builder, x)
        t = builder.constant(self.theta, "theta")
        zero = builder.constant(0.0, "zero")
        return builder.node("Where", [builder.node("Greater", [x, t]), x, zero], hint="thresholded_relu")

    def get_config(self) -> dict[str, Any]:
        return {"theta": self.theta, **super().get_config()}


class LeakyReLU(_Elementwise):
    """x where x >= 0, else negative_slope * x. Keras 3's default slope is 0.3, as KotlinDL's; `alpha` is the
    KotlinDL (and Keras 2) name of `negative_slope`."""

    def __init__(
        self,
        negative_slope: float = 0.3,
        name: str | None = None,
        trainable: bool = True,
        alpha: float | None = None,
    ):
        super().__init__(name=name, trainable=trainable)
        if alpha is not None:
            if negative_slope != 0.3:
                raise InvalidArgumentError(
                    "LeakyReLU takes negative_slope or its other name alpha, not both. "
                    f"Received: negative_slope={negative_slope!r}, alpha={alpha!r}"
                )
            negative_slope = alpha
        arg = "negative_slope" if alpha is None else "alpha"
        self.negative_slope = _number("LeakyReLU", arg, negative_slope)

    def emit_values(self, builder: GraphBuilder, x: str) -> str:
        return activations.LeakyRelu(self.negative_slope).emit(builder, x)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope, **super().get_config()}


class ELU(_Elementwise):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.alpha = _number("ELU", "alpha", alpha, non_negative=False)

    def emit_values(self, builder: GraphBuilder, x: str) -> str:
        return activations.Elu(self.alpha).emit(builder, x)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **super().get_config()}


class Softmax(Layer):
    """Softmax over `axis`, numbered as Keras does with the batch axis 0 (default -1: the last, the channels)."""

    accepts_channels_first = True

    def __init__(self, axis: int = -1, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if isinstance(axis, tuple | list) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, tuple | list) and all(isinstance(a, int | np.integer) for a in axis):
            raise UnsupportedError(
                f"Softmax(axis=...) over several axes is not supported: pass one int. Received: axis={axis!r}"
            )
        if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
            raise InvalidArgumentError(
                f"Softmax(axis=...) expects one int (several axes are not supported). Received: axis={axis!r}"
            )
        self.axis = int(axis)

    def _axis(self, input_shape: Shape) -> int:
        """`axis` as a non-negative axis of the batched input."""
        rank = len(input_shape) + 1
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ShapeError(
                f"Softmax layer {self.name!r} with axis={self.axis} expects an axis of its input other than the batch "
                f"axis 0: one of 1..{rank - 1} or -{rank - 1}..-1. Received: input shape "
                f"{format_shape(input_shape)}"
            )
        return axis

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._axis(input_shape)
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        rank = len(self.input_shape) + 1
        axis = self._axis(self.input_shape)
        if is_channels_first(builder, x) and rank > 2:  # channels-last axis a sits at a + 1, the channels at 1
            axis = 1 if axis == rank - 1 else axis + 1
        return same_layout(builder, x, builder.node("Softmax", [x], hint="softmax", axis=axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().get_config()}


class PReLU(Layer):
    """x where x >= 0, else alpha * x, with a trainable alpha per input value (`shared_axes`, numbered from 1 as in
    Keras, share one alpha along those axes: (1, 2) for one alpha per channel of images).

    Args:
        alpha_initializer: initial alpha (default zeros: a ReLU to start with).
        alpha_regularizer: a penalty the loss adds for alpha (`onnxtrain.regularizers`).
        shared_axes: the axes along which alpha is shared, or None.
    """

    def __init__(
        self,
        alpha_initializer: str | Initializer | type[Initializer] | dict[str, Any] = "zeros",
        alpha_regularizer: RegularizerLike = None,
        shared_axes: int | tuple[int, ...] | list[int] | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer: Regularizer | None = regularizers.get(alpha_regularizer)
        axes = [shared_axes] if isinstance(shared_axes, int | np.integer) else shared_axes
        if axes is not None and (
            not isinstance(axes, tuple | list)
            or not all(isinstance(a, int | np.integer) and not isinstance(a, bool) and a >= 1 for a in axes)
        ):
            raise InvalidArgumentError(
                "PReLU(shared_axes=...) expects None, or axes numbered from 1 (the batch axis is 0), e.g. (1, 2). "
                f"Received: shared_axes={shared_axes!r}"
            )
        self.shared_axes: tuple[int, ...] | None = None if axes is None else tuple(int(a) for a in axes)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.shared_axes is not None and max(self.shared_axes, default=0) > len(input_shape):
            raise ShapeError(
                f"PReLU layer {self.name!r} with shared_axes={self.shared_axes} expects inputs of rank at least "
                f"{max(self.shared_axes)} (batch excluded). Received: input shape {format_shape(input_shape)}"
            )
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        shape = tuple(1 if i + 1 in (self.shared_axes or ()) else d for i, d in enumerate(input_shape))
        self.add_weight("alpha", self.alpha_initializer(shape, input_shape[-1], input_shape[-1], rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        alpha = self.emit_params(builder)["alpha"]
        if self.trainable:
            regularizers.add_penalty(builder, self.alpha_regularizer, alpha)
        negative = builder.node("Mul", [builder.node("Relu", [builder.node("Neg", [x])]), alpha])
        return builder.node("Sub", [builder.node("Relu", [x]), negative], hint="prelu")

    def get_config(self) -> dict[str, Any]:
        return {
            "alpha_initializer": self.alpha_initializer.get_config(),
            "alpha_regularizer": None if self.alpha_regularizer is None else self.alpha_regularizer.get_config(),
            "shared_axes": None if self.shared_axes is None else list(self.shared_axes),
            **super().get_config(),
        }
