"""Optimizers: their hyper-parameters (KotlinDL's defaults), validation and registry.

The classes only hold settings; each training engine turns them into update graphs (`onnxtrain.portable` has all nine,
the ort-training engine Adam and SGD). The update rules are TensorFlow's `Apply*` kernels, which KotlinDL calls; each
class docstring gives its rule, with `t` the 1-based number of the update.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError


def _check_number(
    owner: str,
    arg: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise unless `value` is a finite real number in the interval from `low` to `high`."""
    ok = False
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        ok = True
        if low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
    if not ok:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        opening = "(" if low_open or low is None else "["
        closing = ")" if high_open or high is None else "]"
        interval = f"{opening}{left}, {right}{closing}"
        raise InvalidArgumentError(
            f"{owner}({arg}=...) expects a finite number in {interval}. Received: {arg}={value!r}"
        )


def _check_bool(owner: str, arg: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{owner}({arg}=...) expects a bool. Received: {arg}={value!r}")


@dataclass
class Optimizer:
    """Base class. `learning_rate` may be changed between steps (e.g. by a scheduler callback).

    Gradient clipping, applied before the update:
        clip_value: clamp each gradient element to [-clip_value, clip_value] (KotlinDL's ClipGradientByValue).
        clip_norm: rescale all gradients together so their global L2 norm is at most clip_norm
            (`g *= clip_norm / (norm + 1e-6)` when that factor is below 1, as ONNX Runtime and PyTorch do).
        With both, values are clamped first.
    """

    learning_rate: float
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="", init=False)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check_number(owner, "learning_rate", self.learning_rate, low=0.0, low_open=True)
        if self.clip_norm is not None:
            _check_number(owner, "clip_norm", self.clip_norm, low=0.0, low_open=True)
        if self.clip_value is not None:
            _check_number(owner, "clip_value", self.clip_value, low=0.0, low_open=True)

    def get_config(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SGD(Optimizer):
    """Plain stochastic gradient descent: w -= learning_rate * g. KotlinDL's default learning rate is 0.2."""

    learning_rate: float = 0.2
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="sgd", init=False)


@dataclass
class Momentum(Optimizer):
    """SGD with momentum (TensorFlow's ApplyMomentum). KotlinDL's defaults: 0.001, momentum 0.99, Nesterov on.

    a = momentum * a + g; w -= lr * a, or with Nesterov w -= lr * g + lr * momentum * a.
    """

    learning_rate: float = 0.001
    momentum: float = 0.99
    use_nesterov: bool = True
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="momentum", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("Momentum", "momentum", self.momentum, low=0.0)
        _check_bool("Momentum", "use_nesterov", self.use_nesterov)


@dataclass
class RMSProp(Optimizer):
    """RMSProp (TensorFlow's ApplyRmsProp / ApplyCenteredRmsProp). KotlinDL's defaults: 0.001, decay 0.9,
    momentum 0, epsilon 1e-10, not centered; the mean-square slot starts at 1.0 as in KotlinDL.

    ms = decay * ms + (1 - decay) * g^2; centered: mg = decay * mg + (1 - decay) * g and ms - mg^2 replaces
    ms;
    mom = momentum * mom + lr * g / sqrt(ms + epsilon); w -= mom.
    """

    learning_rate: float = 0.001
    decay: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-10
    centered: bool = False
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="rmsprop", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("RMSProp", "decay", self.decay, low=0.0, high=1.0)
        _check_number("RMSProp", "momentum", self.momentum, low=0.0)
        _check_number("RMSProp", "epsilon", self.epsilon, low=0.0, low_open=True)
        _check_bool("RMSProp", "centered", self.centered)


@dataclass
class AdaDelta(Optimizer):
    """AdaDelta (TensorFlow's ApplyAdadelta). KotlinDL's defaults: 0.1, rho 0.95, epsilon 1e-8.

    accum = rho * accum + (1 - rho) * g^2; u = sqrt(accum_update + eps) / sqrt(accum + eps) * g;
    accum_update = rho * accum_update + (1 - rho) * u^2; w -= lr * u.
    """

    learning_rate: float = 0.1
    rho: float = 0.95
    epsilon: float = 1e-8
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="adadelta", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("AdaDelta", "rho", self.rho, low=0.0, high=1.0)
        _check_number("AdaDelta", "epsilon", self.epsilon, low=0.0, low_open=True)


@dataclass
class AdaGrad(Optimizer):
    """AdaGrad (TensorFlow's ApplyAdagrad). KotlinDL's defaults: 0.1, initial accumulator 0.01.

    accum += g^2; w -= lr * g / sqrt(accum). The accumulator must start positive (0 divides by zero).
    """

    learning_rate: float = 0.1
    initial_accumulator_value: float = 0.01
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="adagrad", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("AdaGrad", "initial_accumulator_value", self.initial_accumulator_value, low=0.0, low_open=True)


@dataclass
class AdaGradDA(Optimizer):
    """AdaGrad dual averaging (TensorFlow's ApplyAdagradDA). KotlinDL's defaults: 0.1, initial accumulator
    0.01,
    l1 0.01, l2 0.01.

    acc += g; sq += g^2; w = -lr * sign(acc) * max(|acc| - l1 * t, 0) / (l2 * t * lr + sqrt(sq)) (without the
    max when l1 = 0). `t` is the update count; KotlinDL feeds a step variable it increments only once, at
    initialization (so t = 1 forever there); here t grows as the algorithm intends, and agrees on step one.
    """

    learning_rate: float = 0.1
    initial_accumulator_value: float = 0.01
    l1_strength: float = 0.01
    l2_strength: float = 0.01
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="adagradda", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("AdaGradDA", "initial_accumulator_value", self.initial_accumulator_value, low=0.0, low_open=True)
        _check_number("AdaGradDA", "l1_strength", self.l1_strength, low=0.0)
        _check_number("AdaGradDA", "l2_strength", self.l2_strength, low=0.0)


@dataclass
class Adam(Optimizer):
    """Adam with bias correction (TensorFlow's ApplyAdam). KotlinDL's defaults: 1e-3, beta1 0.9, beta2 0.999,
    epsilon 1e-7.

    m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g^2; w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
    (sqrt(v) + eps)
    (epsilon outside the bias correction, as TensorFlow and ONNX Runtime's AdamW in Hugging Face mode).
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="adam", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("Adam", "beta1", self.beta1, low=0.0, high=1.0, low_open=True, high_open=True)
        _check_number("Adam", "beta2", self.beta2, low=0.0, high=1.0, low_open=True, high_open=True)
        _check_number("Adam", "epsilon", self.epsilon, low=0.0, low_open=True)


@dataclass
class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm (TensorFlow's ApplyAdaMax). KotlinDL's defaults: 1e-3, beta1 0.9,
    beta2 0.999, epsilon 1e-7.

    m = b1 * m + (1 - b1) * g; u = max(b2 * u, |g|); w -= lr / (1 - b1^t) * m / (u + eps).
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="adamax", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("Adamax", "beta1", self.beta1, low=0.0, high=1.0, low_open=True, high_open=True)
        _check_number("Adamax", "beta2", self.beta2, low=0.0, high=1.0, low_open=True, high_open=True)
        _check_number("Adamax", "epsilon", self.epsilon, low=0.0, low_open=True)


@dataclass
class Ftrl(Optimizer):
    """FTRL-proximal (TensorFlow's ApplyFtrlV2 CPU kernel). KotlinDL's defaults: 1e-3, l1 0, l2 0, learning
    rate
    power -0.5, l2 shrinkage 0, initial accumulator 0.

    gs = g + 2 * l2_shrinkage * w; n' = n + gs^2; z += gs - (n'^(-p) - n^(-p)) / lr * w;
    w = (sign(z) * l1 - z) / (n'^(-p) / lr + 2 * l2) where |z| > l1, else 0.
    """

    learning_rate: float = 1e-3
    l1_regularization_strength: float = 0.0
    l2_regularization_strength: float = 0.0
    learning_rate_power: float = -0.5
    l2_shrinkage_regularization_strength: float = 0.0
    initial_accumulator_value: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    name: str = field(default="ftrl", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("Ftrl", "l1_regularization_strength", self.l1_regularization_strength, low=0.0)
        _check_number("Ftrl", "l2_regularization_strength", self.l2_regularization_strength, low=0.0)
        _check_number("Ftrl", "learning_rate_power", self.learning_rate_power, high=0.0)
        _check_number(
            "Ftrl", "l2_shrinkage_regularization_strength", self.l2_shrinkage_regularization_strength, low=0.0
        )
        _check_number("Ftrl", "initial_accumulator_value", self.initial_accumulator_value, low=0.0)


_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "rmsprop": RMSProp,
    "adadelta": AdaDelta,
    "adagrad": AdaGrad,
    "adagradda": AdaGradDA,
    "adam": Adam,
    "adamax": Adamax,
    "ftrl": Ftrl,
}


def _squash(name: str) -> str:
    # "AdaGradDA", "adagrad_da" and "adagrad-da" all name the same class.
    return name.strip().lower().translate({ord(c): None for c in "_- "})


_REGISTRY = Registry("optimizer", Optimizer, _CLASSES, normalize=_squash)


def get(identifier: str | Optimizer | type[Optimizer] | dict[str, Any]) -> Optimizer:
    """Map a name ("adam", "rmsprop", "adagrad_da", ...), a class, a config dict or an instance to an Optimizer.

    Raises:
        UnknownIdentifierError: the name is not a known optimizer.
    """
    return _REGISTRY.get(identifier)
