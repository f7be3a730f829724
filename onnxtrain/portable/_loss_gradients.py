"""Gradient rules of the losses: dL/d(output) of each loss's batch mean, next to the value `Loss.emit` computes.

Register a rule for a custom Loss with `register_loss_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import TensorProto

from onnxtrain import losses
from onnxtrain.graph import GraphBuilder
from onnxtrain.portable._ops import batch_size, float_size, scalar
from onnxtrain.portable._registry import RuleRegistry

LossGradient = Callable[[GraphBuilder, losses.Loss, str, str], str]
"""(builder, loss, output, labels) -> d loss / d output"""

_RULES: RuleRegistry[LossGradient] = RuleRegistry("loss", losses.Loss, ("emit",), "register_loss_gradient")


def register_loss_gradient(cls: type[losses.Loss], rule: LossGradient) -> None:
    """Teach the portable engine to differentiate loss class `cls`: `rule(builder, loss, output, labels)`
    emits
    and returns d(mean loss)/d(output). Subclasses that keep `emit` inherit the rule.
    """
    _RULES.register(cls, rule)


def loss_gradient(loss: losses.Loss) -> LossGradient:
    """The rule for `loss`; UnsupportedError when there is none."""
    return _RULES.lookup(loss)


def _softmax_cross_entropy(b: GraphBuilder, loss: losses.Loss, output: str, labels: str) -> str:
    # (softmax(z) - one_hot(labels)) / batch
    probabilities = b.node("Softmax", [output], hint="probabilities", axis=-1)
    depth = b.node("Gather", [b.node("Shape", [output]), b.constant(np.int64(-1), "last", np.int64)], axis=0)
    one_hot = b.node("OneHot", [labels, depth, b.constant(np.array([0.0, 1.0], np.float32), "off_on")], axis=-1)
    return b.node("Div", [b.node("Sub", [probabilities, one_hot]), batch_size(b, output)], hint="grad")


def _mean_squared_error(b: GraphBuilder, loss: losses.Loss, output: str, labels: str) -> str:
    error = b.node("Sub", [output, labels])
    scale = b.node("Div", [scalar(b, 2.0, "two"), float_size(b, output)])
    return b.node("Mul", [error, scale], hint="grad")


def _mean_absolute_error(b: GraphBuilder, loss: losses.Loss, output: str, labels: str) -> str:
    return b.node("Div", [b.node("Sign", [b.node("Sub", [output, labels])]), float_size(b, output)], hint="grad")


def _huber(b: GraphBuilder, loss: losses.Loss, output: str, labels: str) -> str:
    assert isinstance(loss, losses.Huber)
    error = b.node("Sub", [output, labels])
    clipped = b.node("Clip", [error, scalar(b, -loss.delta, "minus_delta"), scalar(b, loss.delta, "delta")])
    return b.node("Div", [clipped, float_size(b, output)], hint="grad")


def _binary_crossentropy(b: GraphBuilder, loss: losses.Loss, output: str, labels: str) -> str:
    assert isinstance(loss, losses.BinaryCrossentropy)
    low, high = loss.epsilon, 1.0 - loss.epsilon
    one, epsilon = scalar(b, 1.0, "one"), scalar(b, loss.epsilon, "epsilon")
    p = b.node("Clip", [output, scalar(b, low, "low"), scalar(b, high, "high")])
    # d/dp -(y log(p + eps) + (1 - y) log(1 - p + eps)) = (1 - y) / (1 - p + eps) - y / (p + eps); zero where
    # the clip is active, as for Clip.
    slope = b.node(
        "Sub",
        [
            b.node("Div", [b.node("Sub", [one, labels]), b.node("Add", [b.node("Sub", [one, p]), epsilon])]),
            b.node("Div", [labels, b.node("Add", [p, epsilon])]),
        ],
    )
    inside = b.node(
        "And",
        [
            b.node("Greater", [output, scalar(b, low, "low")]),
            b.node("Less", [output, scalar(b, high, "high")]),
        ],
    )
    masked = b.node("Mul", [slope, b.node("Cast", [inside], to=TensorProto.FLOAT)])
    return b.node("Div", [masked, float_size(b, output)], hint="grad")


for _cls, _rule in [
    (losses.SoftmaxCrossEntropyWithLogits, _softmax_cross_entropy),
    (losses.MeanSquaredError, _mean_squared_error),
    (losses.MeanAbsoluteError, _mean_absolute_error),
    (losses.Huber, _huber),
    (losses.BinaryCrossentropy, _binary_crossentropy),
]:
    register_loss_gradient(_cls, _rule)
