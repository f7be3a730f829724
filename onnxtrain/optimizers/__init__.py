"""Optimizers: their hyper-parameters (KotlinDL's defaults; Keras' under Keras' class names `RMSprop`, `Adagrad`,
`Adadelta` and under every name string), validation and registry.

Each optimizer has one module here (`_adam.py`, ...) with its settings class, whose docstring gives its update with
`t` the 1-based number of the update; its ONNX update rule (TensorFlow's `Apply*` kernel, which KotlinDL calls);
and the same rule as one loop that the portable engine compiles with numba when it is installed. `_base.py` holds
what they share: the `Optimizer` base class, its hyper-parameter checks and gradient clipping; `_keras_arguments.py`
the Keras spellings every constructor also takes (`beta_1`, `rho`, `clipvalue`, `global_clipnorm`, ...), and
KotlinDL's `clip_gradient=ClipGradientByValue(0.1)` (`_clip_gradient.py`). The
portable engine runs all eleven; the ort-training engine maps Adam, AdamW (without weight decay) and SGD (without
momentum) onto ONNX Runtime's own optimizer graphs. Every optimizer's `learning_rate` may be a schedule from
`schedules` (Keras 3's: `Adam(learning_rate=schedules.CosineDecay(1e-3, decay_steps=1000))`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from onnxtrain._registry import Registry
from onnxtrain.optimizers import schedules
from onnxtrain.optimizers._adadelta import AdaDelta, Adadelta
from onnxtrain.optimizers._adagrad import AdaGrad, Adagrad
from onnxtrain.optimizers._adagrad_da import AdaGradDA
from onnxtrain.optimizers._adam import Adam, AdamW
from onnxtrain.optimizers._adamax import Adamax
from onnxtrain.optimizers._base import Optimizer
from onnxtrain.optimizers._clip_gradient import (
    ClipGradientAction,
    ClipGradientByNorm,
    ClipGradientByValue,
    NoClipGradient,
)
from onnxtrain.optimizers._ftrl import Ftrl
from onnxtrain.optimizers._momentum import Momentum
from onnxtrain.optimizers._nadam import Nadam
from onnxtrain.optimizers._rmsprop import RMSProp, RMSprop
from onnxtrain.optimizers._sgd import SGD
from onnxtrain.optimizers.schedules import LearningRateSchedule


class StandsForOptimizer(Protocol):
    """What stands for an Optimizer in `get`: a compiled model's `model.optimizer` (`CompiledOptimizer`, which
    imports this package), giving its Optimizer object at the rate the model trains with now."""

    def current_optimizer(self) -> Optimizer: ...


__all__ = [
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "AdaGradDA",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ClipGradientAction",
    "ClipGradientByNorm",
    "ClipGradientByValue",
    "Ftrl",
    "LearningRateSchedule",
    "Momentum",
    "Nadam",
    "NoClipGradient",
    "Optimizer",
    "RMSProp",
    "RMSprop",
    "get",
    "schedules",
]

_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    # Names are Keras' API (KotlinDL has none): Keras' classes, with Keras' defaults. A saved config holds every
    # setting, so a KotlinDL RMSProp saved as "rmsprop" comes back with its own numbers.
    "rmsprop": RMSprop,
    "adadelta": Adadelta,
    "adagrad": Adagrad,
    "adagradda": AdaGradDA,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
    "ftrl": Ftrl,
}


def _squash(name: str) -> str:
    # "AdaGradDA", "adagrad_da" and "adagrad-da" all name the same class.
    return name.strip().lower().translate({ord(c): None for c in "_- "})


# Keras optimizers onnxtrain does not have, and the nearest it has.
_HINTS = {
    "lion": "Keras' Lion is not in onnxtrain; AdamW is the nearest.",
    "lamb": "Keras' Lamb is not in onnxtrain; AdamW is the nearest.",
    "adafactor": "Keras' Adafactor is not in onnxtrain; Adam is the nearest.",
}
_REGISTRY = Registry("optimizer", Optimizer, _CLASSES, normalize=_squash, hints=_HINTS)


# KotlinDL's class names, spelled exactly, name KotlinDL's classes; any other spelling of these names is Keras'
# (the other names have one class: "sgd" is SGD(), KotlinDL's rate 0.2).
_KOTLINDL_SPELLINGS: dict[str, Callable[[], Optimizer]] = {"RMSProp": RMSProp, "AdaGrad": AdaGrad, "AdaDelta": AdaDelta}


def get(identifier: str | Optimizer | type[Optimizer] | dict[str, Any] | StandsForOptimizer) -> Optimizer:
    """Map a name ("adam", "rmsprop", "adagrad_da", ...), a class, a config dict or an instance to an Optimizer.
    "rmsprop", "adagrad" and "adadelta" are Keras' classes with Keras' defaults; KotlinDL's class names spelled
    exactly ("RMSProp") are KotlinDL's; the other names have one class each ("sgd": SGD(), rate 0.2). A compiled
    model's `model.optimizer` stands for its Optimizer object at the rate it trains with now
    (`CompiledOptimizer.current_optimizer`): Keras' `compile(optimizer=model.optimizer, ...)`.

    Raises:
        UnknownIdentifierError: the name is not a known optimizer.
    """
    if not isinstance(identifier, Optimizer) and callable(getattr(identifier, "current_optimizer", None)):
        return identifier.current_optimizer()  # type: ignore[union-attr]
    if isinstance(identifier, str) and identifier.strip() in _KOTLINDL_SPELLINGS:
        return _KOTLINDL_SPELLINGS[identifier.strip()]()
    return _REGISTRY.get(identifier, also_accepted=", a compiled model's model.optimizer")
