"""LayerNormalization (each example normalized over its `axis`, with Keras' rms_scaling) and UnitNormalization (each
example scaled to an L2 norm of 1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain._checks import check_bool
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._layer import Layer, Shape
from onnxtrain.layers._normalization_arguments import _axis_list, _batched_axes, _number, add_penalties, penalties
from onnxtrain.regularizers import Regularizer, RegularizerLike

# The LayerNormalization op exists from opset 17; before, the layer is emitted as Reduce ops.
_LAYER_NORMALIZATION_FROM = 17


class LayerNormalization(Layer):
    """Normalizes each example over `axis`: gamma * (x - mean) / sqrt(var + epsilon) + beta, with gamma and beta
    spanning those axes.

    Emitted as ONNX's LayerNormalization where the axes are the last ones (opset 17+), else as Reduce ops.

    Args:
        axis: an axis or a list of axes, counting the batch axis: -1, the last, by default.
        epsilon: added to the variance, > 0.
        center / scale: learn beta / gamma (else 0 / 1).
        rms_scaling: Keras 3's (deprecated there): gamma * x / sqrt(var + epsilon), x scaled by its standard
            deviation (not its root mean square, as Keras' warning says) and not centered; the layer has gamma
            whatever `scale` says, and no beta whatever `center` says, as Keras' has.
        beta_initializer, gamma_initializer: initializers.
        beta_regularizer, gamma_regularizer: a penalty the loss adds for the weight (`onnxtrain.regularizers`), as
            Keras adds it (not for a frozen layer).
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        beta_regularizer: RegularizerLike = None,
        gamma_regularizer: RegularizerLike = None,
        rms_scaling: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.axis = _axis_list("LayerNormalization", axis)
        self.epsilon = _number("LayerNormalization", "epsilon", epsilon, 0.0, np.inf, low_open=True)
        self.center = check_bool("LayerNormalization", "center", center)
        self.scale = check_bool("LayerNormalization", "scale", scale)
        self.rms_scaling = check_bool("LayerNormalization", "rms_scaling", rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer: Regularizer | None = regularizers.get(beta_regularizer)
        self.gamma_regularizer: Regularizer | None = regularizers.get(gamma_regularizer)

    def _axes(self, input_shape: Shape) -> list[int]:
        return _batched_axes(self, self.axis, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._axes(input_shape)
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        shape = tuple(input_shape[a - 1] for a in self._axes(input_shape))
        size = int(np.prod(shape))
        if self.scale or self.rms_scaling:  # Keras' weights: rms_scaling makes gamma and no beta
            self.add_weight("gamma", self.gamma_initializer(shape, size, size, rng))
        if self.center and not self.rms_scaling:
            self.add_weight("beta", self.beta_initializer(shape, size, size, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        rank = len(self.input_shape) + 1
        axes = self._axes(self.input_shape)
        params = self.emit_params(builder)
        add_penalties(builder, self, params)
        last_axes = axes == list(range(axes[0], rank))
        if last_axes and not self.rms_scaling and builder.opset >= _LAYER_NORMALIZATION_FROM:
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
        scaled = x if self.rms_scaling else centered  # Keras' rms_scaling scales x by its standard deviation
        y = builder.node("Div", [scaled, builder.node("Sqrt", [shifted], hint="std")], hint="normalized")
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
            "rms_scaling": self.rms_scaling,
            "beta_initializer": self.beta_initializer.get_config(),
            "gamma_initializer": self.gamma_initializer.get_config(),
            **penalties(self),
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
