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

import inspect
import re
from typing import Any, Protocol

from onnxtrain._registry import Registry
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError, UnsupportedError
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
from onnxtrain.optimizers._keras_arguments import _KERAS_ONLY as KERAS_ONLY_ARGUMENTS
from onnxtrain.optimizers._keras_arguments import CLIP_GRADIENT
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
_KOTLINDL_CLASSES: dict[str, type[RMSProp | AdaGrad | AdaDelta]] = {
    "RMSProp": RMSProp,
    "AdaGrad": AdaGrad,
    "AdaDelta": AdaDelta,
}


def get(identifier: str | Optimizer | type[Optimizer] | dict[str, Any] | StandsForOptimizer) -> Optimizer:
    """Map a name ("adam", "rmsprop", "adagrad_da", ...), a class, a config dict or an instance to an Optimizer.
    "rmsprop", "adagrad" and "adadelta" are Keras' classes with Keras' defaults; KotlinDL's class names spelled
    exactly ("RMSProp") are KotlinDL's; the other names have one class each ("sgd": SGD(), rate 0.2). A compiled
    model's `model.optimizer` stands for its Optimizer object at the rate it trains with now
    (`CompiledOptimizer.current_optimizer`): Keras' `compile(optimizer=model.optimizer, ...)`.

    A config dict is onnxtrain's `get_config()` ({"name": "adam", **arguments}), Keras' `get_config()` (the same
    form, with Keras' argument names and its instance name: "adam_1" is an Adam) or Keras' `serialize(optimizer)`
    ({"class_name": "Adam", "config": {...}}). Its arguments go to the class's constructor, which takes Keras'
    names and refuses Keras' settings onnxtrain does not do (use_ema=True, gradient_accumulation_steps, ...).

    Raises:
        UnknownIdentifierError: the name is not a known optimizer.
        InvalidArgumentError: a config dict with neither 'name' nor 'class_name' and 'config'.
        UnsupportedError: a config asking for a Keras setting onnxtrain does not support, naming it.
    """
    if not isinstance(identifier, Optimizer) and callable(getattr(identifier, "current_optimizer", None)):
        return identifier.current_optimizer()  # type: ignore[union-attr]
    if isinstance(identifier, str) and identifier.strip() in _KOTLINDL_CLASSES:
        return _KOTLINDL_CLASSES[identifier.strip()]()
    if isinstance(identifier, dict) and ("class_name" in identifier or "name" in identifier):
        cls, arguments = _class_and_arguments(identifier)
        _check_keys(identifier, cls, _without_keras_defaults(cls, arguments))
        return cls(**_without_keras_defaults(cls, arguments))
    return _REGISTRY.get(identifier, also_accepted=", a compiled model's model.optimizer")


_SERIALIZED_KEYS = {"module", "class_name", "config", "registered_name"}  # what keras.optimizers.serialize writes
_INSTANCE_NUMBER = re.compile(r"_\d+$")  # Keras names a second Adam "adam_1"


def _class_and_arguments(config: dict[str, Any]) -> tuple[type[Optimizer], dict[str, Any]]:
    """The class a config dict names and the arguments for its constructor (Keras' `name`, a label, among them when
    the class comes from `class_name`: the constructor drops it)."""
    if "class_name" in config:
        unexpected = sorted(set(config) - _SERIALIZED_KEYS)
        if not isinstance(config["class_name"], str) or not isinstance(config.get("config", {}), dict) or unexpected:
            raise InvalidArgumentError(
                f"Could not interpret optimizer config {config!r}: Keras' serialized form is {{'class_name': "
                f"'Adam', 'config': {{...}}}} (with 'module' and 'registered_name'). Received: "
                f"class_name={config['class_name']!r}, keys {sorted(config)}"
            )
        name = config["class_name"]
        cls = _KOTLINDL_CLASSES.get(name.strip()) or _REGISTRY.lookup(name)
        return cls, dict(config.get("config", {}))
    name = str(config["name"])
    arguments = {key: value for key, value in config.items() if key != "name"}
    try:
        return _REGISTRY.lookup(name), arguments
    except UnknownIdentifierError:
        numbered = _INSTANCE_NUMBER.sub("", name.strip())
        if numbered == name.strip() or _squash(numbered) not in _CLASSES:
            raise
        return _REGISTRY.lookup(numbered), arguments


# Keras' settings its get_config always writes that onnxtrain's constructors do not take (yet): accepted at Keras'
# default, which onnxtrain's update follows (Adagrad's epsilon within 1e-6, as `Adagrad` says), refused otherwise.
_KERAS_CONFIG_DEFAULTS: dict[type[Optimizer], dict[str, float]] = {AdaGrad: {"epsilon": 1e-7}, Ftrl: {"beta": 0.0}}


def _without_keras_defaults(cls: type[Optimizer], arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` without the `_KERAS_CONFIG_DEFAULTS` of `cls` at Keras' default values.

    Raises:
        UnsupportedError: one of them at another value, naming it.
    """
    defaults = next((d for base, d in _KERAS_CONFIG_DEFAULTS.items() if issubclass(cls, base)), {})
    other = [f"{key}={arguments[key]!r}" for key in defaults if key in arguments and arguments[key] != defaults[key]]
    if other:
        allowed = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
        raise UnsupportedError(
            f"{cls.__name__} does not support Keras' {', '.join(other)}: onnxtrain's update is Keras' at {allowed}. "
            f"Leave it out, or set {allowed}."
        )
    return {key: value for key, value in arguments.items() if key not in defaults}


def _check_keys(config: dict[str, Any], cls: type[Optimizer], arguments: dict[str, Any]) -> None:
    """Refuse keys neither `cls` nor Keras' optimizers take, listing the ones they do.

    Raises:
        InvalidArgumentError: naming the unknown keys.
    """
    ours = [p.name for p in list(inspect.signature(cls).parameters.values()) if p.kind is not p.VAR_KEYWORD]
    keras = sorted({*getattr(cls, "keras_spellings", {}), *KERAS_ONLY_ARGUMENTS} - {*ours, "name"})
    unknown = [key for key in arguments if key not in {*ours, *keras, "name", CLIP_GRADIENT}]
    if unknown:
        raise InvalidArgumentError(
            f"Could not interpret optimizer config {config!r}: unknown key(s) {unknown} for {cls.__name__}. "
            f"Accepted keys: {['name', *ours]}, Keras' names {keras} and KotlinDL's {CLIP_GRADIENT!r}"
        )
