"""Optimizers: their hyper-parameters (KotlinDL's defaults), validation and registry.

The classes only hold settings; each training engine turns them into update graphs (`onnxtrain.portable` has all nine,
the ort-training engine Adam and SGD). The update rules are TensorFlow's `Apply*` kernels, which KotlinDL calls; each
class docstring gives its rule, with `t` the 1-based number of the update.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from onnxtrain._checks import as_real, check_bool
from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError


@dataclass(frozen=True)
class _Interval:
    """A hyper-parameter rule: a finite real number (numpy scalars too, never a bool) from `low` to `high`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False  # None is allowed too (and means "off")

    def __call__(self, owner: str, arg: str, value: object) -> float | None:
        """`value` as a Python float; otherwise InvalidArgumentError naming `owner`, `arg`, the interval and `value`."""
        if value is None and self.optional:
            return None
        number = as_real(value)
        if number is not None:
            inside = math.isfinite(number)
            if inside and self.low is not None:
                inside = number > self.low if self.low_open else number >= self.low
            if inside and self.high is not None:
                inside = number < self.high if self.high_open else number <= self.high
            if inside:
                return number
        left = "-inf" if self.low is None else f"{self.low:g}"
        right = "inf" if self.high is None else f"{self.high:g}"
        opening = "(" if self.low_open or self.low is None else "["
        closing = ")" if self.high_open or self.high is None else "]"
        expected = f"a finite number in {opening}{left}, {right}{closing}" + (" or None" if self.optional else "")
        raise InvalidArgumentError(f"{owner}({arg}=...) expects {expected}. Received: {arg}={value!r}")


_Check = Callable[[str, str, object], object]
_POSITIVE = _Interval(0.0, low_open=True)
_NON_NEGATIVE = _Interval(0.0)
_UNIT_OPEN = _Interval(0.0, 1.0, low_open=True, high_open=True)


@dataclass
class Optimizer:
    """Base class. `learning_rate` may be changed between steps (e.g. by a scheduler callback).

    Positional arguments follow KotlinDL's constructors (and Keras'): the learning rate, then the optimizer's own
    settings in the order its class lists them, so `Adam(0.001, 0.8)` sets beta1. The clip settings are
    keyword-only.

    Gradient clipping, applied before the update:
        clip_value: clamp each gradient element to [-clip_value, clip_value] (KotlinDL's ClipGradientByValue).
        clip_norm: rescale all gradients together so their global L2 norm is at most clip_norm
            (`g *= clip_norm / (norm + 1e-6)` when that factor is below 1, as ONNX Runtime and PyTorch do).
        With both, values are clamped first.

    The hyper-parameters in `_checks` (a subclass's table adds to its bases') are checked on every assignment,
    in the constructor and after it, and numbers are stored as Python floats: `Adam(learning_rate=np.float32(0.01))`
    works, `optimizer.beta1 = 5` raises InvalidArgumentError.
    """

    learning_rate: float
    # Keyword-only: a subclass's own settings come right after learning_rate among the positional arguments.
    clip_norm: float | None = field(default=None, kw_only=True)
    clip_value: float | None = field(default=None, kw_only=True)
    name: str = field(default="", init=False)

    _checks: ClassVar[dict[str, _Check]] = {
        "learning_rate": _POSITIVE,
        "clip_norm": _Interval(0.0, low_open=True, optional=True),
        "clip_value": _Interval(0.0, low_open=True, optional=True),
    }

    def __setattr__(self, name: str, value: object) -> None:
        for cls in type(self).__mro__:  # the nearest class with a rule for `name` decides
            check = vars(cls).get("_checks", {}).get(name)
            if check is not None:
                value = check(type(self).__name__, name, value)
                break
        super().__setattr__(name, value)

    def get_config(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SGD(Optimizer):
    """Plain stochastic gradient descent: w -= learning_rate * g. KotlinDL's default learning rate is 0.2."""

    learning_rate: float = 0.2
    name: str = field(default="sgd", init=False)


@dataclass
class Momentum(Optimizer):
    """SGD with momentum (TensorFlow's ApplyMomentum). KotlinDL's defaults: 0.001, momentum 0.99, Nesterov on.

    a = momentum * a + g; w -= lr * a, or with Nesterov w -= lr * g + lr * momentum * a.
    """

    learning_rate: float = 0.001
    momentum: float = 0.99
    use_nesterov: bool = True
    name: str = field(default="momentum", init=False)

    _checks: ClassVar[dict[str, _Check]] = {"momentum": _NON_NEGATIVE, "use_nesterov": check_bool}


@dataclass
class RMSProp(Optimizer):
    """RMSProp (TensorFlow's ApplyRmsProp / ApplyCenteredRmsProp). KotlinDL's defaults: 0.001, decay 0.9,
    momentum 0, epsilon 1e-10, not centered; the mean-square slot starts at 1.0 as in KotlinDL.

    ms = decay * ms + (1 - decay) * g^2 (centered: also mg = decay * mg + (1 - decay) * g, and ms - mg^2 is used
    in place of ms below); mom = momentum * mom + lr * g / sqrt(ms + epsilon); w -= mom.
    """

    learning_rate: float = 0.001
    decay: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-10
    centered: bool = False
    name: str = field(default="rmsprop", init=False)

    _checks: ClassVar[dict[str, _Check]] = {
        "decay": _Interval(0.0, 1.0),
        "momentum": _NON_NEGATIVE,
        "epsilon": _POSITIVE,
        "centered": check_bool,
    }


@dataclass
class AdaDelta(Optimizer):
    """AdaDelta (TensorFlow's ApplyAdadelta). KotlinDL's defaults: 0.1, rho 0.95, epsilon 1e-8.

    accum = rho * accum + (1 - rho) * g^2; u = sqrt(accum_update + eps) / sqrt(accum + eps) * g;
    accum_update = rho * accum_update + (1 - rho) * u^2; w -= lr * u.
    """

    learning_rate: float = 0.1
    rho: float = 0.95
    epsilon: float = 1e-8
    name: str = field(default="adadelta", init=False)

    _checks: ClassVar[dict[str, _Check]] = {"rho": _Interval(0.0, 1.0), "epsilon": _POSITIVE}


@dataclass
class AdaGrad(Optimizer):
    """AdaGrad (TensorFlow's ApplyAdagrad). KotlinDL's defaults: 0.1, initial accumulator 0.01.

    accum += g^2; w -= lr * g / sqrt(accum). The accumulator must start positive (0 divides by zero).
    """

    learning_rate: float = 0.1
    initial_accumulator_value: float = 0.01
    name: str = field(default="adagrad", init=False)

    _checks: ClassVar[dict[str, _Check]] = {"initial_accumulator_value": _POSITIVE}


@dataclass
class AdaGradDA(Optimizer):
    """AdaGrad dual averaging (TensorFlow's ApplyAdagradDA). KotlinDL's defaults: 0.1, initial accumulator 0.01,
    l1 0.01, l2 0.01.

    acc += g; sq += g^2; w = -lr * sign(acc) * max(|acc| - l1 * t, 0) / (l2 * t * lr + sqrt(sq)) (without the
    max when l1 = 0). `t` is the update count; KotlinDL feeds a step variable it increments only once, at
    initialization (so t = 1 forever there); here t grows as the algorithm intends, and agrees on step one.
    """

    learning_rate: float = 0.1
    initial_accumulator_value: float = 0.01
    l1_strength: float = 0.01
    l2_strength: float = 0.01
    name: str = field(default="adagradda", init=False)

    _checks: ClassVar[dict[str, _Check]] = {
        "initial_accumulator_value": _POSITIVE,
        "l1_strength": _NON_NEGATIVE,
        "l2_strength": _NON_NEGATIVE,
    }


@dataclass
class Adam(Optimizer):
    """Adam with bias correction (TensorFlow's ApplyAdam). KotlinDL's defaults: 1e-3, beta1 0.9, beta2 0.999,
    epsilon 1e-7.

    m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g^2;
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    (epsilon outside the bias correction, as TensorFlow and ONNX Runtime's AdamW in Hugging Face mode).
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    name: str = field(default="adam", init=False)

    _checks: ClassVar[dict[str, _Check]] = {"beta1": _UNIT_OPEN, "beta2": _UNIT_OPEN, "epsilon": _POSITIVE}


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
    name: str = field(default="adamax", init=False)

    _checks: ClassVar[dict[str, _Check]] = {"beta1": _UNIT_OPEN, "beta2": _UNIT_OPEN, "epsilon": _POSITIVE}


@dataclass
class Ftrl(Optimizer):
    """FTRL-proximal (TensorFlow's ApplyFtrlV2 CPU kernel). KotlinDL's defaults: 1e-3, l1 0, l2 0, learning
    rate power -0.5, l2 shrinkage 0, initial accumulator 0.

    gs = g + 2 * l2_shrinkage * w; n' = n + gs^2; z += gs - (n'^(-p) - n^(-p)) / lr * w;
    w = (sign(z) * l1 - z) / (n'^(-p) / lr + 2 * l2) where |z| > l1, else 0.
    """

    learning_rate: float = 1e-3
    l1_regularization_strength: float = 0.0
    l2_regularization_strength: float = 0.0
    learning_rate_power: float = -0.5
    l2_shrinkage_regularization_strength: float = 0.0
    initial_accumulator_value: float = 0.0
    name: str = field(default="ftrl", init=False)

    _checks: ClassVar[dict[str, _Check]] = {
        "l1_regularization_strength": _NON_NEGATIVE,
        "l2_regularization_strength": _NON_NEGATIVE,
        "learning_rate_power": _Interval(high=0.0),
        "l2_shrinkage_regularization_strength": _NON_NEGATIVE,
        "initial_accumulator_value": _NON_NEGATIVE,
    }


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
