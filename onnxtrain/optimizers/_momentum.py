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
    Names,
    Optimizer,
    Slot,
    Update,
    UpdateRule,
    f32,
    scalar,
)

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@dataclass
class Momentum(Optimizer):
    """SGD with momentum (TensorFlow's ApplyMomentum). KotlinDL's defaults: 0.001, momentum 0.99, Nesterov on.

    a = momentum * a + g; w -= lr * a, or with Nesterov w -= lr * g + lr * momentum * a.
    """

    learning_rate: float = 0.001
    momentum: float = 0.99
    use_nesterov: bool = True
    name: str = field(default="momentum", init=False)

    _checks: ClassVar[dict[str, Check]] = {"momentum": NON_NEGATIVE, "use_nesterov": check_bool}


class MomentumRule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        return (Slot("accum"),)

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Momentum)
        momentum = scalar(b, optimizer.momentum, "momentum")
        return {"lr": lr, "momentum": momentum, "lr_momentum": b.node("Mul", [momentum, lr])}

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, Momentum)
        accum = b.node("Add", [b.node("Mul", [state["accum"], s["momentum"]]), g], hint="accum")
        if optimizer.use_nesterov:
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
    momentum = f32(optimizer.momentum)
    nesterov = f32(1.0 if optimizer.use_nesterov else 0.0)
    return FusedKernel(momentum_kernel, ("accum",), lambda t, lr: [lr, momentum, momentum * lr, nesterov])
