"""SGD: its settings, its update as ONNX (`SGDRule`) and as one fused loop (`fused_sgd`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from onnxtrain.optimizers._base import FusedKernel, Names, Optimizer, Update, UpdateRule

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


@dataclass
class SGD(Optimizer):
    """Plain stochastic gradient descent: w -= learning_rate * g. KotlinDL's default learning rate is 0.2."""

    learning_rate: float = 0.2
    name: str = field(default="sgd", init=False)


class SGDRule(UpdateRule):
    """TensorFlow's ApplyGradientDescent."""

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        return b.node("Sub", [w, b.node("Mul", [g, s["lr"]])], hint="new"), {}


def sgd_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """SGDRule. k: lr, tiny."""
    lr, tiny = k[0], k[1]
    for i in range(w.size):
        wi = w[i] - g[i] * lr
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_sgd(optimizer: SGD) -> FusedKernel:
    return FusedKernel(sgd_kernel, (), lambda t, lr: [lr])
