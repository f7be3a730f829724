"""SGD: its settings, its update as ONNX (`SGDRule`) and as one fused loop (`fused_sgd`); with momentum, Momentum's
(onnxtrain/optimizers/_momentum.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.optimizers._base import (
    Check,
    FusedKernel,
    Interval,
    LearningRate,
    Names,
    Optimizer,
    Slot,
    Update,
    UpdateRule,
)
from onnxtrain.optimizers._keras_arguments import keras_arguments
from onnxtrain.optimizers._momentum import momentum_fused_kernel, momentum_scalars, momentum_update

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@keras_arguments()
@dataclass
class SGD(Optimizer):
    """Plain stochastic gradient descent: w -= learning_rate * g. KotlinDL's default learning rate is 0.2.

    `momentum` > 0 (Keras' spelling, keyword-only) runs Momentum's update, TensorFlow's ApplyMomentum, with
    `nesterov` as Momentum's `use_nesterov`; the state slot is Momentum's `accum`. Keras' SGD writes the same
    update as v = momentum * v - lr * g: the two agree while the learning rate stays the same (see Momentum).
    """

    learning_rate: LearningRate = 0.2
    # Keyword-only: KotlinDL's SGD(learningRate, clipGradient) must not make a second positional value a momentum.
    momentum: float = field(default=0.0, kw_only=True)
    nesterov: bool = field(default=False, kw_only=True)
    name: str = field(default="sgd", init=False)

    # Keras' range: a momentum above 1 makes the velocity grow without bound.
    _checks: ClassVar[dict[str, Check]] = {"momentum": Interval(0.0, 1.0), "nesterov": check_bool}


class SGDRule(UpdateRule):
    """TensorFlow's ApplyGradientDescent; with momentum > 0, ApplyMomentum (MomentumRule's update)."""

    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, SGD)
        return (Slot("accum"),) if optimizer.momentum > 0 else ()

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, SGD)
        return momentum_scalars(b, optimizer.momentum, lr) if optimizer.momentum > 0 else {"lr": lr}

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, SGD)
        if optimizer.momentum > 0:
            return momentum_update(b, optimizer.nesterov, w, g, state, s)
        return b.node("Sub", [w, b.node("Mul", [g, s["lr"]])], hint="new"), {}


def sgd_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """SGDRule without momentum. k: lr, tiny."""
    lr, tiny = k[0], k[1]
    for i in range(w.size):
        wi = w[i] - g[i] * lr
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_sgd(optimizer: SGD) -> FusedKernel:
    if optimizer.momentum > 0:
        return momentum_fused_kernel(optimizer.momentum, optimizer.nesterov)
    return FusedKernel(sgd_kernel, (), lambda t, lr: [lr])
