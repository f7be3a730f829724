"""Activation functions: how each is emitted as ONNX nodes, and the registry that maps names to them.

Only operators with a gradient in ONNX Runtime training are used, so every activation can be trained.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from onnxtrain._activation_base import Activation as Activation
from onnxtrain._activation_base import channel_axis as channel_axis
from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder


@dataclass(frozen=True)
class Linear(Activation):
    name: str = field(default="linear", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return x


@dataclass(frozen=True)
class Relu(Activation):
    name: str = field(default="relu", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Relu", [x], hint="relu")


@dataclass(frozen=True)
class Sigmoid(Activation):
    name: str = field(default="sigmoid", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Sigmoid", [x], hint="sigmoid")


@dataclass(frozen=True)
class Tanh(Activation):
    name: str = field(default="tanh", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Tanh", [x], hint="tanh")


@dataclass(frozen=True)
class Selu(Activation):
    """Scaled ELU with the standard constants (alpha 1.67326, scale 1.0507)."""

    name: str = field(default="selu", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        elu = _elu(builder, x, 1.6732632423543772)
        return builder.node("Mul", [elu, builder.constant(1.0507009873554805, "selu_scale")], hint="selu")


def _check_alpha(owner: str, value: object) -> float:
    """`alpha` as a Python float: a real number (numpy scalars too, not bools) finite in float32, as graphs hold it."""
    number = as_real(value)
    if number is not None and abs(number) <= FLOAT32_MAX:  # NaN fails the comparison
        return number
    raise InvalidArgumentError(
        f"{owner}(alpha=...) expects a finite number within float32 range (|alpha| <= 3.4e38). "
        f"Received: alpha={value!r}"
    )


def _elu(builder: GraphBuilder, x: str, alpha: float) -> str:
    # relu(x) + alpha * (exp(min(x, 0)) - 1): ONNX Runtime training has no gradient for the Elu/Selu operators.
    negative = builder.node("Min", [x, builder.constant(0.0, "elu_zero")])
    expm1 = builder.node("Sub", [builder.node("Exp", [negative]), builder.constant(1.0, "elu_one")])
    scaled = builder.node("Mul", [expm1, builder.constant(alpha, "elu_alpha")])
    return builder.node("Add", [builder.node("Relu", [x]), scaled], hint="elu")


@dataclass(frozen=True)
class Softmax(Activation):
    """Softmax over the last axis."""

    name: str = field(default="softmax", init=False)
    along_last_axis: ClassVar[bool] = True

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Softmax", [x], hint="softmax", axis=-1)


@dataclass(frozen=True)
class LeakyRelu(Activation):
    """max(alpha * x, x); KotlinDL's and TensorFlow's default alpha is 0.2 (Keras layers use 0.3)."""

    alpha: float = 0.2
    name: str = field(default="leaky_relu", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_alpha("LeakyRelu", self.alpha))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("LeakyRelu", [x], hint="leaky_relu", alpha=float(self.alpha))


@dataclass(frozen=True)
class Elu(Activation):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    alpha: float = 1.0
    name: str = field(default="elu", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_alpha("Elu", self.alpha))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return _elu(builder, x, float(self.alpha))


@dataclass(frozen=True)
class Gelu(Activation):
    """Exact GELU, x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))); `approximate=True` uses the tanh form."""

    approximate: bool = False
    name: str = field(default="gelu", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.approximate, bool | np.bool_):
            raise InvalidArgumentError(
                "Gelu(approximate=...) expects a bool (True for the tanh form). "
                f"Received: approximate={self.approximate!r}"
            )
        object.__setattr__(self, "approximate", bool(self.approximate))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        half = builder.constant(0.5, "gelu_half")
        one = builder.constant(1.0, "gelu_one")
        if self.approximate:
            cube = builder.node("Mul", [builder.node("Mul", [x, x]), x])
            inner = builder.node("Add", [x, builder.node("Mul", [cube, builder.constant(0.044715)])])
            scaled = builder.node("Mul", [inner, builder.constant(math.sqrt(2.0 / math.pi))])
            phi = builder.node("Add", [builder.node("Tanh", [scaled]), one])
        else:
            scaled = builder.node("Mul", [x, builder.constant(1.0 / math.sqrt(2.0), "gelu_inv_sqrt2")])
            phi = builder.node("Add", [builder.node("Erf", [scaled]), one])
        return builder.node("Mul", [builder.node("Mul", [x, half]), phi], hint="gelu")


@dataclass(frozen=True)
class Swish(Activation):
    """x * sigmoid(x) (also called SiLU)."""

    name: str = field(default="swish", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Mul", [x, builder.node("Sigmoid", [x])], hint="swish")


@dataclass(frozen=True)
class Softplus(Activation):
    """log(1 + exp(x))."""

    name: str = field(default="softplus", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Softplus", [x], hint="softplus")


@dataclass(frozen=True)
class Softsign(Activation):
    """x / (1 + |x|)."""

    name: str = field(default="softsign", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Softsign", [x], hint="softsign")


@dataclass(frozen=True)
class Relu6(Activation):
    """min(max(x, 0), 6)."""

    name: str = field(default="relu6", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        zero, six = builder.constant(np.float32(0.0), "zero"), builder.constant(np.float32(6.0), "six")
        return builder.node("Clip", [x, zero, six], hint="relu6")


@dataclass(frozen=True)
class HardSigmoid(Activation):
    """Keras 3's hard sigmoid, relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1) (Keras 2's was clip(0.2 x + 0.5, 0, 1))."""

    name: str = field(default="hard_sigmoid", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("HardSigmoid", [x], hint="hard_sigmoid", alpha=1.0 / 6.0, beta=0.5)


@dataclass(frozen=True)
class HardSilu(Activation):
    """x * hard_sigmoid(x) (Keras' hard_silu, also called hard_swish)."""

    name: str = field(default="hard_silu", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        gate = builder.node("HardSigmoid", [x], hint="hard_sigmoid", alpha=1.0 / 6.0, beta=0.5)
        return builder.node("Mul", [x, gate], hint="hard_silu")


@dataclass(frozen=True)
class Exponential(Activation):
    """exp(x)."""

    name: str = field(default="exponential", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Exp", [x], hint="exponential")


@dataclass(frozen=True)
class Mish(Activation):
    """x * tanh(softplus(x))."""

    name: str = field(default="mish", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Mul", [x, builder.node("Tanh", [builder.node("Softplus", [x])])], hint="mish")


@dataclass(frozen=True)
class LogSoftmax(Activation):
    """log(softmax(x)) over the last axis."""

    name: str = field(default="log_softmax", init=False)
    along_last_axis: ClassVar[bool] = True

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("LogSoftmax", [x], hint="log_softmax", axis=channel_axis(builder, x))


def _check_finite(owner: str, arg: str, value: object) -> float:
    """`value` as a Python float: a real number (numpy scalars too, not bools) finite in float32."""
    number = as_real(value)
    if number is not None and abs(number) <= FLOAT32_MAX:  # NaN fails the comparison
        return number
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects a finite number within float32 range. Received: {arg}={value!r}"
    )


@dataclass(frozen=True)
class HardShrink(Activation):
    """KotlinDL's hard shrink: x where x < lower or x > upper, else 0 (defaults -0.5 and 0.5; Keras 3's
    hard_shrink(x, threshold) is lower = -threshold, upper = threshold). A mask times x, so the gradient is 1
    outside [lower, upper] and 0 inside. KotlinDL documents this formula, though its code returns x unchanged (it
    compares the TensorFlow operands, not their values); this is the documented one."""

    lower: float = -0.5
    upper: float = 0.5
    name: str = field(default="hard_shrink", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower", _check_finite("HardShrink", "lower", self.lower))
        object.__setattr__(self, "upper", _check_finite("HardShrink", "upper", self.upper))
        if not self.lower < self.upper:
            raise InvalidArgumentError(
                f"HardShrink expects lower < upper. Received: lower={self.lower!r}, upper={self.upper!r}"
            )

    def emit(self, builder: GraphBuilder, x: str) -> str:
        below = builder.node("Less", [x, builder.constant(self.lower, "shrink_lower")])
        above = builder.node("Greater", [x, builder.constant(self.upper, "shrink_upper")])
        kept = builder.node("Cast", [builder.node("Or", [below, above])], hint="shrink_mask", to=1)  # to float
        return builder.node("Mul", [x, kept], hint="hard_shrink")


@dataclass(frozen=True)
class LiSHT(Activation):
    """KotlinDL's LiSHT (linearly scaled hyperbolic tangent): x * tanh(x)."""

    name: str = field(default="lisht", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Mul", [x, builder.node("Tanh", [x])], hint="lisht")


@dataclass(frozen=True)
class Snake(Activation):
    """KotlinDL's snake: x + (1 - cos(2 * frequency * x)) / (2 * frequency), `frequency` > 0 (default 1)."""

    frequency: float = 1.0
    name: str = field(default="snake", init=False)

    def __post_init__(self) -> None:
        frequency = as_real(self.frequency)
        if frequency is None or not 0 < frequency <= FLOAT32_MAX / 2:
            raise InvalidArgumentError(
                f"Snake(frequency=...) expects a positive finite number. Received: frequency={self.frequency!r}"
            )
        object.__setattr__(self, "frequency", frequency)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        twice = builder.constant(2.0 * self.frequency, "snake_twice_frequency")
        cosine = builder.node("Cos", [builder.node("Mul", [x, twice])])
        periodic = builder.node("Sub", [builder.constant(1.0, "snake_one"), cosine])
        return builder.node("Add", [x, builder.node("Div", [periodic, twice])], hint="snake")


class Activations(enum.Enum):
    """KotlinDL's activation names, for `Dense(activation=Activations.Relu)`: every member of KotlinDL's enum.

    HardSigmoid is Keras 3's, clip(x / 6 + 0.5, 0, 1) (as `Activation("hard_sigmoid")`). KotlinDL's differs: its
    docs give Keras 2's clip(0.2 x + 0.5, 0, 1), and its code computes 0.2 x + 0.5 without the clip. HardShrink,
    LiSHT and Snake take KotlinDL's defaults; their classes (`HardShrink(lower, upper)`, `Snake(frequency)`) take
    others.
    """

    Linear = "linear"
    Relu = "relu"
    Sigmoid = "sigmoid"
    Tanh = "tanh"
    Softmax = "softmax"
    LeakyRelu = "leaky_relu"
    Elu = "elu"
    Selu = "selu"
    Gelu = "gelu"
    Swish = "swish"
    Relu6 = "relu6"
    LogSoftmax = "log_softmax"
    Exponential = "exponential"
    SoftPlus = "softplus"
    SoftSign = "softsign"
    HardSigmoid = "hard_sigmoid"
    Mish = "mish"
    HardShrink = "hard_shrink"
    LiSHT = "lisht"
    Snake = "snake"


# Keras 3's other activations (celu, glu, sparsemax, ...) subclass Activation, so their module comes after it; those
# with arguments are importable from here, as LeakyRelu is.
from onnxtrain._keras_activations import KERAS_ACTIVATIONS, KERAS_ALIASES  # noqa: E402
from onnxtrain._keras_activations import Celu as Celu  # noqa: E402
from onnxtrain._keras_activations import SoftShrink as SoftShrink  # noqa: E402
from onnxtrain._keras_activations import Squareplus as Squareplus  # noqa: E402
from onnxtrain._keras_activations import Threshold as Threshold  # noqa: E402

_CLASSES: dict[str, type[Activation]] = {
    "linear": Linear,
    "relu": Relu,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
    "leaky_relu": LeakyRelu,
    "elu": Elu,
    "selu": Selu,
    "gelu": Gelu,
    "swish": Swish,
    "softplus": Softplus,
    "softsign": Softsign,
    "relu6": Relu6,
    "hard_sigmoid": HardSigmoid,
    "hard_silu": HardSilu,
    "exponential": Exponential,
    "mish": Mish,
    "log_softmax": LogSoftmax,
    "hard_shrink": HardShrink,
    "lisht": LiSHT,
    "snake": Snake,
    **KERAS_ACTIVATIONS,
}
_ALIASES = {
    "identity": "linear",
    "none": "linear",
    "leakyrelu": "leaky_relu",
    "silu": "swish",
    "hardsigmoid": "hard_sigmoid",
    "hardsilu": "hard_silu",
    "hardswish": "hard_silu",
    "logsoftmax": "log_softmax",
    "hardshrink": "hard_shrink",
    **KERAS_ALIASES,
}


def _normalize(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return key if key.replace("_", "") not in _ALIASES else key.replace("_", "")


_REGISTRY = Registry("activation", Activation, _CLASSES, _ALIASES, normalize=_normalize)


def get(identifier: str | Activations | Activation | dict[str, Any] | None) -> Activation:
    """Map a name ("relu"), an `Activations` member, a config dict or an instance to an Activation.

    Raises:
        UnknownIdentifierError: the name is not a known activation.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activations):
        identifier = identifier.value
    return _REGISTRY.get(identifier, also_accepted=", an Activations member")
