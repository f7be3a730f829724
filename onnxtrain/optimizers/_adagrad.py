"""AdaGrad: its settings, its update as ONNX (`AdaGradRule`) and as one fused loop (`fused_adagrad`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain.optimizers._base import (
    POSITIVE,
    Check,
    FusedKernel,
    LearningRate,
    Names,
    Optimizer,
    Slot,
    Update,
    UpdateRule,
)
from onnxtrain.optimizers._keras_arguments import keras_arguments

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@keras_arguments()
@dataclass
class AdaGrad(Optimizer):
    """AdaGrad (TensorFlow's ApplyAdagrad). KotlinDL's defaults: 0.1, initial accumulator 0.01.

    accum += g^2; w -= lr * g / sqrt(accum). The accumulator must start positive (0 divides by zero).
    """

    learning_rate: LearningRate = 0.1
    initial_accumulator_value: float = 0.01
    name: str = field(default="adagrad", init=False)

    _checks: ClassVar[dict[str, Check]] = {"initial_accumulator_value": POSITIVE}


@keras_arguments()
@dataclass
class Adagrad(AdaGrad):
    """Keras 3's Adagrad, under its Keras name: Keras' defaults (0.001, initial accumulator 0.1), where KotlinDL's
    `AdaGrad` has 0.1 and 0.01. Keras also adds an epsilon of 1e-7 inside the square root, which this update has
    not: a relative difference below 1e-6 with the accumulator at 0.1 or more."""

    learning_rate: LearningRate = 0.001
    initial_accumulator_value: float = 0.1


class AdaGradRule(UpdateRule):
    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, AdaGrad)
        return (Slot("accum", optimizer.initial_accumulator_value),)

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        accum = b.node("Add", [state["accum"], b.node("Mul", [g, g])], hint="accum")
        step = b.node("Div", [b.node("Mul", [g, s["lr"]]), b.node("Sqrt", [accum])])
        return b.node("Sub", [w, step], hint="new"), {"accum": accum}


def adagrad_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdaGradRule; a = accum. k: lr, tiny."""
    lr, tiny = k[0], k[1]
    for i in range(w.size):
        gi = g[i]
        ai = a[i] + gi * gi
        wi = w[i] - (gi * lr) / np.sqrt(ai)
        a[i] = ai if ai >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_adagrad(optimizer: AdaGrad) -> FusedKernel:
    return FusedKernel(adagrad_kernel, ("accum",), lambda t, lr: [lr])
