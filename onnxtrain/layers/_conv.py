"""Convolutions over channels-last inputs: Conv1D, Conv2D and Conv3D, and what every convolution layer shares (argument
checks, Keras' "valid"/"same"/"causal" padding as explicit ONNX pads, the activation on channels-first values)."""

from __future__ import annotations

import enum
import math
from typing import Any, ClassVar

import numpy as np

from onnxtrain import activations, initializers, regularizers
from onnxtrain._checks import check_bool
from onnxtrain.activations import Activation
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.initializers import InitializerLike
from onnxtrain.layers._core import ActivationLike, DefaultActivation, _positive_int
from onnxtrain.layers._layer import Layer, Shape, format_shape
from onnxtrain.layers._layout import channels_first, channels_last, mark_channels_first
from onnxtrain.regularizers import Regularizer, RegularizerLike

IntOrInts = int | tuple[int, ...] | list[int]

_SPATIAL_NAMES = {1: "steps", 2: "height, width", 3: "depth, height, width"}


class ConvPadding(enum.Enum):
    """KotlinDL's padding names, for `Conv2D(32, 3, padding=ConvPadding.VALID)`."""

    SAME = "same"
    VALID = "valid"


def conv_ints(owner: str, arg: str, value: object, rank: int, kotlindl: bool = False, minimum: int = 1) -> Shape:
    """`value` (one int, or `rank` ints) as `rank` ints >= `minimum`; with `kotlindl`, also KotlinDL's strides and
    dilations spelling (1, *values, 1)."""
    items = [value] * rank if isinstance(value, int | np.integer) else value
    if isinstance(items, tuple | list) and kotlindl and len(items) == rank + 2 and items[0] == items[-1] == 1:
        items = items[1:-1]
    if (
        isinstance(items, tuple | list)
        and len(items) == rank
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum for v in items)
    ):
        return tuple(int(v) for v in items)
    what = "positive int" if minimum == 1 else "non-negative int"
    tuple_of = f"a tuple of {rank} {what}s" if rank > 1 else f"a tuple of one {what}"
    also = f", or KotlinDL's ({', '.join(['1'] + ['n'] * rank + ['1'])})" if kotlindl else ""
    raise InvalidArgumentError(f"{owner}({arg}=...) expects a {what} or {tuple_of}{also}. Received: {arg}={value!r}")


def conv_padding(owner: str, value: object, causal: bool = False) -> str:
    """Keras' padding name, lower-cased: "valid", "same", or for Conv1D also "causal"."""
    choices = ("valid", "same", "causal") if causal else ("valid", "same")
    if isinstance(value, ConvPadding):
        value = value.value
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise InvalidArgumentError(f"{owner}(padding=...) expects one of {list(choices)}. Received: padding={value!r}")


def receptive_field(kernel_size: Shape) -> int:
    """Keras' fans of a convolution kernel are its channels times this: the kernel's positions."""
    return math.prod(kernel_size)


class BaseConv(Layer):
    """What every convolution layer shares: the window (kernel_size, strides, padding, dilation_rate), the bias,
    the activation, the channels-first layout (see `_layout.py`) and the config. Subclasses name their weights in
    `weight_arguments` and their own arguments in `layer_config`, make the kernel in `build`, and call `emit_conv`
    and `add_penalties`.

    The activation is recorded as Dense records it: `activation_given` says whether one was given, and the config
    leaves it out where it was not, so that a last convolution left at KotlinDL's ReLU default gives linear logits
    to a loss that reads them (`emit.graph_layers`), after `load_model` too.

    The ONNX graph gets Keras' padding as explicit pads (no auto_pad): "same" pads like TensorFlow, the odd
    position at the end, so the output has ceil(size / stride) positions; "causal" (Conv1D) pads at the start only.
    """

    rank: ClassVar[int] = 2
    accepts_channels_first = True
    keras_data_format = True
    causal_allowed: ClassVar[bool] = False
    # (prefix, parameter) of each weight, in Keras' names: `<prefix>_initializer` makes it and
    # `<prefix>_regularizer` penalizes it
    weight_arguments: ClassVar[tuple[tuple[str, str], ...]] = (("kernel", "kernel"), ("bias", "bias"))
    kotlindl_names: ClassVar[dict[str, str]] = {"dilations": "dilation_rate"}  # KotlinDL's (_keras_arguments)

    def __init__(
        self,
        kernel_size: IntOrInts,
        strides: IntOrInts,
        padding: str | ConvPadding,
        dilation_rate: IntOrInts,
        activation: ActivationLike | DefaultActivation,
        use_bias: bool,
        bias_initializer: InitializerLike,
        bias_regularizer: RegularizerLike,
        name: str | None,
        trainable: bool,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = type(self).__name__
        self.kernel_size = conv_ints(owner, "kernel_size", kernel_size, self.rank)
        self.strides = conv_ints(owner, "strides", strides, self.rank, kotlindl=True)
        self.padding = conv_padding(owner, padding, causal=self.causal_allowed)
        self.dilation_rate = conv_ints(owner, "dilation_rate", dilation_rate, self.rank, kotlindl=True)
        if isinstance(activation, DefaultActivation):
            self._activation = activations.get(activation.value)
            self.activation_given = False
        else:
            self.activation = activation
        self.use_bias = check_bool(owner, "use_bias", use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer: Regularizer | None = regularizers.get(bias_regularizer)

    @property
    def activation(self) -> Activation:
        """The Activation (ReLU when not given); assigning one counts as giving it (`activation_given`)."""
        return self._activation

    @activation.setter
    def activation(self, value: ActivationLike) -> None:
        self._activation = activations.get(value)
        self.activation_given = True

    # --- shapes -------------------------------------------------------------------------------------------
    @property
    def extents(self) -> Shape:
        """How many input positions one window spans, dilation included."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate, strict=True))

    def check_input(self, input_shape: Shape) -> int:
        """The input's channels, once its rank is checked."""
        if len(input_shape) != self.rank + 1:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} expects input of shape "
                f"[None, {_SPATIAL_NAMES[self.rank]}, channels]. Received: input shape {format_shape(input_shape)}"
            )
        return input_shape[-1]

    def window(self, input_shape: Shape) -> tuple[Shape, list[int]]:
        """The output's spatial size and the ONNX pads (all begins, then all ends) for `input_shape`."""
        sizes, begins, ends = [], [], []
        for size, extent, stride in zip(input_shape[:-1], self.extents, self.strides, strict=True):
            if self.padding == "valid":
                begin = end = 0
            else:
                total = max((math.ceil(size / stride) - 1) * stride + extent - size, 0)
                begin = extent - 1 if self.padding == "causal" else total // 2
                end = total - begin if self.padding == "same" else 0
            sizes.append((size + begin + end - extent) // stride + 1)
            begins.append(begin)
            ends.append(end)
        if min(sizes) <= 0:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} with padding='valid' needs at least "
                f"{'x'.join(map(str, self.extents))} input positions for its kernel_size={self.kernel_size} and "
                f"dilation_rate={self.dilation_rate}. Received: input shape {format_shape(input_shape)}. "
                "Use padding='same' or a smaller kernel."
            )
        return tuple(sizes), [*begins, *ends]

    # --- graph --------------------------------------------------------------------------------------------
    def emit_conv(self, builder: GraphBuilder, x: str, kernel: str, bias: str | None, group: int) -> str:
        """One ONNX Conv of channels-first `x` with this layer's window; returns a channels-first value."""
        assert self.input_shape is not None, "layers must be built"
        _, pads = self.window(self.input_shape)
        attributes: dict[str, Any] = {
            "kernel_shape": list(self.kernel_size),
            "strides": list(self.strides),
            "dilations": list(self.dilation_rate),
            "pads": pads,
        }
        if group != 1:
            attributes["group"] = group
        inputs = [channels_first(builder, x, self.rank + 2), kernel, *([bias] if bias else [])]
        return mark_channels_first(builder, builder.node("Conv", inputs, hint="conv", **attributes))

    def add_penalties(self, builder: GraphBuilder, params: dict[str, str]) -> None:
        """Record each regularizer's penalty of its weight as a loss term; none for a frozen layer (as Keras)."""
        if self.trainable:
            for prefix, parameter in self.weight_arguments:
                if parameter in params:
                    regularizers.add_penalty(builder, getattr(self, f"{prefix}_regularizer"), params[parameter])

    def activate(self, builder: GraphBuilder, y: str) -> str:
        """The activation of channels-first `y`: elementwise ones stay channels-first; softmax runs over the
        channels as in Keras, so it reads them last."""
        if isinstance(self.activation, activations.Softmax):
            return self.activation.emit(builder, channels_last(builder, y, self.rank + 2))
        return mark_channels_first(builder, self.activation.emit(builder, y))

    def window_config(self) -> dict[str, Any]:
        return {
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
        }

    def layer_config(self) -> dict[str, Any]:
        """The config's head: the window and the layer's own arguments, in the order of its signature."""
        return self.window_config()

    def get_config(self) -> dict[str, Any]:
        prefixes = [prefix for prefix, _ in self.weight_arguments]
        regularizers_given = {f"{p}_regularizer": getattr(self, f"{p}_regularizer") for p in prefixes}
        activation = {"activation": self.activation.get_config()} if self.activation_given else {}
        return {
            **self.layer_config(),
            **activation,  # left out when not given, so the rebuilt layer keeps the default's rule (as Dense's)
            "use_bias": self.use_bias,
            **{f"{p}_initializer": getattr(self, f"{p}_initializer").get_config() for p in prefixes},
            # the regularizers given; None is left out, as Dense leaves it
            **{argument: r.get_config() for argument, r in regularizers_given.items() if r is not None},
            **super().get_config(),
        }


class _Conv(BaseConv):
    """A convolution into `filters` channels: Conv1D, Conv2D (documented there) and Conv3D fix its rank."""

    def __init__(
        self,
        filters: int,
        kernel_size: IntOrInts,
        strides: IntOrInts = 1,
        padding: str | ConvPadding = "same",
        dilation_rate: IntOrInts = 1,
        groups: int = 1,
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
        self.groups = _positive_int(owner, "groups", groups)
        if self.filters % self.groups:
            raise InvalidArgumentError(
                f"{owner}(filters=..., groups=...) expects filters divisible by groups. "
                f"Received: filters={filters}, groups={groups}"
            )
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
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer: Regularizer | None = regularizers.get(kernel_regularizer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        channels = self.check_input(input_shape)
        if channels % self.groups:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} with groups={self.groups} expects input channels "
                f"divisible by {self.groups}. Received: input shape {format_shape(input_shape)}"
            )
        return (*self.window(input_shape)[0], self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        per_group = input_shape[-1] // self.groups
        field = receptive_field(self.kernel_size)
        fan_in, fan_out = per_group * field, self.filters * field
        keras_shape = (*self.kernel_size, per_group, self.filters)  # stored as ONNX's (filters, per_group, *window)
        self.add_weight("kernel", initializers.onnx_conv_kernel(self.kernel_initializer, keras_shape, rng))
        if self.use_bias:
            self.add_weight("bias", self.bias_initializer((self.filters,), fan_in, fan_out, rng))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        params = self.emit_params(builder)
        self.add_penalties(builder, params)
        y = self.emit_conv(builder, x, params["kernel"], params.get("bias"), self.groups)
        return self.activate(builder, y)

    def layer_config(self) -> dict[str, Any]:
        return {"filters": self.filters, **self.window_config(), "groups": self.groups}


class Conv1D(_Conv):
    """1-D convolution over (steps, channels) inputs, e.g. `Conv1D(16, 5, padding="causal")`.

    Arguments, defaults and layout as Conv2D's, with one int per axis; `padding="causal"` pads the start only,
    so output step t sees input steps up to t.
    """

    rank = 1
    causal_allowed = True


class Conv2D(_Conv):
    """2-D convolution over (height, width, channels) inputs, e.g. `Conv2D(32, 3, activation="relu")`.

    The defaults are KotlinDL's, which differ from Keras: `padding="same"` (Keras: "valid"),
    `activation="relu"` (Keras: linear), `kernel_initializer=HeNormal` (Keras: GlorotUniform) and
    `bias_initializer=HeUniform` (Keras: zeros). Fans are Keras': the kernel's positions times its input
    channels (per group) for fan-in, times `filters` for fan-out. As a Dense, a last convolution of any kind whose
    activation is not given (also one whose values only Reshape, Flatten, Permute or a pooling carry to the
    output, as `Conv2D(10, 1)` then `GlobalAveragePooling2D()`), feeding a loss that takes logits, emits its logits
    linear (`emit.graph_layers`); an explicit `activation="relu"` is kept there too.

    The kernel is stored as ONNX's Conv reads it, (filters, in_channels / groups, *kernel_size); Keras' is
    (*kernel_size, in_channels / groups, filters). Unlike Keras, strides and dilation_rate above 1 may be combined.

    Args:
        filters: output channels, a positive int.
        kernel_size: the window, an int or one int per spatial axis.
        strides: an int or one per spatial axis; KotlinDL's (1, s, s, 1) is accepted too.
        padding: "valid", "same" or a `ConvPadding`; Conv1D also takes "causal" (padding at the start only).
        dilation_rate: an int or one per spatial axis (KotlinDL's (1, d, d, 1) too); KotlinDL's name,
            `dilations`, works too.
        groups: split the input channels into this many groups, each convolved into filters / groups outputs.
        activation: name, `Activations` member or Activation instance; not given: ReLU (see above).
        use_bias: add a bias per filter.
        kernel_initializer / bias_initializer: name, class or instance from `onnxtrain.initializers`.
        kernel_regularizer / bias_regularizer: a penalty the loss adds for the weight (`onnxtrain.regularizers`:
            "l2", L2(0.001), ...); None: none.
    """

    rank = 2


class Conv3D(_Conv):
    """3-D convolution over (depth, height, width, channels) inputs, e.g. `Conv3D(8, 3, strides=(1, 2, 2))`.

    Arguments, defaults (KotlinDL's, as Conv2D's: `padding="same"`, `activation="relu"`, HeNormal kernel and
    HeUniform bias; Keras: "valid", linear, GlorotUniform, zeros) and fans as Conv2D's, with one int per axis;
    KotlinDL's (1, s, s, s, 1) strides and dilations (`dilations=`) are accepted too. The kernel is stored as
    ONNX's Conv reads it, (filters, in_channels / groups, depth, height, width); Keras' is (depth, height, width,
    in / groups, filters).
    """

    rank = 3


Convolution1D = Conv1D  # Keras' other names
Convolution2D = Conv2D
Convolution3D = Conv3D
