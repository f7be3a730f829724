"""DepthwiseConv2D: each input channel convolved on its own into `depth_multiplier` output channels."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._conv import BaseConv, ConvPadding, InitializerLike, IntOrInts, receptive_field
from onnxtrain.layers._core import ActivationLike, DefaultActivation, _positive_int
from onnxtrain.layers._layer import Shape
from onnxtrain.regularizers import Regularizer, RegularizerLike


def depthwise_kernel(
    initializer: initializers.Initializer,
    kernel_size: Shape,
    channels: int,
    depth_multiplier: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A depthwise kernel in ONNX's grouped-Conv layout (channels * depth_multiplier, 1, *kernel_size): output
    channel c * depth_multiplier + m reads input channel c. Fans are Keras' for its (*kernel_size, channels,
    depth_multiplier) kernel."""
    return initializers.onnx_conv_kernel(initializer, (*kernel_size, channels, depth_multiplier), rng, depthwise=True)


class DepthwiseConv2D(BaseConv):
    """Depthwise 2-D convolution: input channel c gives output channels c * depth_multiplier ... + depth_multiplier
    - 1, each from its own kernel (an ONNX Conv with one group per input channel).

    The defaults are KotlinDL's, which differ from Keras: `padding="same"` (Keras: "valid"),
    `activation="relu"` (Keras: linear), `depthwise_initializer=HeNormal` (Keras: GlorotUniform) and
    `bias_initializer=HeUniform` (Keras: zeros).

    The kernel ("kernel", as in Keras 3) is stored as (channels * depth_multiplier, 1, *kernel_size); Keras' is
    (*kernel_size, channels, depth_multiplier).

    Args:
        kernel_size, strides, padding, dilation_rate, activation, use_bias, bias_initializer: as for Conv2D.
        depth_multiplier: output channels per input channel, a positive int.
        depthwise_initializer: the kernel's initializer.
        depthwise_regularizer / bias_regularizer: as Conv2D's kernel_regularizer / bias_regularizer.
    """

    weight_arguments = (("depthwise", "kernel"), ("bias", "bias"))

    def __init__(
        self,
        kernel_size: IntOrInts,
        strides: IntOrInts = 1,
        padding: str | ConvPadding = "same",
        depth_multiplier: int = 1,
        dilation_rate: IntOrInts = 1,
        activation: ActivationLike | DefaultActivation = DefaultActivation.RELU,
        use_bias: bool = True,
        depthwise_initializer: InitializerLike = initializers.HeNormal,
        bias_initializer: InitializerLike = initializers.HeUniform,
        depthwise_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        self.depth_multiplier = _positive_int(type(self).__name__, "depth_multiplier", depth_multiplier)
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
        self.depthwise_regularizer: Regularizer | None = regularizers.get(depthwise_regularizer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        channels = self.check_input(input_shape)
        return (*self.window(input_shape)[0], channels * self.depth_multiplier)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        channels = input_shape[-1]
        kernel = depthwise_kernel(self.depthwise_initializer, self.kernel_size, channels, self.depth_multiplier, rng)
        self.add_weight("kernel", kernel)
        if self.use_bias:
            field = receptive_field(self.kernel_size)  # the kernel's fans
            fans = channels * field, self.depth_multiplier * field
            self.add_weight("bias", self.bias_initializer((len(kernel),), *fans, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        params = self.emit_params(builder)
        self.add_penalties(builder, params)
        y = self.emit_conv(builder, x, params["kernel"], params.get("bias"), group=self.input_shape[-1])
        return self.activate(builder, y)

    def layer_config(self) -> dict[str, Any]:
        return {**self.window_config(), "depth_multiplier": self.depth_multiplier}
