"""Optimizers: their hyper-parameters, validation and registry. The training engine turns them into update graphs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError


def _check_rate(owner: str, arg: str, value: object, upper: float | None = None) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if ok and upper is not None:
        ok = value < upper
    if not ok:
        expected = f"a finite number in (0, {upper})" if upper is not None else "a positive finite number"
        raise InvalidArgumentError(f"{owner}({arg}=...) expects {expected}. Received: {arg}={value!r}")


@dataclass
class Optimizer:
    """Base class. `learning_rate` may be changed between steps (e.g. by a scheduler callback)."""

    learning_rate: float
    clip_norm: float | None = None
    name: str = field(default="", init=False)

    def __post_init__(self) -> None:
        _check_rate(type(self).__name__, "learning_rate", self.learning_rate)
        if self.clip_norm is not None:
            _check_rate(type(self).__name__, "clip_norm", self.clip_norm)

    def get_config(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Adam(Optimizer):
    """Adam with bias correction. KotlinDL's defaults: learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7.

    `clip_norm` rescales the gradients so their global L2 norm is at most that value.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    clip_norm: float | None = None
    name: str = field(default="adam", init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_rate("Adam", "beta1", self.beta1, upper=1.0)
        _check_rate("Adam", "beta2", self.beta2, upper=1.0)
        _check_rate("Adam", "epsilon", self.epsilon)


@dataclass
class SGD(Optimizer):
    """Plain stochastic gradient descent: w -= learning_rate * g. KotlinDL's default learning rate is 0.2."""

    learning_rate: float = 0.2
    clip_norm: float | None = None
    name: str = field(default="sgd", init=False)


_REGISTRY: dict[str, type[Optimizer]] = {"adam": Adam, "sgd": SGD}


def get(identifier: str | Optimizer | dict[str, Any]) -> Optimizer:
    """Map "adam"/"sgd", a config dict or an Optimizer instance to an Optimizer.

    Raises:
        UnknownIdentifierError: the name is not a known optimizer.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict):
        config = dict(identifier)
        return _lookup(str(config.pop("name", "")))(**config)
    if isinstance(identifier, str):
        return _lookup(identifier)()
    raise UnknownIdentifierError(
        f"Could not interpret optimizer {identifier!r} ({type(identifier).__name__}). "
        f"Expected one of {sorted(_REGISTRY)} or an Optimizer instance."
    )


def _lookup(name: str) -> type[Optimizer]:
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise UnknownIdentifierError(f"Could not interpret optimizer {name!r}. Valid names: {sorted(_REGISTRY)}")
    return _REGISTRY[key]
