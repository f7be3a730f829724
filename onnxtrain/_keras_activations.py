"""Keras 3's activations beyond KotlinDL's (`keras.activations`: celu, glu, hard_tanh, soft_shrink, sparse_plus,
squareplus, sparsemax, tanh_shrink, threshold, log_sigmoid, sparse_sigmoid), with Keras' formulas, argument names
and defaults; `onnxtrain.activations` registers them.

Each is emitted with operators both engines differentiate (Clip, Min, Exp, Where, Slice, TopK, CumSum, ...): not
ONNX's Celu, Shrink or HardSigmoid, which ONNX Runtime's training build has no gradient for. The pieces meet as
Keras' do; at a kink (soft_shrink's threshold) the gradient is that of one side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain._activation_base import Activation, channel_axis
from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder

_END = int(np.iinfo(np.int64).max)  # a Slice end past any length


def _number(owner: str, arg: str, value: object, rule: str = "", allowed: bool = True) -> float:
    """`value` as a Python float: a real number (numpy scalars too, not bools) finite in float32, where `allowed`
    (a further rule on it, which `rule` states)."""
    number = as_real(value)
    if number is not None and abs(number) <= FLOAT32_MAX and allowed:  # NaN fails the comparison
        return number
    raise InvalidArgumentError(f"{owner}({arg}=...) expects a finite number{rule}. Received: {arg}={value!r}")


@dataclass(frozen=True)
class Celu(Activation):
    """Keras' celu: x where x >= 0, else alpha * (exp(x / alpha) - 1) (default alpha 1.0; alpha != 0)."""

    alpha: float = 1.0
    name: str = field(default="celu", init=False)

    def __post_init__(self) -> None:
        alpha = as_real(self.alpha)
        object.__setattr__(self, "alpha", _number("Celu", "alpha", self.alpha, " other than 0", alpha != 0))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        # relu(x) + alpha * (exp(min(x, 0) / alpha) - 1), as JAX computes it; ONNX's Celu has no training gradient
        negative = builder.node("Min", [x, builder.constant(0.0, "celu_zero")])
        scaled = builder.node("Div", [negative, builder.constant(self.alpha, "celu_alpha")])
        expm1 = builder.node("Sub", [builder.node("Exp", [scaled]), builder.constant(1.0, "celu_one")])
        tail = builder.node("Mul", [expm1, builder.constant(self.alpha, "celu_alpha")])
        return builder.node("Add", [builder.node("Relu", [x]), tail], hint="celu")


@dataclass(frozen=True)
class Glu(Activation):
    """Keras' glu: the last axis split into halves a and b, a * sigmoid(b): half as many outputs (`Dense(8,
    activation="glu")` gives 4; Keras' symbolic shape still says 8). Not a convolution's activation: its output
    shape counts `filters` channels; follow the convolution with `Activation("glu")` instead."""

    name: str = field(default="glu", init=False)
    along_last_axis: ClassVar[bool] = True

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape or shape[-1] % 2:
            raise ShapeError(
                "The glu activation splits the last axis into two halves, so it expects an even size there. "
                f"Received: an input of shape {(None, *shape)}"
            )
        return (*shape[:-1], shape[-1] // 2)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        axis = channel_axis(builder, x)
        if axis == 1:
            raise UnsupportedError(
                "The glu activation halves the channels, and a convolution's output shape counts its filters: it "
                "is not a convolution's activation. Give the convolution activation='linear' and follow it with "
                "Activation('glu') (or double its filters for the same number of outputs)."
            )
        axes = builder.ints([axis], "glu_axis")
        size = builder.node("Slice", [builder.node("Shape", [x]), builder.ints([-1], "last"), builder.ints([_END])])
        half = builder.node("Div", [size, builder.ints([2], "two")], hint="glu_half")
        first = builder.node("Slice", [x, builder.ints([0], "start"), half, axes], hint="glu_a")
        second = builder.node("Slice", [x, half, builder.ints([_END], "end"), axes], hint="glu_b")
        return builder.node("Mul", [first, builder.node("Sigmoid", [second])], hint="glu")


@dataclass(frozen=True)
class HardTanh(Activation):
    """Keras' hard_tanh: clip(x, -1, 1)."""

    name: str = field(default="hard_tanh", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        low, high = builder.constant(-1.0, "minus_one"), builder.constant(1.0, "one")
        return builder.node("Clip", [x, low, high], hint="hard_tanh")


@dataclass(frozen=True)
class SoftShrink(Activation):
    """Keras' soft_shrink: x - threshold above threshold, x + threshold below -threshold, else 0 (default 0.5;
    threshold >= 0). Emitted as x - clip(x, -threshold, threshold)."""

    threshold: float = 0.5
    name: str = field(default="soft_shrink", init=False)

    def __post_init__(self) -> None:
        value = as_real(self.threshold)
        checked = _number("SoftShrink", "threshold", self.threshold, " >= 0", value is not None and value >= 0)
        object.__setattr__(self, "threshold", checked)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        low, high = builder.constant(-self.threshold, "shrink_low"), builder.constant(self.threshold, "shrink_high")
        return builder.node("Sub", [x, builder.node("Clip", [x, low, high])], hint="soft_shrink")


@dataclass(frozen=True)
class SparsePlus(Activation):
    """Keras' sparse_plus: 0 for x <= -1, (x + 1)^2 / 4 between, x for x >= 1. Emitted as (c + 1)^2 / 4 +
    relu(x - 1) with c = clip(x, -1, 1)."""

    name: str = field(default="sparse_plus", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        one = builder.constant(1.0, "one")
        shifted = builder.node("Add", [builder.node("Clip", [x, builder.constant(-1.0, "minus_one"), one]), one])
        square = builder.node("Mul", [builder.node("Mul", [shifted, shifted]), builder.constant(0.25, "quarter")])
        linear = builder.node("Relu", [builder.node("Sub", [x, one])])
        return builder.node("Add", [square, linear], hint="sparse_plus")


@dataclass(frozen=True)
class Squareplus(Activation):
    """Keras' squareplus: (x + sqrt(x^2 + b)) / 2 (default b 4; b > 0: at b = 0 it is relu, with no gradient at 0)."""

    b: float = 4.0
    name: str = field(default="squareplus", init=False)

    def __post_init__(self) -> None:
        value = as_real(self.b)
        checked = _number("Squareplus", "b", self.b, " > 0 (b=0 is relu: use 'relu')", value is not None and value > 0)
        object.__setattr__(self, "b", checked)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        root = builder.node("Sqrt", [builder.node("Add", [builder.node("Mul", [x, x]), builder.constant(self.b, "b")])])
        return builder.node("Mul", [builder.node("Add", [x, root]), builder.constant(0.5, "half")], hint="squareplus")


@dataclass(frozen=True)
class Sparsemax(Activation):
    """Keras' sparsemax over the last axis: max(x - tau, 0), with tau the threshold that makes the outputs sum to 1
    (Martins and Astudillo, 2016), computed as Keras does: the values sorted (TopK), their running sums, the
    support where sorted - (running sum - 1) / rank > 0. The running sums are a MatMul by an upper triangle of ones,
    which ONNX Runtime's training build differentiates (it has no CumSum gradient); over a convolution's
    channels-first output (axis 1), CumSum (the portable engine trains it)."""

    name: str = field(default="sparsemax", init=False)
    along_last_axis: ClassVar[bool] = True

    def emit(self, builder: GraphBuilder, x: str) -> str:
        axis = channel_axis(builder, x)
        shape = builder.node("Shape", [x])
        size = builder.node("Slice", [shape, builder.ints([axis], "axis"), builder.ints([axis + 1 or _END], "next")])
        ordered, _ = builder.multi_output_node("TopK", [x, size], 2, hint="sorted", axis=axis, largest=1, sorted=1)
        if axis == -1:
            square = builder.node("Concat", [size, size], axis=0)
            triangle = builder.node("Trilu", [_ones(builder, square)], hint="upper_triangle", upper=1)
            running = builder.node("MatMul", [ordered, triangle], hint="running_sum")
            rank = builder.reduce("ReduceSum", triangle, [0], keepdims=False, hint="rank")  # 1, 2, ..., size
        else:
            axis_value = builder.constant(np.int64(axis), "sparsemax_axis", np.int64)  # CumSum's axis: a scalar
            running = builder.node("CumSum", [ordered, axis_value], hint="running_sum")
            rank = builder.node("CumSum", [_ones(builder, shape), axis_value], hint="rank")
        one = builder.constant(1.0, "one")
        bound = builder.node("Div", [builder.node("Sub", [running, one]), rank])
        positive = builder.node("Greater", [builder.node("Sub", [ordered, bound]), _zero(builder)])
        support = builder.node("Cast", [positive], hint="support", to=onnx.TensorProto.FLOAT)
        count = builder.reduce("ReduceSum", support, [axis], keepdims=True, hint="support_size")
        total = builder.reduce("ReduceSum", builder.node("Mul", [running, support]), [axis], keepdims=True)
        tau = builder.node("Div", [builder.node("Sub", [total, one]), count], hint="tau")
        return builder.node("Relu", [builder.node("Sub", [x, tau])], hint="sparsemax")


def _ones(builder: GraphBuilder, shape: str) -> str:
    return builder.node("ConstantOfShape", [shape], hint="ones", value=numpy_helper.from_array(np.ones(1, np.float32)))


def _zero(builder: GraphBuilder) -> str:
    return builder.constant(0.0, "zero")


@dataclass(frozen=True)
class TanhShrink(Activation):
    """Keras' tanh_shrink: x - tanh(x)."""

    name: str = field(default="tanh_shrink", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        return builder.node("Sub", [x, builder.node("Tanh", [x])], hint="tanh_shrink")


@dataclass(frozen=True)
class Threshold(Activation):
    """Keras' threshold: x where x > threshold, else default_value. Keras gives neither a default, so both are
    needed: `{"name": "threshold", "threshold": 0.0, "default_value": 0.0}` or `Threshold(0.0, 0.0)`."""

    threshold: float | None = None
    default_value: float | None = None
    name: str = field(default="threshold", init=False)

    def __post_init__(self) -> None:
        if self.threshold is None or self.default_value is None:
            raise InvalidArgumentError(
                "Threshold expects threshold=... and default_value=... (Keras' threshold activation has no defaults),"
                " e.g. {'name': 'threshold', 'threshold': 0.0, 'default_value': 0.0}. Received: "
                f"threshold={self.threshold!r}, default_value={self.default_value!r}"
            )
        object.__setattr__(self, "threshold", _number("Threshold", "threshold", self.threshold))
        object.__setattr__(self, "default_value", _number("Threshold", "default_value", self.default_value))

    def emit(self, builder: GraphBuilder, x: str) -> str:
        above = builder.node("Greater", [x, builder.constant(float(self.threshold or 0.0), "threshold")])
        fill = builder.constant(float(self.default_value or 0.0), "default_value")
        return builder.node("Where", [above, x, fill], hint="threshold")


@dataclass(frozen=True)
class LogSigmoid(Activation):
    """Keras' log_sigmoid: log(sigmoid(x)) = -softplus(-x), emitted as where(x < 0, x, 0) - log(1 + exp(t)) with
    t = where(x < 0, x, -x) = -|x|: exact, finite for large |x|, and with gradient sigmoid(-x) everywhere."""

    name: str = field(default="log_sigmoid", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        # Where, not Min and Abs: their gradients at the tie x = 0 (1 and 0) would give 1.0 there instead of 0.5;
        # Where's condition picks one smooth branch, each fed only values whose Exp cannot overflow.
        zero = _zero(builder)
        negative = builder.node("Less", [x, zero])
        minus_abs = builder.node("Where", [negative, x, builder.node("Neg", [x])])
        log1p = builder.node(
            "Log", [builder.node("Add", [builder.node("Exp", [minus_abs]), builder.constant(1.0, "one")])]
        )
        return builder.node("Sub", [builder.node("Where", [negative, x, zero]), log1p], hint="log_sigmoid")


@dataclass(frozen=True)
class SparseSigmoid(Activation):
    """Keras' sparse_sigmoid: clip((x + 1) / 2, 0, 1), the derivative of sparse_plus."""

    name: str = field(default="sparse_sigmoid", init=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        half = builder.constant(0.5, "half")
        scaled = builder.node("Add", [builder.node("Mul", [x, half]), half])
        return builder.node("Clip", [scaled, _zero(builder), builder.constant(1.0, "one")], hint="sparse_sigmoid")


KERAS_ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (
        Celu,
        Glu,
        HardTanh,
        SoftShrink,
        SparsePlus,
        Squareplus,
        Sparsemax,
        TanhShrink,
        Threshold,
        LogSigmoid,
        SparseSigmoid,
    )
}
"""{Keras' name: class}, registered by `onnxtrain.activations`."""

KERAS_ALIASES: dict[str, str] = {name.replace("_", ""): name for name in KERAS_ACTIVATIONS if "_" in name}
"""Their names without underscores ("hardtanh", PyTorch's "softshrink"), as `activations._normalize` keys them."""
