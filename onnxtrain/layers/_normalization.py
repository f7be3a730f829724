"""BatchNormalization (batch statistics in training, moving statistics after), and where the normalization layers are
found: LayerNormalization and UnitNormalization are in `_layer_normalization.py`, GroupNormalization in
`_group_normalization.py`, the arguments they share in `_normalization_arguments.py`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain._checks import as_real, check_bool
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._call_mode import in_training_graph
from onnxtrain.layers._layer import Layer, Shape
from onnxtrain.layers._layer_normalization import LayerNormalization, UnitNormalization
from onnxtrain.layers._layout import channels_first, channels_last, mark_channels_first
from onnxtrain.layers._normalization_arguments import _batched_axis, _number, add_penalties, penalties
from onnxtrain.regularizers import Regularizer, RegularizerLike

# LayerNormalization and UnitNormalization too: layers/__init__.py and _masking.py import them from here
__all__ = ["BatchNorm", "BatchNormalization", "LayerNormalization", "UnitNormalization"]


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
        beta_regularizer, gamma_regularizer: a penalty the loss adds for the weight (`onnxtrain.regularizers`), as
            Keras adds it (not for a frozen layer).
        renorm, renorm_clipping, renorm_momentum, synchronized: Keras', at their defaults only (False, None, 0.99,
            False): onnxtrain has no batch renormalization, and each process of a data-parallel fit normalizes with
            its own rows' statistics.
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
        beta_regularizer: RegularizerLike = None,
        gamma_regularizer: RegularizerLike = None,
        renorm: bool = False,
        renorm_clipping: Mapping[str, float] | None = None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        _refuse_keras_only(renorm, renorm_clipping, renorm_momentum, synchronized)
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
        self.beta_regularizer: Regularizer | None = regularizers.get(beta_regularizer)
        self.gamma_regularizer: Regularizer | None = regularizers.get(gamma_regularizer)

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
        add_penalties(builder, self, params)
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
            **penalties(self),
            **super().get_config(),
        }


def _refuse_keras_only(renorm: object, clipping: object, renorm_momentum: object, synchronized: object) -> None:
    """Keras' BatchNormalization arguments taken at their defaults only."""
    if not _is_false(renorm):
        raise UnsupportedError(
            "BatchNormalization(renorm=...) supports only renorm=False: onnxtrain has no batch renormalization "
            f"(Keras' renorm corrections and moving standard deviation). Leave it out. Received: renorm={renorm!r}"
        )
    if clipping is not None:
        raise UnsupportedError(_renorm_setting("renorm_clipping", clipping, None))
    if isinstance(renorm_momentum, bool) or as_real(renorm_momentum) != _RENORM_MOMENTUM:
        raise UnsupportedError(_renorm_setting("renorm_momentum", renorm_momentum, _RENORM_MOMENTUM))
    if not _is_false(synchronized):
        raise UnsupportedError(
            "BatchNormalization(synchronized=...) supports only synchronized=False: each process of a data-parallel "
            "fit normalizes with its own rows' statistics, as tf.keras under MirroredStrategy without SyncBatchNorm "
            f"(docs/scaling.md). Leave it out. Received: synchronized={synchronized!r}"
        )


_RENORM_MOMENTUM = 0.99  # Keras' default


def _renorm_setting(arg: str, value: object, default: object) -> str:
    return (
        f"BatchNormalization({arg}=...) supports only Keras' default, {arg}={default!r}: it sets batch "
        f"renormalization, which onnxtrain does not have (renorm=False). Leave it out. Received: {arg}={value!r}"
    )


def _is_false(value: object) -> bool:
    return isinstance(value, bool | np.bool_) and not value


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


BatchNorm = BatchNormalization  # KotlinDL's name
