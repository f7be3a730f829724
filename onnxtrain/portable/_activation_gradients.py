"""Gradient rules of the activations: dL/dz from z (pre-activation), y = activation(z) and dL/dy.

Rules read y where that is enough, so z keeps a single consumer and ONNX Runtime can still fuse Gemm + Relu.
Selections use float masks (Cast + Mul) rather than Where, which ONNX Runtime's CPU kernel runs slowly.
Register a rule for a custom Activation with `register_activation_gradient`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from onnx import TensorProto

from onnxtrain import activations as act
from onnxtrain.graph import GraphBuilder
from onnxtrain.portable._ops import reduce, scalar
from onnxtrain.portable._registry import RuleRegistry

ActivationGradient = Callable[[GraphBuilder, act.Activation, str, str, str], str]
"""(builder, activation, z, y, grad_y) -> grad_z"""

_RULES: RuleRegistry[ActivationGradient] = RuleRegistry(
    "activation", act.Activation, ("emit",), "register_activation_gradient"
)

# ONNX Selu's default constants (what activations.Selu emits).
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875


def register_activation_gradient(cls: type[act.Activation], rule: ActivationGradient) -> None:
    """Teach the portable engine to differentiate activation class `cls`: `rule(builder, activation, z, y,
    grad_y)`
    emits and returns dL/dz. Subclasses that keep `emit` inherit the rule.
    """
    _RULES.register(cls, rule)


def activation_gradient(activation: act.Activation) -> ActivationGradient:
    """The rule for `activation`; UnsupportedError when there is none."""
    return _RULES.lookup(activation)


def _positive(b: GraphBuilder, value: str) -> str:
    """1.0 where value > 0, else 0.0. (Cast + Mul: ONNX Runtime's CPU Where is several times slower.)"""
    return b.node("Cast", [b.node("Greater", [value, scalar(b, 0.0, "zero")])], hint="positive", to=TensorProto.FLOAT)


def _blend(b: GraphBuilder, mask: str, if_positive: str, otherwise: str) -> str:
    """otherwise + mask * (if_positive - otherwise): a select for finite values."""
    return b.node("Add", [otherwise, b.node("Mul", [mask, b.node("Sub", [if_positive, otherwise])])])


def _linear(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    return g


def _relu(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    return b.node("Mul", [g, _positive(b, y)], hint="grad")


def _leaky_relu(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    assert isinstance(a, act.LeakyRelu)
    mask = _positive(b, y if a.alpha > 0 else z)  # with alpha <= 0, y > 0 no longer tells z > 0
    slope = _blend(b, mask, scalar(b, 1.0, "one"), scalar(b, a.alpha, "alpha"))
    return b.node("Mul", [g, slope], hint="grad")


def _elu(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    assert isinstance(a, act.Elu)
    # For z <= 0, d/dz alpha * (e^z - 1) = y + alpha.
    mask = _positive(b, y if a.alpha > 0 else z)
    slope = _blend(b, mask, scalar(b, 1.0, "one"), b.node("Add", [y, scalar(b, a.alpha, "alpha")]))
    return b.node("Mul", [g, slope], hint="grad")


def _selu(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    # gamma for z > 0; gamma * alpha * e^z = y + gamma * alpha otherwise
    negative = b.node("Add", [y, scalar(b, SELU_GAMMA * SELU_ALPHA, "gamma_alpha")])
    slope = _blend(b, _positive(b, y), scalar(b, SELU_GAMMA, "gamma"), negative)
    return b.node("Mul", [g, slope], hint="grad")


def _sigmoid(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    return b.node("Mul", [g, b.node("Mul", [y, b.node("Sub", [scalar(b, 1.0, "one"), y])])], hint="grad")


def _tanh(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    return b.node("Mul", [g, b.node("Sub", [scalar(b, 1.0, "one"), b.node("Mul", [y, y])])], hint="grad")


def _softmax(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    # y * (g - sum(g * y)) over the softmax axis
    dot = reduce(b, "ReduceSum", b.node("Mul", [g, y]), [-1], keepdims=True, hint="softmax_dot")
    return b.node("Mul", [y, b.node("Sub", [g, dot])], hint="grad")


def _swish(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    s = b.node("Sigmoid", [z])  # d/dz z*s(z) = s * (1 + z * (1 - s))
    one = scalar(b, 1.0, "one")
    inner = b.node("Add", [one, b.node("Mul", [z, b.node("Sub", [one, s])])])
    return b.node("Mul", [g, b.node("Mul", [s, inner])], hint="grad")


def _gelu(b: GraphBuilder, a: act.Activation, z: str, y: str, g: str) -> str:
    assert isinstance(a, act.Gelu)
    half, one = scalar(b, 0.5, "half"), scalar(b, 1.0, "one")
    if a.approximate:
        # y = 0.5 z (1 + tanh(u)), u = c (z + k z^3): y' = 0.5 (1 + tanh u) + 0.5 z (1 - tanh^2 u) c (1 + 3k
        # z^2)
        c, k = math.sqrt(2.0 / math.pi), 0.044715
        z2 = b.node("Mul", [z, z])
        u = b.node(
            "Mul",
            [
                b.node("Add", [z, b.node("Mul", [b.node("Mul", [z2, z]), scalar(b, k, "k")])]),
                scalar(b, c, "c"),
            ],
        )
        t = b.node("Tanh", [u])
        du = b.node("Mul", [b.node("Add", [one, b.node("Mul", [z2, scalar(b, 3 * k, "k3")])]), scalar(b, c, "c")])
        sech2 = b.node("Sub", [one, b.node("Mul", [t, t])])
        slope = b.node(
            "Add",
            [
                b.node("Mul", [half, b.node("Add", [one, t])]),
                b.node("Mul", [b.node("Mul", [b.node("Mul", [half, z]), sech2]), du]),
            ],
        )
    else:
        # y = z Phi(z): y' = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi)
        cdf = b.node(
            "Mul",
            [
                half,
                b.node("Add", [one, b.node("Erf", [b.node("Mul", [z, scalar(b, 1 / math.sqrt(2), "r")])])]),
            ],
        )
        pdf = b.node(
            "Mul",
            [
                b.node("Exp", [b.node("Mul", [b.node("Mul", [z, z]), scalar(b, -0.5, "m_half")])]),
                scalar(b, 1 / math.sqrt(2 * math.pi), "inv_sqrt_2pi"),
            ],
        )
        slope = b.node("Add", [cdf, b.node("Mul", [z, pdf])])
    return b.node("Mul", [g, slope], hint="grad")


for _cls, _rule in [
    (act.Linear, _linear),
    (act.Relu, _relu),
    (act.LeakyRelu, _leaky_relu),
    (act.Elu, _elu),
    (act.Selu, _selu),
    (act.Sigmoid, _sigmoid),
    (act.Tanh, _tanh),
    (act.Softmax, _softmax),
    (act.Swish, _swish),
    (act.Gelu, _gelu),
]:
    register_activation_gradient(_cls, _rule)
