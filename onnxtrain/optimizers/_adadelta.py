"""AdaDelta: its settings, its update as ONNX (`AdaDeltaRule`) and as one fused loop (`fused_adadelta`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._base import (
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


@keras_arguments()
@dataclass
class AdaDelta(Optimizer):
    """AdaDelta (TensorFlow's ApplyAdadelta). KotlinDL's defaults: 0.1, rho 0.95, epsilon 1e-8.

    accum = rho * accum + (1 - rho) * g^2; u = sqrt(accum_update + eps) / sqrt(accum + eps) * g;
    accum_update = rho * accum_update + (1 - rho) * u^2; w -= lr * u.
    """

    learning_rate: LearningRate = 0.1
    rho: float = 0.95
    epsilon: float = 1e-8
    name: str = field(default="adadelta", init=False)

    _checks: ClassVar[dict[str, Check]] = {"rho": Interval(0.0, 1.0), "epsilon": POSITIVE}


@keras_arguments()
@dataclass
class Adadelta(AdaDelta):
    """Keras 3's Adadelta, under its Keras name: Keras' defaults (0.001, rho 0.95, epsilon 1e-7), where KotlinDL's
    `AdaDelta` has 0.1, 0.95 and 1e-8. The same update."""

    learning_rate: LearningRate = 0.001
    epsilon: float = 1e-7


class AdaDeltaRule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        return (Slot("accum"), Slot("accum_update"))

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, AdaDelta)
        return {
            "lr": lr,
            "rho": scalar(b, optimizer.rho, "rho"),
            "one_minus_rho": one_minus(b, optimizer.rho, "one_minus_rho"),
            "eps": scalar(b, optimizer.epsilon, "eps"),
        }

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        accum = b.node(
            "Add",
            [
                b.node("Mul", [state["accum"], s["rho"]]),
                b.node("Mul", [b.node("Mul", [g, g]), s["one_minus_rho"]]),
            ],
            hint="accum",
        )
        ratio = b.node(
            "Div",
            [
                b.node("Sqrt", [b.node("Add", [state["accum_update"], s["eps"]])]),
                b.node("Sqrt", [b.node("Add", [accum, s["eps"]])]),
            ],
        )
        step = b.node("Mul", [ratio, g])
        accum_update = b.node(
            "Add",
            [
                b.node("Mul", [state["accum_update"], s["rho"]]),
                b.node("Mul", [b.node("Mul", [step, step]), s["one_minus_rho"]]),
            ],
            hint="accum_update",
        )
        new_w = b.node("Sub", [w, b.node("Mul", [step, s["lr"]])], hint="new")
        return new_w, {"accum": accum, "accum_update": accum_update}


def adadelta_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdaDeltaRule; a = accum, b = accum_update. k: lr, rho, 1 - rho, eps, tiny."""
    lr, rho, one_minus_rho, eps, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        ai = a[i] * rho + (gi * gi) * one_minus_rho
        step = (np.sqrt(b[i] + eps) / np.sqrt(ai + eps)) * gi
        ui = b[i] * rho + (step * step) * one_minus_rho
        wi = w[i] - step * lr
        a[i] = ai if ai >= tiny else np.float32(0.0)
        b[i] = ui if ui >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_adadelta(optimizer: AdaDelta) -> FusedKernel:
    rho, one_minus_rho, eps = f32(optimizer.rho), f32(1.0 - optimizer.rho), f32(optimizer.epsilon)
    return FusedKernel(adadelta_kernel, ("accum", "accum_update"), lambda t, lr: [lr, rho, one_minus_rho, eps])
