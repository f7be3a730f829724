"""Adam: its settings, its update as ONNX (`AdamRule`) and as one fused loop (`fused_adam`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._base import (
    POSITIVE,
    UNIT_OPEN,
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
class Adam(Optimizer):
    """Adam with bias correction (TensorFlow's ApplyAdam). KotlinDL's defaults: 1e-3, beta1 0.9, beta2 0.999,
    epsilon 1e-7.

    m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g^2;
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    (epsilon outside the bias correction, as TensorFlow and ONNX Runtime's AdamW in Hugging Face mode).
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    name: str = field(default="adam", init=False)

    _checks: ClassVar[dict[str, Check]] = {"beta1": UNIT_OPEN, "beta2": UNIT_OPEN, "epsilon": POSITIVE}


class AdamRule(UpdateRule):
    """TensorFlow's ApplyAdam with the moments carried rescaled: m / (1 - beta1) and v / (1 - beta2).

    Then m' = beta1 m + g and v' = beta2 v + g^2 need no multiplication of g, and the constants move into the
    step's scalars: 10 passes over each parameter per step instead of 12, about a twentieth of the tutorial's
    train step. The weights agree with the unscaled formula to float32 rounding (tests/test_portable_optimizers.py).
    """

    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, Adam)
        return (Slot("m", scale=1.0 / (1.0 - optimizer.beta1)), Slot("v", scale=1.0 / (1.0 - optimizer.beta2)))

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Adam)
        one = scalar(b, 1.0, "one")
        beta1, beta2 = scalar(b, optimizer.beta1, "beta1"), scalar(b, optimizer.beta2, "beta2")
        beta1_power = b.node("Pow", [beta1, t], hint="beta1_power")
        beta2_power = b.node("Pow", [beta2, t], hint="beta2_power")
        # alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t), times (1 - beta1) / sqrt(1 - beta2) for the rescaled moments
        rescale = scalar(b, (1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2), "moment_rescale")
        alpha = b.node(
            "Div",
            [
                b.node("Mul", [b.node("Mul", [lr, rescale]), b.node("Sqrt", [b.node("Sub", [one, beta2_power])])]),
                b.node("Sub", [one, beta1_power]),
            ],
            hint="alpha",
        )
        return {
            "alpha": alpha,
            "beta1": beta1,
            "beta2": beta2,
            "eps": scalar(b, optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2), "eps"),
        }

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        m = b.node("Add", [b.node("Mul", [state["m"], s["beta1"]]), g], hint="m")
        v = b.node("Add", [b.node("Mul", [state["v"], s["beta2"]]), b.node("Mul", [g, g])], hint="v")
        step = b.node("Div", [b.node("Mul", [m, s["alpha"]]), b.node("Add", [b.node("Sqrt", [v]), s["eps"]])])
        return b.node("Sub", [w, step], hint="new"), {"m": m, "v": v}


def adam_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdamRule, moments carried rescaled (m / (1 - beta1) and v / (1 - beta2)); a = m, b = v.
    k: beta1, beta2, alpha, eps (rescaled), tiny."""
    beta1, beta2, alpha, eps, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        mi = a[i] * beta1 + gi
        vi = b[i] * beta2 + gi * gi
        wi = w[i] - (mi * alpha) / (np.sqrt(vi) + eps)
        a[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        b[i] = vi if vi >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_adam(optimizer: Adam) -> FusedKernel:
    beta1, beta2, one = f32(optimizer.beta1), f32(optimizer.beta2), f32(1.0)
    # AdamRule.prepare's scalars, with its float32 operations in its order.
    rescale = f32((1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2))
    eps = f32(optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2))

    def scalars(t: int, lr: np.float32) -> list[np.float32]:
        tf = f32(t)
        alpha = (lr * rescale) * np.sqrt(one - np.power(beta2, tf)) / (one - np.power(beta1, tf))
        return [beta1, beta2, alpha, eps]

    return FusedKernel(adam_kernel, ("m", "v"), scalars)
