"""AdaGradDA: its settings, its update as ONNX (`AdaGradDARule`) and as one fused loop (`fused_adagrad_da`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._base import (
    NON_NEGATIVE,
    POSITIVE,
    Check,
    FusedKernel,
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
class AdaGradDA(Optimizer):
    """AdaGrad dual averaging (TensorFlow's ApplyAdagradDA). KotlinDL's defaults: 0.1, initial accumulator 0.01,
    l1 0.01, l2 0.01.

    acc += g; sq += g^2; w = -lr * sign(acc) * max(|acc| - l1 * t, 0) / (l2 * t * lr + sqrt(sq)) (without the
    max when l1 = 0). `t` is the update count; KotlinDL feeds a step variable it increments only once, at
    initialization (so t = 1 forever there); here t grows as the algorithm intends, and agrees on step one.
    """

    learning_rate: LearningRate = 0.1
    initial_accumulator_value: float = 0.01
    l1_strength: float = 0.01
    l2_strength: float = 0.01
    name: str = field(default="adagradda", init=False)

    _checks: ClassVar[dict[str, Check]] = {
        "initial_accumulator_value": POSITIVE,
        "l1_strength": NON_NEGATIVE,
        "l2_strength": NON_NEGATIVE,
        "learning_rate": positive_learning_rate(
            "sets each weight to -learning_rate times a ratio of its accumulated gradients: 0 would set every "
            "weight to 0"
        ),
    }


class AdaGradDARule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, AdaGradDA)
        return (Slot("grad_accum"), Slot("grad_squared_accum", optimizer.initial_accumulator_value))

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, AdaGradDA)
        # denominator offset l2 * t * lr, and the l1 threshold l1 * t
        l2_t_lr = b.node("Mul", [b.node("Mul", [scalar(b, optimizer.l2_strength, "l2"), t]), lr], hint="l2_t_lr")
        l1_t = b.node("Mul", [scalar(b, optimizer.l1_strength, "l1"), t], hint="l1_t")
        return {"lr": lr, "minus_lr": b.node("Neg", [lr]), "l2_t_lr": l2_t_lr, "l1_t": l1_t}

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, AdaGradDA)
        acc = b.node("Add", [state["grad_accum"], g], hint="grad_accum")
        sq = b.node("Add", [state["grad_squared_accum"], b.node("Mul", [g, g])], hint="grad_squared_accum")
        denom = b.node("Add", [s["l2_t_lr"], b.node("Sqrt", [sq])])
        if optimizer.l1_strength > 0:
            shrunk = b.node("Max", [b.node("Sub", [b.node("Abs", [acc]), s["l1_t"]]), scalar(b, 0.0, "zero")])
            numerator = b.node("Mul", [b.node("Mul", [s["minus_lr"], b.node("Sign", [acc])]), shrunk])
        else:
            numerator = b.node("Mul", [s["minus_lr"], acc])
        return b.node("Div", [numerator, denom], hint="new"), {"grad_accum": acc, "grad_squared_accum": sq}


def adagrad_da_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdaGradDARule; a = grad_accum, b = grad_squared_accum. k: -lr, l2 * t * lr, l1 * t, l1 > 0 (1 or 0), tiny."""
    minus_lr, l2_t_lr, l1_t, with_l1, tiny = k[0], k[1], k[2], k[3], k[4]
    zero = np.float32(0.0)
    for i in range(w.size):
        gi = g[i]
        acc = a[i] + gi
        sq = b[i] + gi * gi
        denom = l2_t_lr + np.sqrt(sq)
        if with_l1 != 0:
            numerator = (minus_lr * np.sign(acc)) * max(abs(acc) - l1_t, zero)
        else:
            numerator = minus_lr * acc
        wi = numerator / denom
        a[i] = acc if abs(acc) >= tiny else zero
        b[i] = sq if sq >= tiny else zero
        w[i] = wi if abs(wi) >= tiny else zero


def fused_adagrad_da(optimizer: AdaGradDA) -> FusedKernel:
    l1, l2 = f32(optimizer.l1_strength), f32(optimizer.l2_strength)
    with_l1 = f32(1.0 if optimizer.l1_strength > 0 else 0.0)

    def scalars(t: int, lr: np.float32) -> list[np.float32]:  # AdaGradDARule.prepare
        tf = f32(t)
        return [-lr, (l2 * tf) * lr, l1 * tf, with_l1]

    return FusedKernel(adagrad_da_kernel, ("grad_accum", "grad_squared_accum"), scalars)
