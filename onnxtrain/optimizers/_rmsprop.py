"""RMSProp: its settings, its update as ONNX (`RMSPropRule`) and as one fused loop (`fused_rmsprop`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.optimizers._base import (
    NON_NEGATIVE,
    POSITIVE,
    Check,
    FusedKernel,
    Interval,
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


@keras_arguments(rho="decay")
@dataclass
class RMSProp(Optimizer):
    """RMSProp (TensorFlow's ApplyRmsProp / ApplyCenteredRmsProp). KotlinDL's defaults: 0.001, decay 0.9,
    momentum 0, epsilon 1e-10, not centered; the mean-square slot starts at `initial_mean_square`, 1.0 as in
    KotlinDL (and TensorFlow 1's RMSPropOptimizer). Keras 3's RMSprop starts it at 0: pass initial_mean_square=0
    (with Keras' epsilon=1e-7) for its numbers.

    ms = decay * ms + (1 - decay) * g^2 (centered: also mg = decay * mg + (1 - decay) * g, and ms - mg^2 is used
    in place of ms below); mom = momentum * mom + lr * g / sqrt(ms + epsilon); w -= mom.
    """

    learning_rate: LearningRate = 0.001
    decay: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-10
    centered: bool = False
    initial_mean_square: float = field(default=1.0, kw_only=True)
    name: str = field(default="rmsprop", init=False)

    _checks: ClassVar[dict[str, Check]] = {
        "decay": Interval(0.0, 1.0),
        "momentum": NON_NEGATIVE,
        "epsilon": POSITIVE,
        "centered": check_bool,
        "initial_mean_square": NON_NEGATIVE,
    }


@keras_arguments(rho="decay")
@dataclass
class RMSprop(RMSProp):
    """Keras 3's RMSprop, under its Keras name: Keras' defaults (0.001, rho 0.9, momentum 0, epsilon 1e-7, not
    centered) and its mean square starting at 0, where KotlinDL's `RMSProp` starts it at 1.0 with epsilon 1e-10.
    The same update otherwise (docs/portable.md, "Keras' optimizers")."""

    epsilon: float = 1e-7
    initial_mean_square: float = field(default=0.0, kw_only=True)


class RMSPropRule(UpdateRule):
    """The momentum slot exists only when momentum > 0: with 0, mom is lr * g / sqrt(ms + eps) each step."""

    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, RMSProp)
        slots = [Slot("ms", optimizer.initial_mean_square)]
        if optimizer.momentum > 0:
            slots.append(Slot("mom"))
        if optimizer.centered:
            slots.append(Slot("mg"))
        return tuple(slots)

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, RMSProp)
        return {
            "lr": lr,
            "one_minus_rho": one_minus(b, optimizer.decay, "one_minus_rho"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
            "momentum": scalar(b, optimizer.momentum, "momentum"),
        }

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, RMSProp)
        new: Names = {}
        ms = state["ms"]
        new["ms"] = ms = b.node(
            "Add",
            [ms, b.node("Mul", [b.node("Sub", [b.node("Mul", [g, g]), ms]), s["one_minus_rho"]])],
            hint="ms",
        )
        denom = ms
        if optimizer.centered:
            mg = state["mg"]
            new["mg"] = mg = b.node("Add", [mg, b.node("Mul", [b.node("Sub", [g, mg]), s["one_minus_rho"]])], hint="mg")
            denom = b.node("Sub", [ms, b.node("Mul", [mg, mg])])
        step = b.node("Div", [b.node("Mul", [g, s["lr"]]), b.node("Sqrt", [b.node("Add", [denom, s["eps"]])])])
        if optimizer.momentum > 0:
            new["mom"] = step = b.node("Add", [b.node("Mul", [state["mom"], s["momentum"]]), step], hint="mom")
        return b.node("Sub", [w, step], hint="new"), new


def rmsprop_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """RMSPropRule; a = ms, b = mom (empty without momentum), c = mg (empty unless centered).
    k: lr, 1 - rho, eps, momentum, tiny."""
    lr, one_minus_rho, eps, momentum, tiny = k[0], k[1], k[2], k[3], k[4]
    with_momentum, centered = b.size > 0, c.size > 0
    for i in range(w.size):
        gi = g[i]
        ms = a[i] + (gi * gi - a[i]) * one_minus_rho
        denom = ms
        if centered:
            mg = c[i] + (gi - c[i]) * one_minus_rho
            denom = ms - mg * mg
            c[i] = mg if abs(mg) >= tiny else np.float32(0.0)
        step = (gi * lr) / np.sqrt(denom + eps)
        if with_momentum:
            step = b[i] * momentum + step
            b[i] = step if abs(step) >= tiny else np.float32(0.0)
        wi = w[i] - step
        a[i] = ms if ms >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_rmsprop(optimizer: RMSProp) -> FusedKernel:
    # RMSPropRule.slots: ms, then mom only with momentum, then mg only when centered.
    slots = ("ms", *(("mom",) if optimizer.momentum > 0 else ()), *(("mg",) if optimizer.centered else ()))
    one_minus_rho, eps, momentum = f32(1.0 - optimizer.decay), f32(optimizer.epsilon), f32(optimizer.momentum)
    return FusedKernel(rmsprop_kernel, slots, lambda t, lr: [lr, one_minus_rho, eps, momentum], ("ms", "mom", "mg"))
