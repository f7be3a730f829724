"""The normalization layers: BatchNormalization (batch statistics in training, moving statistics after),
LayerNormalization and UnitNormalization (GroupNormalization is in `_group_normalization.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from onnxtrain import initializers
from onnxtrain._checks import as_real, check_bool
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._call_mode import in_training_graph
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import channels_first, channels_last, mark_channels_first

# The LayerNormalization op exists from opset 17; before, the layer is emitted as Reduce ops.
_LAYER_NORMALIZATION_FROM = 17


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


class BatchNormalization(Layer):
    """Normalizes each channel: gamma * (x - mean) / sqrt(var + epsilon) + beta.

    In training the mean and (biased) variance are the batch's, and each step (and each `training=True` call on
    data) moves the non-trainable `moving_mean` and `moving_variance` towards them: `moving = moving * momentum +
    batch * (1 - momentum)`, as Keras does. Evaluation, prediction and the export use the moving statistics. A frozen
    layer (`trainable=False`) uses them in training too and keeps them, as in Keras.

    Args:
        axis: the channel axis, counting the batch axis (Keras' convention): -1, the last, by default; a list or
            tuple of that one axis too (KotlinDL's `axis = listOf(3)`, Keras' `axis=[3]`).
        momentum: of the moving statistics, in [0, 1]: the old value's weight, 1 minus PyTorch's momentum
            (PyTorch's 0.1 is 0.9; docs/layers.md, "Porting weights from PyTorch").
        epsilon: added to the variance, > 0 (PyTorch's default is 1e-5).
        center / scale: learn beta / gamma (else 0 / 1).
        beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer: initializers.
    """

    accepts_channels_first = True

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        moving_mean_initializer: InitializerLike = "zeros",
        moving_variance_initializer: InitializerLike = "ones",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        one = axis[0] if isinstance(axis, list | tuple) and len(axis) == 1 else axis  # KotlinDL's listOf(3)
        if isinstance(one, bool) or not isinstance(one, int | np.integer):
            raise InvalidArgumentError(
                f"BatchNormalization(axis=...) expects an int, or a list of one int. Received: axis={axis!r}"
            )
        self.axis = int(one)
        self.momentum = _number("BatchNormalization", "momentum", momentum, 0.0, 1.0)
        self.epsilon = _number("BatchNormalization", "epsilon", epsilon, 0.0, np.inf, low_open=True)
        self.center = check_bool("BatchNormalization", "center", center)
        self.scale = check_bool("BatchNormalization", "scale", scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _batched_axis(self, self.axis, input_shape)
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        channels = input_shape[_batched_axis(self, self.axis, input_shape) - 1]
        shape = (channels,)
        if self.scale:
            self.add_weight("gamma", self.gamma_initializer(shape, channels, channels, rng))
        if self.center:
            self.add_weight("beta", self.beta_initializer(shape, channels, channels, rng))
        self.add_weight("moving_mean", self.moving_mean_initializer(shape, channels, channels, rng), trainable=False)
        variance = self.moving_variance_initializer(shape, channels, channels, rng)
        self.add_weight("moving_variance", variance, trainable=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        rank = len(self.input_shape) + 1
        x, restore = _channels_at_axis_1(builder, x, rank, _batched_axis(self, self.axis, self.input_shape))
        params = self.emit_params(builder)
        channels = self.params["moving_mean"].shape
        gamma = params.get("gamma") or builder.constant(np.ones(channels), "gamma")
        beta = params.get("beta") or builder.constant(np.zeros(channels), "beta")
        moving_mean, moving_variance = params["moving_mean"], params["moving_variance"]
        if not (builder.training and self.trainable):
            if in_training_graph(builder):  # frozen, or a call in inference mode, in a graph that is differentiated
                return restore(_normalized(builder, [x, gamma, beta, moving_mean, moving_variance], rank, self.epsilon))
            y = builder.node("BatchNormalization", [x, gamma, beta, moving_mean, moving_variance], epsilon=self.epsilon)
            return restore(y)
        # The batch's statistics from Reduce ops, into the inference form (whose gradient flows through them), at
        # every opset: ONNX's training_mode (opset 14+) is not used, because ONNX Runtime's CPU kernel writes its
        # running statistics over its input_mean/input_var buffers (the layer state itself) and cuDNN's running
        # variance is unbiased, where Keras' is biased.
        mean, variance = _batch_moments(builder, x, rank, channels[0])
        y = builder.node("BatchNormalization", [x, gamma, beta, mean, variance], epsilon=self.epsilon)
        momentum = builder.constant(np.float32(self.momentum), "momentum")
        rest = builder.constant(np.float32(1.0 - self.momentum), "one_minus_momentum")
        for moving, batch in ((moving_mean, mean), (moving_variance, variance)):
            kept = builder.node("Mul", [moving, momentum], hint="kept")
            builder.update_state(moving, builder.node("Add", [kept, builder.node("Mul", [batch, rest])], hint="new"))
        return restore(y)

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer.get_config(),
            "gamma_initializer": self.gamma_initializer.get_config(),
            "moving_mean_initializer": self.moving_mean_initializer.get_config(),
            "moving_variance_initializer": self.moving_variance_initializer.get_config(),
            **super().get_config(),
        }


def _channels_at_axis_1(builder: GraphBuilder, x: str, rank: int, axis: int) -> tuple[str, Callable[[str], str]]:
    """`x` with the normalized channel axis (`axis` of the channels-last shape) at axis 1, and the function that
    gives an output of that layout the layout the layer returns."""
    if axis == rank - 1:  # the channels: one shared Transpose at most, and the output stays channels-first
        return channels_first(builder, x, rank), lambda y: mark_channels_first(builder, y) if rank > 2 else y
    perm = [0, axis, *(i for i in range(1, rank) if i != axis)]
    moved = builder.node("Transpose", [channels_last(builder, x, rank)], "axis_first", perm=perm)
    inverse = [int(i) for i in np.argsort(perm)]
    return moved, lambda y: builder.node("Transpose", [y], "axis_back", perm=inverse)


def _normalized(builder: GraphBuilder, inputs: list[str], rank: int, epsilon: float) -> str:
    """BatchNormalization's inference form (x - mean) * gamma / sqrt(variance + epsilon) + beta as arithmetic (x:
    channels at axis 1), for training graphs: ONNX Runtime's gradient builder turns a BatchNormalization node into
    its training form (batch statistics, the moving ones overwritten; ORT #17879), as `foreign/_inline.py` notes."""
    x, shape = inputs[0], builder.ints([-1, *[1] * (rank - 2)], "per_channel_shape")
    gamma, beta, mean, variance = (builder.node("Reshape", [v, shape], hint="per_channel") for v in inputs[1:])
    shifted = builder.node("Add", [variance, builder.constant(np.float32(epsilon), "epsilon")])
    factor = builder.node("Div", [gamma, builder.node("Sqrt", [shifted], hint="std")], hint="factor")
    centered = builder.node("Sub", [x, mean], hint="centered")
    return builder.node("Add", [builder.node("Mul", [centered, factor]), beta], hint="normalized")


def _batch_moments(builder: GraphBuilder, x: str, rank: int, channels: int) -> tuple[str, str]:
    """The batch's per-channel mean and biased variance of `x` (channels at axis 1), each of shape [channels]."""
    axes = [0, *range(2, rank)]
    mean = builder.reduce("ReduceMean", x, axes, keepdims=True, hint="batch_mean")
    centered = builder.node("Sub", [x, mean], hint="centered")
    variance = builder.reduce("ReduceMean", builder.node("Mul", [centered, centered]), axes, True, "batch_variance")
    shape = builder.ints([channels], "channels")
    return builder.node("Reshape", [mean, shape], "mean"), builder.node("Reshape", [variance, shape], "variance")


class LayerNormalization(Layer):
    """Normalizes each example over `axis`: gamma * (x - mean) / sqrt(var + epsilon) + beta, with gamma and beta
    spanning those axes.

    Emitted as ONNX's LayerNormalization where the axes are the last ones (opset 17+), else as Reduce ops.

    Args:
        axis: an axis or a list of axes, counting the batch axis: -1, the last, by default.
        epsilon: added to the variance, > 0.
        center / scale: learn beta / gamma (else 0 / 1).
        beta_initializer, gamma_initializer: initializers.
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.axis = _axis_list("LayerNormalization", axis)
        self.epsilon = _number("LayerNormalization", "epsilon", epsilon, 0.0, np.inf, low_open=True)
        self.center = check_bool("LayerNormalization", "center", center)
        self.scale = check_bool("LayerNormalization", "scale", scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)

    def _axes(self, input_shape: Shape) -> list[int]:
        return _batched_axes(self, self.axis, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._axes(input_shape)
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        shape = tuple(input_shape[a - 1] for a in self._axes(input_shape))
        size = int(np.prod(shape))
        if self.scale:
            self.add_weight("gamma", self.gamma_initializer(shape, size, size, rng))
        if self.center:
            self.add_weight("beta", self.beta_initializer(shape, size, size, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        rank = len(self.input_shape) + 1
        axes = self._axes(self.input_shape)
        params = self.emit_params(builder)
        if axes == list(range(axes[0], rank)) and builder.opset >= _LAYER_NORMALIZATION_FROM:
            shape = tuple(self.input_shape[axes[0] - 1 :])
            gamma = params.get("gamma") or builder.constant(np.ones(shape), "gamma")
            beta = params.get("beta") or builder.constant(np.zeros(shape), "beta")
            # B given and Mean and InvStdDev declared though unread: ONNX Runtime training's gradient needs them.
            inputs = [x, gamma, beta]
            y, _, _ = builder.multi_output_node("LayerNormalization", inputs, 3, axis=axes[0], epsilon=self.epsilon)
            return y
        mean = builder.reduce("ReduceMean", x, axes, keepdims=True, hint="mean")
        centered = builder.node("Sub", [x, mean], hint="centered")
        variance = builder.reduce("ReduceMean", builder.node("Mul", [centered, centered]), axes, True, "variance")
        shifted = builder.node("Add", [variance, builder.constant(np.float32(self.epsilon), "epsilon")])
        y = builder.node("Div", [centered, builder.node("Sqrt", [shifted], hint="std")], hint="normalized")
        # gamma and beta span `axes`: shaped to broadcast over the other axes of an example
        broadcast = [self.input_shape[a - 1] if a in axes else 1 for a in range(axes[0], rank)]
        param_shape = builder.ints(broadcast, "param_shape")
        for local, op in (("gamma", "Mul"), ("beta", "Add")):
            if local in params:
                shaped = builder.node("Reshape", [params[local], param_shape], hint=local)
                y = builder.node(op, [y, shaped], hint=op.lower())
        return y

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer.get_config(),
            "gamma_initializer": self.gamma_initializer.get_config(),
            **super().get_config(),
        }


# Keras' ops.normalize: x * min(rsqrt(sum(x^2)), 1 / epsilon) with epsilon 1e-12, i.e. x / sqrt(max(sum, 1e-24)).
_UNIT_NORM_FLOOR = 1e-24


class UnitNormalization(Layer):
    """Scales each example to an L2 norm of 1 over `axis`: x / sqrt(max(sum(x^2), 1e-24)), as Keras computes it
    (an all-zero example stays zero).

    Args:
        axis: an axis or a list of axes, counting the batch axis (which cannot be one of them): -1, the last, by
            default.
    """

    def __init__(self, axis: int | Sequence[int] = -1, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.axis = _axis_list("UnitNormalization", axis)

    def _axes(self, input_shape: Shape) -> list[int]:
        return _batched_axes(self, self.axis, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._axes(input_shape)
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        squares = builder.reduce("ReduceSumSquare", x, self._axes(self.input_shape), keepdims=True, hint="squares")
        floored = builder.node("Max", [squares, builder.constant(np.float32(_UNIT_NORM_FLOOR), "floor")])
        return builder.node("Div", [x, builder.node("Sqrt", [floored], hint="norm")], hint="normalized")

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().get_config()}


BatchNorm = BatchNormalization  # KotlinDL's name
