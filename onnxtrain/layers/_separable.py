"""SeparableConv2D: a depthwise convolution, then a 1x1 (pointwise) convolution that mixes the channels."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._conv import BaseConv, ConvPadding, InitializerLike, IntOrInts
from onnxtrain.layers._core import ActivationLike, DefaultActivation, _positive_int
from onnxtrain.layers._depthwise import depthwise_kernel
from onnxtrain.layers._layer import Shape
from onnxtrain.layers._layout import mark_channels_first
from onnxtrain.regularizers import Regularizer, RegularizerLike


class SeparableConv2D(BaseConv):
    """Depthwise separable 2-D convolution: DepthwiseConv2D's window (no bias), then a 1x1 convolution into
    `filters` channels with the bias, then the activation.

    The defaults are KotlinDL's, which differ from Keras: `padding="same"` (Keras: "valid"),
    `activation="relu"` (Keras: linear), `depthwise_initializer` and `pointwise_initializer` HeNormal (Keras:
    GlorotUniform) and `bias_initializer=HeUniform` (Keras: zeros).

    Parameters, in ONNX's Conv layout: "depthwise_kernel" (channels * depth_multiplier, 1, *kernel_size) and
    "pointwise_kernel" (filters, channels * depth_multiplier, 1, 1); Keras' are (*kernel_size, channels,
    depth_multiplier) and (1, 1, channels * depth_multiplier, filters). Fans are Keras' for each kernel.

    Args:
        filters: output channels, a positive int.
        kernel_size, strides, padding, dilation_rate, activation, use_bias, bias_initializer: as for Conv2D (the
            window is the depthwise step's).
        depth_multiplier: depthwise output channels per input channel.
        depthwise_initializer / pointwise_initializer: the two kernels' initializers.
        depthwise_regularizer / pointwise_regularizer / bias_regularizer: penalties the loss adds for each weight
            (`onnxtrain.regularizers`); None: none.
    """

    weight_arguments = (("depthwise", "depthwise_kernel"), ("pointwise", "pointwise_kernel"), ("bias", "bias"))

    def __init__(
        self,
        filters: int,
        kernel_size: IntOrInts,
        strides: IntOrInts = 1,
        padding: str | ConvPadding = "same",
        dilation_rate: IntOrInts = 1,
        depth_multiplier: int = 1,
        activation: ActivationLike | DefaultActivation = DefaultActivation.RELU,
        use_bias: bool = True,
        depthwise_initializer: InitializerLike = initializers.HeNormal,
        pointwise_initializer: InitializerLike = initializers.HeNormal,
        bias_initializer: InitializerLike = initializers.HeUniform,
        depthwise_regularizer: RegularizerLike = None,
        pointwise_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        owner = type(self).__name__
        self.filters = _positive_int(owner, "filters", filters)
        self.depth_multiplier = _positive_int(owner, "depth_multiplier", depth_multiplier)
        super().__init__(
            kernel_size,
            strides,
            padding,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            bias_regularizer,
            name,
            trainable,
        )
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer: Regularizer | None = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer: Regularizer | None = regularizers.get(pointwise_regularizer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (*self.window(input_shape)[0], self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        channels = input_shape[-1]
        depthwise = depthwise_kernel(self.depthwise_initializer, self.kernel_size, channels, self.depth_multiplier, rng)
        self.add_weight("depthwise_kernel", depthwise)
        middle = len(depthwise)
        pointwise = initializers.onnx_conv_kernel(self.pointwise_initializer, (1, 1, middle, self.filters), rng)
        self.add_weight("pointwise_kernel", pointwise)
        if self.use_bias:
            self.add_weight("bias", self.bias_initializer((self.filters,), middle, self.filters, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        params = self.emit_params(builder)
        self.add_penalties(builder, params)
        depthwise = self.emit_conv(builder, x, params["depthwise_kernel"], None, group=self.input_shape[-1])
        inputs = [depthwise, params["pointwise_kernel"], *([params["bias"]] if self.use_bias else [])]
        pointwise = builder.node("Conv", inputs, hint="pointwise", kernel_shape=[1, 1])
        return self.activate(builder, mark_channels_first(builder, pointwise))

    def layer_config(self) -> dict[str, Any]:
        return {"filters": self.filters, **self.window_config(), "depth_multiplier": self.depth_multiplier}


SeparableConvolution2D = SeparableConv2D  # Keras' other name
