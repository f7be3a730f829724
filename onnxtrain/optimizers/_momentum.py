"""Momentum: its settings, its update as ONNX (`MomentumRule`) and as one fused loop (`fused_momentum`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.optimizers._base import (
    NON_NEGATIVE,
    Check,
    FusedKernel,
    LearningRate,
    Names,
    Optimizer,
    Slot,
    Update,
    UpdateRule,
    f32,
    scalar,
)
from onnxtrain.optimizers._keras_arguments import keras_arguments

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@keras_arguments(nesterov="use_nesterov")
@dataclass
class Momentum(Optimizer):
    """SGD with momentum (TensorFlow's ApplyMomentum). KotlinDL's defaults: 0.001, momentum 0.99, Nesterov on.

    a = momentum * a + g; w -= lr * a, or with Nesterov w -= lr * g + lr * momentum * a.
    Keras' SGD(momentum=...) keeps v = momentum * v - lr * g instead, which is -lr * a while the learning rate
    stays the same: the two differ only after the learning rate changes. `SGD(momentum=..., nesterov=...)` runs
    this update too.
    """

    learning_rate: LearningRate = 0.001
    momentum: float = 0.99
    use_nesterov: bool = True
    name: str = field(default="momentum", init=False)

    _checks: ClassVar[dict[str, Check]] = {"momentum": NON_NEGATIVE, "use_nesterov": check_bool}


class MomentumRule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        return (Slot("accum"),)

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Momentum)
        return momentum_scalars(b, optimizer.momentum, lr)

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, Momentum)
        return momentum_update(b, optimizer.use_nesterov, w, g, state, s)


def momentum_scalars(b: GraphBuilder, momentum: float, lr: str) -> Names:
    """MomentumRule.prepare, for any optimizer that runs ApplyMomentum (SGD with momentum too)."""
    value = scalar(b, momentum, "momentum")
    return {"lr": lr, "momentum": value, "lr_momentum": b.node("Mul", [value, lr])}


def momentum_update(b: GraphBuilder, nesterov: bool, w: str, g: str, state: Names, s: Names) -> Update:
    """MomentumRule.update, with `s` from `momentum_scalars`."""
    accum = b.node("Add", [b.node("Mul", [state["accum"], s["momentum"]]), g], hint="accum")
    if nesterov:
        step = b.node("Add", [b.node("Mul", [g, s["lr"]]), b.node("Mul", [accum, s["lr_momentum"]])])
    else:
        step = b.node("Mul", [accum, s["lr"]])
    return b.node("Sub", [w, step], hint="new"), {"accum": accum}


def momentum_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """MomentumRule; a = accum. k: lr, momentum, lr * momentum, nesterov (1 or 0), tiny."""
    lr, momentum, lr_momentum, nesterov, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        ai = a[i] * momentum + gi
        step = gi * lr + ai * lr_momentum if nesterov != 0 else ai * lr
        wi = w[i] - step
        a[i] = ai if abs(ai) >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_momentum(optimizer: Momentum) -> FusedKernel:
    return momentum_fused_kernel(optimizer.momentum, optimizer.use_nesterov)


def momentum_fused_kernel(momentum: float, nesterov: bool) -> FusedKernel:
    """fused_momentum, for any optimizer that runs ApplyMomentum (SGD with momentum too)."""
    value, flag = f32(momentum), f32(1.0 if nesterov else 0.0)
    return FusedKernel(momentum_kernel, ("accum",), lambda t, lr: [lr, value, value * lr, flag])
