"""FTRL: its settings, its update as ONNX (`FtrlRule`) and as one fused loop (`fused_ftrl`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._base import (
    NON_NEGATIVE,
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
    positive_learning_rate,
    scalar,
)
from onnxtrain.optimizers._keras_arguments import keras_arguments

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@keras_arguments()
@dataclass
class Ftrl(Optimizer):
    """FTRL-proximal (TensorFlow's ApplyFtrlV2 CPU kernel). KotlinDL's defaults: 1e-3, l1 0, l2 0, learning
    rate power -0.5, l2 shrinkage 0, initial accumulator 0.

    gs = g + 2 * l2_shrinkage * w; n' = n + gs^2; z += gs - (n'^(-p) - n^(-p)) / lr * w;
    w = (sign(z) * l1 - z) / (n'^(-p) / lr + 2 * l2) where |z| > l1, else 0.
    """

    learning_rate: LearningRate = 1e-3
    l1_regularization_strength: float = 0.0
    l2_regularization_strength: float = 0.0
    learning_rate_power: float = -0.5
    l2_shrinkage_regularization_strength: float = 0.0
    initial_accumulator_value: float = 0.0
    name: str = field(default="ftrl", init=False)

    _checks: ClassVar[dict[str, Check]] = {
        "l1_regularization_strength": NON_NEGATIVE,
        "l2_regularization_strength": NON_NEGATIVE,
        "learning_rate_power": Interval(high=0.0),
        "l2_shrinkage_regularization_strength": NON_NEGATIVE,
        "initial_accumulator_value": NON_NEGATIVE,
        "learning_rate": positive_learning_rate(
            "divides by the learning rate: 0 would make every weight NaN, as it does in Keras"
        ),
    }


class FtrlRule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, Ftrl)
        return (Slot("accum", optimizer.initial_accumulator_value), Slot("linear"))

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Ftrl)
        return {
            "lr": lr,
            "l1": scalar(b, optimizer.l1_regularization_strength, "l1"),
            "two_l2": scalar(b, 2.0 * optimizer.l2_regularization_strength, "two_l2"),
            "power": scalar(b, -optimizer.learning_rate_power, "power"),
        }

    def _power(self, b: GraphBuilder, optimizer: Ftrl, x: str, s: Names) -> str:
        if optimizer.learning_rate_power == -0.5:
            return b.node("Sqrt", [x])
        return b.node("Pow", [x, s["power"]])

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, Ftrl)
        accum, linear = state["accum"], state["linear"]
        if optimizer.l2_shrinkage_regularization_strength > 0:
            shrink = scalar(b, 2.0 * optimizer.l2_shrinkage_regularization_strength, "two_l2_shrinkage")
            g = b.node("Add", [g, b.node("Mul", [w, shrink])], hint="grad_with_shrinkage")
        new_accum = b.node("Add", [accum, b.node("Mul", [g, g])], hint="accum")
        new_power = self._power(b, optimizer, new_accum, s)
        sigma = b.node("Div", [b.node("Sub", [new_power, self._power(b, optimizer, accum, s)]), s["lr"]])
        linear = b.node("Add", [linear, b.node("Sub", [g, b.node("Mul", [sigma, w])])], hint="linear")
        x = b.node("Sub", [b.node("Mul", [s["l1"], b.node("Sign", [linear])]), linear])
        y = b.node("Add", [b.node("Div", [new_power, s["lr"]]), s["two_l2"]])
        keep = b.node("Greater", [b.node("Abs", [linear]), s["l1"]])
        new_w = b.node("Where", [keep, b.node("Div", [x, y]), scalar(b, 0.0, "zero")], hint="new")
        return new_w, {"accum": new_accum, "linear": linear}


def ftrl_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """FtrlRule; a = accum, b = linear. k: lr, l1, 2 * l2, -learning_rate_power, 2 * l2_shrinkage (0: none),
    the power is 1/2 (1 or 0: Sqrt instead of Pow, as the graph), tiny."""
    lr, l1, two_l2, power, shrink, square_root, tiny = k[0], k[1], k[2], k[3], k[4], k[5], k[6]
    zero = np.float32(0.0)
    for i in range(w.size):
        wi, gi = w[i], g[i]
        if shrink > 0:
            gi = gi + wi * shrink
        new_accum = a[i] + gi * gi
        if square_root != 0:
            new_power, old_power = np.sqrt(new_accum), np.sqrt(a[i])
        else:
            new_power, old_power = new_accum**power, a[i] ** power
        sigma = (new_power - old_power) / lr
        linear = b[i] + (gi - sigma * wi)
        x = l1 * np.sign(linear) - linear
        y = new_power / lr + two_l2
        wi = x / y if abs(linear) > l1 else zero
        a[i] = new_accum if new_accum >= tiny else zero
        b[i] = linear if abs(linear) >= tiny else zero
        w[i] = wi if abs(wi) >= tiny else zero


def fused_ftrl(optimizer: Ftrl) -> FusedKernel:
    l1, two_l2 = f32(optimizer.l1_regularization_strength), f32(2.0 * optimizer.l2_regularization_strength)
    power = f32(-optimizer.learning_rate_power)
    shrink = f32(2.0 * optimizer.l2_shrinkage_regularization_strength)
    square_root = f32(1.0 if optimizer.learning_rate_power == -0.5 else 0.0)
    return FusedKernel(ftrl_kernel, ("accum", "linear"), lambda t, lr: [lr, l1, two_l2, power, shrink, square_root])
