"""Conv1DTranspose, Conv2DTranspose and Conv3DTranspose: the transpose (input gradient) of a convolution, as an
upsampling layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain import initializers, regularizers
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._conv import BaseConv, ConvPadding, InitializerLike, IntOrInts, conv_ints, receptive_field
from onnxtrain.layers._core import ActivationLike, DefaultActivation, _positive_int
from onnxtrain.layers._layer import Shape, format_shape
from onnxtrain.layers._layout import channels_first, mark_channels_first
from onnxtrain.regularizers import Regularizer, RegularizerLike


class Conv2DTranspose(BaseConv):
    """Transposed 2-D convolution ("deconvolution"): each input position scatters its kernel-weighted values into
    a window of the output, `strides` apart.

    Output sizes are Keras': with `output_padding=None`, "same" gives size * stride and "valid" gives
    (size - 1) * stride + max(kernel extent, stride); with `output_padding`, (size - 1) * stride + kernel extent
    - 2 * (extent // 2 for "same", else 0) + output_padding. The graph gets them as explicit ConvTranspose pads
    and output_padding.

    The defaults are KotlinDL's, which differ from Keras: `padding="same"` (Keras: "valid"),
    `activation="relu"` (Keras: linear), `kernel_initializer=HeNormal` (Keras: GlorotUniform) and
    `bias_initializer=HeUniform` (Keras: zeros).

    The kernel is stored as ONNX's ConvTranspose reads it, (in_channels, filters, *kernel_size); Keras' is
    (*kernel_size, filters, in_channels), and its fans are Keras' for that shape (fan-in from `filters`).

    Args:
        filters: output channels, a positive int.
        kernel_size, strides, padding, dilation_rate, activation, use_bias, kernel_initializer,
            bias_initializer, kernel_regularizer, bias_regularizer: as for Conv2D.
        output_padding: None, or extra output positions at the end of each axis, each below its stride.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: IntOrInts,
        strides: IntOrInts = 1,
        padding: str | ConvPadding = "same",
        output_padding: IntOrInts | None = None,
        dilation_rate: IntOrInts = 1,
        activation: ActivationLike | DefaultActivation = DefaultActivation.RELU,
        use_bias: bool = True,
        kernel_initializer: InitializerLike = initializers.HeNormal,
        bias_initializer: InitializerLike = initializers.HeUniform,
        kernel_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        owner = type(self).__name__
        self.filters = _positive_int(owner, "filters", filters)
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
        self.output_padding: Shape | None = None
        if output_padding is not None:
            self.output_padding = conv_ints(owner, "output_padding", output_padding, self.rank, minimum=0)
            if any(p >= s for p, s in zip(self.output_padding, self.strides, strict=True)):
                raise InvalidArgumentError(
                    f"{owner}(output_padding=...) expects each value below its stride {self.strides}. "
                    f"Received: output_padding={output_padding!r}"
                )
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer: Regularizer | None = regularizers.get(kernel_regularizer)

    def transpose_window(self, input_shape: Shape) -> tuple[Shape, list[int], list[int]]:
        """The output's spatial size, ConvTranspose's pads (begins, then ends) and its output_padding."""
        sizes, begins, ends, extras = [], [], [], []
        paddings = self.output_padding or (None,) * self.rank
        for size, extent, stride, padding in zip(input_shape[:-1], self.extents, self.strides, paddings, strict=True):
            # Keras' padding of the stride-dilated input (as its JAX backend computes it), as ConvTranspose's crop
            if self.padding == "valid":
                left = extent - 1
                right = extent - 1 + (max(extent, stride) - extent if padding is None else padding)
            else:
                total = stride + extent - 2 if padding is None else extent + extent % 2 - 2 + padding
                left = min(total - total // 2, extent - 1)
                right = total - left
            begin, end = extent - 1 - left, extent - 1 - right
            extra, end = max(-end, 0), max(end, 0)  # a negative crop at the end is output_padding
            sizes.append((size - 1) * stride + extent + extra - begin - end)
            begins.append(begin)
            ends.append(end)
            extras.append(extra)
        if min(sizes) <= 0:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} would give an empty output {tuple(sizes)} for input "
                f"shape {format_shape(input_shape)}: give a larger output_padding or leave it None"
            )
        return tuple(sizes), [*begins, *ends], extras

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (*self.transpose_window(input_shape)[0], self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        channels, field = input_shape[-1], receptive_field(self.kernel_size)
        fan_in, fan_out = self.filters * field, channels * field  # Keras': its kernel ends (filters, channels)
        keras_shape = (*self.kernel_size, self.filters, channels)  # stored as ONNX's (channels, filters, *window)
        self.add_weight("kernel", initializers.onnx_conv_kernel(self.kernel_initializer, keras_shape, rng))
        if self.use_bias:
            self.add_weight("bias", self.bias_initializer((self.filters,), fan_in, fan_out, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        _, pads, extras = self.transpose_window(self.input_shape)
        params = self.emit_params(builder)
        self.add_penalties(builder, params)
        attributes: dict[str, Any] = {
            "kernel_shape": list(self.kernel_size),
            "strides": list(self.strides),
            "dilations": list(self.dilation_rate),
            "pads": pads,
        }
        if any(extras):
            attributes["output_padding"] = extras
        inputs = [
            channels_first(builder, x, self.rank + 2),
            params["kernel"],
            *([params["bias"]] if self.use_bias else []),
        ]
        y = builder.node("ConvTranspose", inputs, hint="conv_transpose", **attributes)
        return self.activate(builder, mark_channels_first(builder, y))

    def layer_config(self) -> dict[str, Any]:
        output_padding = None if self.output_padding is None else list(self.output_padding)
        return {"filters": self.filters, **self.window_config(), "output_padding": output_padding}


class Conv1DTranspose(Conv2DTranspose):
    """Transposed 1-D convolution over (steps, channels) inputs, e.g. `Conv1DTranspose(16, 3, strides=2)`.

    Arguments, defaults (KotlinDL's, as Conv2DTranspose's), output sizes and kernel layout, (in_channels, filters,
    kernel_size), as Conv2DTranspose's, with one int per axis.
    """

    rank = 1


class Conv3DTranspose(Conv2DTranspose):
    """Transposed 3-D convolution over (depth, height, width, channels) inputs, e.g.
    `Conv3DTranspose(8, 3, strides=2)`.

    Arguments, defaults (KotlinDL's, as Conv2DTranspose's), output sizes and kernel layout, (in_channels, filters,
    depth, height, width), as Conv2DTranspose's, with one int per axis.
    """

    rank = 3


Convolution1DTranspose = Conv1DTranspose  # Keras' other names
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
