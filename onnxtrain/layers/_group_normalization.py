"""GroupNormalization: each example's channels split into groups, each group normalized over its channels and every
other axis of the example (Keras 3's layer; `groups=-1` is instance normalization)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain._checks import check_bool
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._normalization import _batched_axis, _channels_at_axis_1, _number
from onnxtrain.regularizers import Regularizer, RegularizerLike


class GroupNormalization(Layer):
    """Normalizes each group of channels of each example: gamma * (x - mean) / sqrt(var + epsilon) + beta, the mean
    and (biased) variance over the group's channels and every other axis of the example, gamma and beta per channel.

    Channel c is in group c // (channels / groups), as in Keras. Computed by Reduce ops in training and after (it
    keeps no statistics), channels first.

    Args:
        groups: how many groups, dividing the channels; -1: one per channel (instance normalization).
        axis: the channel axis, counting the batch axis: -1, the last, by default.
        epsilon: added to the variance, > 0.
        center / scale: learn beta / gamma (else 0 / 1).
        beta_initializer, gamma_initializer: initializers.
        beta_regularizer, gamma_regularizer: a penalty the loss adds for the weight (`onnxtrain.regularizers`).
    """

    accepts_channels_first = True

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        beta_regularizer: RegularizerLike = None,
        gamma_regularizer: RegularizerLike = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or (groups <= 0 and groups != -1):
            raise InvalidArgumentError(
                "GroupNormalization(groups=...) expects a positive int, or -1 for one group per channel (instance "
                f"normalization). Received: groups={groups!r}"
            )
        self.groups = int(groups)
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise InvalidArgumentError(f"GroupNormalization(axis=...) expects an int. Received: axis={axis!r}")
        self.axis = int(axis)
        self.epsilon = _number("GroupNormalization", "epsilon", epsilon, 0.0, np.inf, low_open=True)
        self.center = check_bool("GroupNormalization", "center", center)
        self.scale = check_bool("GroupNormalization", "scale", scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer: Regularizer | None = regularizers.get(beta_regularizer)
        self.gamma_regularizer: Regularizer | None = regularizers.get(gamma_regularizer)

    def _channels_and_groups(self, input_shape: Shape) -> tuple[int, int]:
        channels = input_shape[_batched_axis(self, self.axis, input_shape) - 1]
        groups = channels if self.groups == -1 else self.groups
        if channels % groups:
            raise ShapeError(
                f"{describe(self)} has groups={self.groups}, which does not divide the "
                f"{channels} channels of axis {self.axis}. Received: input shape {format_shape(input_shape)}. Give "
                "groups a divisor of the channels, or -1 (one group per channel)."
            )
        return channels, groups

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._channels_and_groups(input_shape)
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        channels, _ = self._channels_and_groups(input_shape)
        shape = (channels,)
        if self.scale:
            self.add_weight("gamma", self.gamma_initializer(shape, channels, channels, rng))
        if self.center:
            self.add_weight("beta", self.beta_initializer(shape, channels, channels, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        rank = len(self.input_shape) + 1
        axis = _batched_axis(self, self.axis, self.input_shape)
        channels, groups = self._channels_and_groups(self.input_shape)
        x, restore = _channels_at_axis_1(builder, x, rank, axis)  # (N, C, the other axes in order)
        grouped = builder.node("Reshape", [x, builder.ints([0, groups, -1], "groups_shape")], hint="grouped")
        mean = builder.reduce("ReduceMean", grouped, [2], keepdims=True, hint="mean")
        centered = builder.node("Sub", [grouped, mean], hint="centered")
        variance = builder.reduce("ReduceMean", builder.node("Mul", [centered, centered]), [2], True, "variance")
        shifted = builder.node("Add", [variance, builder.constant(np.float32(self.epsilon), "epsilon")])
        y = builder.node("Div", [centered, builder.node("Sqrt", [shifted], hint="std")], hint="normalized")
        others = [self.input_shape[a - 1] for a in range(1, rank) if a != axis]
        y = builder.node("Reshape", [y, builder.ints([0, channels, *others], "channels_shape")], hint="ungrouped")
        params = self.emit_params(builder)
        per_channel = builder.ints([channels] + [1] * (rank - 2), "param_shape")
        for local, op in (("gamma", "Mul"), ("beta", "Add")):
            if local in params:
                if self.trainable:
                    regularizers.add_penalty(builder, getattr(self, f"{local}_regularizer"), params[local])
                shaped = builder.node("Reshape", [params[local], per_channel], hint=local)
                y = builder.node(op, [y, shaped], hint=op.lower())
        return restore(y)

    def get_config(self) -> dict[str, Any]:
        beta_regularizer, gamma_regularizer = self.beta_regularizer, self.gamma_regularizer
        return {
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer.get_config(),
            "gamma_initializer": self.gamma_initializer.get_config(),
            "beta_regularizer": None if beta_regularizer is None else beta_regularizer.get_config(),
            "gamma_regularizer": None if gamma_regularizer is None else gamma_regularizer.get_config(),
            **super().get_config(),
        }
