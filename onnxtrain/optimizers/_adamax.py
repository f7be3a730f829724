"""Adamax: its settings, its update as ONNX (`AdamaxRule`) and as one fused loop (`fused_adamax`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._base import (
    POSITIVE,
    UNIT_OPEN,
    Check,
    FusedKernel,
    LearningRate,
    Names,
    Optimizer,
    Slot,
    Update,
    UpdateRule,
    f32,
    one_minus,
    scalar,
)
from onnxtrain.optimizers._keras_arguments import keras_arguments

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@keras_arguments(beta_1="beta1", beta_2="beta2")
@dataclass
class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm (TensorFlow's ApplyAdaMax). KotlinDL's defaults: 1e-3, beta1 0.9,
    beta2 0.999, epsilon 1e-7.

    m = b1 * m + (1 - b1) * g; u = max(b2 * u, |g|); w -= lr / (1 - b1^t) * m / (u + eps).
    """

    learning_rate: LearningRate = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    name: str = field(default="adamax", init=False)

    _checks: ClassVar[dict[str, Check]] = {"beta1": UNIT_OPEN, "beta2": UNIT_OPEN, "epsilon": POSITIVE}


class AdamaxRule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        return (Slot("m"), Slot("v"))

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Adamax)
        beta1_power = b.node("Pow", [scalar(b, optimizer.beta1, "beta1"), t], hint="beta1_power")
        alpha = b.node("Div", [lr, b.node("Sub", [scalar(b, 1.0, "one"), beta1_power])], hint="alpha")
        return {
            "alpha": alpha,
            "one_minus_beta1": one_minus(b, optimizer.beta1, "one_minus_beta1"),
            "beta2": scalar(b, optimizer.beta2, "beta2"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
        }

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        m = state["m"]
        m = b.node("Add", [m, b.node("Mul", [b.node("Sub", [g, m]), s["one_minus_beta1"]])], hint="m")
        v = b.node("Max", [b.node("Mul", [state["v"], s["beta2"]]), b.node("Abs", [g])], hint="v")
        step = b.node("Mul", [s["alpha"], b.node("Div", [m, b.node("Add", [v, s["eps"]])])])
        return b.node("Sub", [w, step], hint="new"), {"m": m, "v": v}


def adamax_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdamaxRule; a = m, b = v. k: alpha, 1 - beta1, beta2, eps, tiny."""
    alpha, one_minus_beta1, beta2, eps, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        mi = a[i] + (gi - a[i]) * one_minus_beta1
        vi = max(b[i] * beta2, abs(gi))
        wi = w[i] - alpha * (mi / (vi + eps))
        a[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        b[i] = vi if vi >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_adamax(optimizer: Adamax) -> FusedKernel:
    beta1, one = f32(optimizer.beta1), f32(1.0)
    one_minus_beta1, beta2, eps = f32(1.0 - optimizer.beta1), f32(optimizer.beta2), f32(optimizer.epsilon)

    def scalars(t: int, lr: np.float32) -> list[np.float32]:  # AdamaxRule.prepare
        return [lr / (one - np.power(beta1, f32(t))), one_minus_beta1, beta2, eps]

    return FusedKernel(adamax_kernel, ("m", "v"), scalars)
