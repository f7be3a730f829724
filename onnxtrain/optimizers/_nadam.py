"""Nadam: its settings, its update as ONNX (`NadamRule`) and as one fused loop (`fused_nadam`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._adam import weight_decay_check
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

DECAY = 0.96  # Keras' momentum schedule: u_t = beta1 * (1 - 0.5 * 0.96^t)
# 1 - 0.5 * 0.96^t is 1 in float32 from t = 408 on; the product of the schedule's factors stops changing there.
SCHEDULE_TERMS = 408


@keras_arguments(beta_1="beta1", beta_2="beta2")
@dataclass
class Nadam(Optimizer):
    """Adam with Nesterov momentum, as Keras 3's Nadam (and its defaults: 1e-3, beta1 0.9, beta2 0.999,
    epsilon 1e-7).

    With Keras' momentum schedule u_t = b1 * (1 - 0.5 * 0.96^t) and P_t = u_1 * ... * u_t:
    m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g^2;
    m_hat = u_(t+1) * m / (1 - P_(t+1)) + (1 - u_t) * g / (1 - P_t);  v_hat = v / (1 - b2^t);
    w -= lr * m_hat / (sqrt(v_hat) + eps).
    `weight_decay` > 0 first decays every trainable parameter, w -= w * lr * weight_decay, as Keras does.
    """

    learning_rate: LearningRate = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    weight_decay: float = field(default=0.0, kw_only=True)
    name: str = field(default="nadam", init=False)

    _checks: ClassVar[dict[str, Check]] = {
        "beta1": UNIT_OPEN,
        "beta2": UNIT_OPEN,
        "epsilon": POSITIVE,
        "weight_decay": weight_decay_check,
    }


class NadamRule(UpdateRule):
    """Keras 3's Nadam update. The schedule's product P_t = b1^t * prod(1 - 0.5 * 0.96^i, i = 1..t) is computed
    from t each step (its second factor over at most SCHEDULE_TERMS terms), so no scalar state is carried."""

    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        return (Slot("m"), Slot("v"))

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Nadam)
        one, half = scalar(b, 1.0, "one"), scalar(b, 0.5, "half")
        beta1, decay = scalar(b, optimizer.beta1, "beta1"), scalar(b, DECAY, "momentum_decay")

        def u(step: str) -> str:  # b1 * (1 - 0.5 * 0.96^step)
            return b.node("Mul", [beta1, b.node("Sub", [one, b.node("Mul", [half, b.node("Pow", [decay, step])])])])

        next_t = b.node("Add", [t, one], hint="next_step")
        last = b.node("Min", [t, scalar(b, SCHEDULE_TERMS, "schedule_terms")])
        steps = b.node("Range", [one, b.node("Add", [last, one]), one], hint="schedule_steps")
        factors = b.node("Sub", [one, b.node("Mul", [half, b.node("Pow", [decay, steps])])])
        product = b.node(
            "Mul",
            [b.node("Pow", [beta1, t]), b.reduce("ReduceProd", factors, None, False, "schedule_product")],
            hint="u_product",
        )
        u_t, u_next = u(t), u(next_t)
        product_next = b.node("Mul", [product, u_next], hint="u_product_next")
        beta2_power = b.node("Pow", [scalar(b, optimizer.beta2, "beta2"), t], hint="beta2_power")
        scalars = {
            "m_scale": b.node("Div", [u_next, b.node("Sub", [one, product_next])], hint="m_scale"),
            "g_scale": b.node("Div", [b.node("Sub", [one, u_t]), b.node("Sub", [one, product])], hint="g_scale"),
            "v_scale": b.node("Div", [one, b.node("Sub", [one, beta2_power])], hint="v_scale"),
            "one_minus_beta1": one_minus(b, optimizer.beta1, "one_minus_beta1"),
            "one_minus_beta2": one_minus(b, optimizer.beta2, "one_minus_beta2"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
            "lr": lr,
        }
        if optimizer.weight_decay > 0:
            scalars["decay"] = b.node("Mul", [lr, scalar(b, optimizer.weight_decay, "weight_decay")], hint="decay")
        return scalars

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        if "decay" in s:
            w = b.node("Sub", [w, b.node("Mul", [w, s["decay"]])], hint="decayed")
        m, v = state["m"], state["v"]
        m = b.node("Add", [m, b.node("Mul", [b.node("Sub", [g, m]), s["one_minus_beta1"]])], hint="m")
        v = b.node(
            "Add", [v, b.node("Mul", [b.node("Sub", [b.node("Mul", [g, g]), v]), s["one_minus_beta2"]])], hint="v"
        )
        m_hat = b.node("Add", [b.node("Mul", [m, s["m_scale"]]), b.node("Mul", [g, s["g_scale"]])], hint="m_hat")
        denominator = b.node("Add", [b.node("Sqrt", [b.node("Mul", [v, s["v_scale"]])]), s["eps"]])
        step = b.node("Div", [b.node("Mul", [m_hat, s["lr"]]), denominator])
        return b.node("Sub", [w, step], hint="new"), {"m": m, "v": v}


def nadam_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """NadamRule; a = m, b = v. k: m_scale, g_scale, v_scale, 1 - beta1, 1 - beta2, eps, lr, decay (lr *
    weight_decay; 0: none), tiny."""
    m_scale, g_scale, v_scale, one_minus_beta1, one_minus_beta2 = k[0], k[1], k[2], k[3], k[4]
    eps, lr, decay, tiny = k[5], k[6], k[7], k[8]
    decayed = decay != 0
    for i in range(w.size):
        gi = g[i]
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        mi = a[i] + (gi - a[i]) * one_minus_beta1
        vi = b[i] + (gi * gi - b[i]) * one_minus_beta2
        m_hat = mi * m_scale + gi * g_scale
        wi = wi - (m_hat * lr) / (np.sqrt(vi * v_scale) + eps)
        a[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        b[i] = vi if vi >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_nadam(optimizer: Nadam) -> FusedKernel:
    one, half, decay = f32(1.0), f32(0.5), f32(DECAY)
    beta1, beta2 = f32(optimizer.beta1), f32(optimizer.beta2)
    constants = [f32(1.0 - optimizer.beta1), f32(1.0 - optimizer.beta2), f32(optimizer.epsilon)]
    weight_decay = f32(optimizer.weight_decay)
    # The schedule's factors 1 - 0.5 * 0.96^i, i = 1..SCHEDULE_TERMS, and their running products, in float32.
    factors = one - half * np.power(decay, np.arange(1, SCHEDULE_TERMS + 1, dtype=np.float32))
    products = np.cumprod(factors, dtype=np.float32)

    def scalars(t: int, lr: np.float32) -> list[np.float32]:  # NadamRule.prepare
        tf = f32(t)
        product = np.power(beta1, tf) * products[min(t, SCHEDULE_TERMS) - 1]
        u_t = beta1 * (one - half * np.power(decay, tf))
        u_next = beta1 * (one - half * np.power(decay, tf + one))
        m_scale = u_next / (one - product * u_next)
        g_scale = (one - u_t) / (one - product)
        v_scale = one / (one - np.power(beta2, tf))
        return [m_scale, g_scale, v_scale, *constants, lr, lr * weight_decay]

    return FusedKernel(nadam_kernel, ("m", "v"), scalars)
