"""Adam and AdamW: their settings, their update as ONNX (`AdamRule`) and as one fused loop (`fused_adam`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.optimizers._base import (
    NON_NEGATIVE,
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
    scalar,
)
from onnxtrain.optimizers._keras_arguments import keras_arguments

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder


def weight_decay_check(owner: str, arg: str, value: object) -> float:
    """A finite number >= 0; Keras' None (no decay) is 0."""
    return 0.0 if value is None else float(NON_NEGATIVE(owner, arg, value))  # type: ignore[arg-type]


_ADAM_CHECKS: dict[str, Check] = {
    "beta1": UNIT_OPEN,
    "beta2": UNIT_OPEN,
    "epsilon": POSITIVE,
    "amsgrad": check_bool,
    "weight_decay": weight_decay_check,
}


@keras_arguments(beta_1="beta1", beta_2="beta2")
@dataclass
class Adam(Optimizer):
    """Adam with bias correction (TensorFlow's ApplyAdam, and Keras 3's Adam). KotlinDL's defaults: 1e-3,
    beta1 0.9, beta2 0.999, epsilon 1e-7 (Keras' too).

    m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g^2;
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    (epsilon outside the bias correction, as TensorFlow, Keras and ONNX Runtime's AdamW in Hugging Face mode).

    Keyword-only, as Keras has them: `amsgrad` keeps vhat = max(vhat, v) and divides by sqrt(vhat) + eps;
    `weight_decay` > 0 first decays every trainable parameter, w -= w * lr * weight_decay, decoupled from the
    gradient (Keras' `weight_decay`, which makes Adam AdamW).
    """

    learning_rate: LearningRate = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    # Keyword-only: KotlinDL's fifth argument is its gradient clipping, which must not become a flag.
    amsgrad: bool = field(default=False, kw_only=True)
    weight_decay: float = field(default=0.0, kw_only=True)
    name: str = field(default="adam", init=False)

    _checks: ClassVar[dict[str, Check]] = _ADAM_CHECKS


@keras_arguments(beta_1="beta1", beta_2="beta2")
@dataclass
class AdamW(Optimizer):
    """Adam with decoupled weight decay, as Keras 3's AdamW (and its defaults: 1e-3, weight_decay 0.004,
    beta1 0.9, beta2 0.999, epsilon 1e-7, amsgrad off). Positional arguments follow Keras' AdamW: the learning
    rate, then the weight decay.

    Each step, first w -= w * lr * weight_decay (every trainable parameter, biases too, as Keras by default);
    then Adam's update on the decayed weights, epsilon outside the bias correction:
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps). PyTorch's AdamW adds epsilon to
    sqrt(v / (1 - b2^t)) instead (a larger effective epsilon in the first steps). ONNX Runtime's AdamW kernel
    decays after the update, so the ort-training engine runs AdamW only with weight_decay=0.
    """

    learning_rate: LearningRate = 1e-3
    weight_decay: float = 0.004
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    amsgrad: bool = field(default=False, kw_only=True)
    name: str = field(default="adamw", init=False)

    _checks: ClassVar[dict[str, Check]] = _ADAM_CHECKS


class AdamRule(UpdateRule):
    """TensorFlow's ApplyAdam with the moments carried rescaled: m / (1 - beta1) and v / (1 - beta2) (and vhat,
    with amsgrad, as v); with weight decay, the decay comes first. For Adam and AdamW.

    Then m' = beta1 m + g and v' = beta2 v + g^2 need no multiplication of g, and the constants move into the
    step's scalars: 10 passes over each parameter per step instead of 12, about a twentieth of the tutorial's
    train step. The weights agree with the unscaled formula to float32 rounding (tests/test_portable_optimizers.py).
    """

    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        assert isinstance(optimizer, Adam | AdamW)
        v_scale = 1.0 / (1.0 - optimizer.beta2)
        slots = [Slot("m", scale=1.0 / (1.0 - optimizer.beta1)), Slot("v", scale=v_scale)]
        if optimizer.amsgrad:
            slots.append(Slot("vhat", scale=v_scale))
        return tuple(slots)

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        assert isinstance(optimizer, Adam | AdamW)
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
        scalars = {
            "alpha": alpha,
            "beta1": beta1,
            "beta2": beta2,
            "eps": scalar(b, optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2), "eps"),
        }
        if optimizer.weight_decay > 0:
            scalars["decay"] = b.node("Mul", [lr, scalar(b, optimizer.weight_decay, "weight_decay")], hint="decay")
        return scalars

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        assert isinstance(optimizer, Adam | AdamW)
        if "decay" in s:
            w = b.node("Sub", [w, b.node("Mul", [w, s["decay"]])], hint="decayed")
        m = b.node("Add", [b.node("Mul", [state["m"], s["beta1"]]), g], hint="m")
        v = b.node("Add", [b.node("Mul", [state["v"], s["beta2"]]), b.node("Mul", [g, g])], hint="v")
        new = {"m": m, "v": v}
        if optimizer.amsgrad:
            new["vhat"] = v = b.node("Max", [state["vhat"], v], hint="vhat")
        step = b.node("Div", [b.node("Mul", [m, s["alpha"]]), b.node("Add", [b.node("Sqrt", [v]), s["eps"]])])
        return b.node("Sub", [w, step], hint="new"), new


def adam_kernel(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdamRule, moments carried rescaled (m / (1 - beta1) and v / (1 - beta2)); a = m, b = v, c = vhat (empty
    without amsgrad). k: beta1, beta2, alpha, eps (rescaled), decay (lr * weight_decay; 0: none), tiny."""
    beta1, beta2, alpha, eps, decay, tiny = k[0], k[1], k[2], k[3], k[4], k[5]
    amsgrad, decayed = c.size > 0, decay != 0
    for i in range(w.size):
        gi = g[i]
        wi = w[i]
        if decayed:
            wi = wi - wi * decay
        mi = a[i] * beta1 + gi
        vi = b[i] * beta2 + gi * gi
        b[i] = vi if vi >= tiny else np.float32(0.0)
        if amsgrad:
            vi = max(c[i], vi)
            c[i] = vi if vi >= tiny else np.float32(0.0)
        wi = wi - (mi * alpha) / (np.sqrt(vi) + eps)
        a[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def fused_adam(optimizer: Adam | AdamW) -> FusedKernel:
    beta1, beta2, one = f32(optimizer.beta1), f32(optimizer.beta2), f32(1.0)
    # AdamRule.prepare's scalars, with its float32 operations in its order.
    rescale = f32((1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2))
    eps = f32(optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2))
    weight_decay = f32(optimizer.weight_decay)

    def scalars(t: int, lr: np.float32) -> list[np.float32]:
        tf = f32(t)
        alpha = (lr * rescale) * np.sqrt(one - np.power(beta2, tf)) / (one - np.power(beta1, tf))
        return [beta1, beta2, alpha, eps, lr * weight_decay]

    slots = ("m", "v", "vhat") if optimizer.amsgrad else ("m", "v")
    return FusedKernel(adam_kernel, slots, scalars, ("m", "v", "vhat"))
