"""Learning-rate schedules: Keras 3's six (names, arguments, defaults and formulas), the `LearningRateSchedule` base
class for one's own, and how a schedule is saved (`serialize`, `deserialize`, `register`).

Any optimizer takes a schedule as its `learning_rate`; before each update `fit` sets the rate to
`schedule(step)`, with `step` the optimizer's updates so far (Keras' `optimizer.iterations`: 0 for the first
update), counted across `fit` calls and restored with the optimizer state.

Example:
    >>> from onnxtrain.optimizers import Adam, schedules
    >>> Adam(learning_rate=schedules.ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9))  # doctest: +SKIP

The formulas are Keras', evaluated in float64 (Keras': float32); the rate is applied in float32 either way.

This module is the public face and owns saving; the base class and `rate_at` are `_schedule_base`, Keras' six
`_keras_schedules`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from onnxtrain._registry import Registered
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError
from onnxtrain.optimizers._keras_schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
)
from onnxtrain.optimizers._schedule_base import LearningRateSchedule
from onnxtrain.optimizers._schedule_base import rate_at as rate_at  # what fit sets before each update

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "register",
    "serialize",
]

ScheduleT = TypeVar("ScheduleT", bound=type["LearningRateSchedule"])


# --- saving -------------------------------------------------------------------------------------------------------
_BUILT_IN: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}
_REGISTERED = Registered(
    "learning-rate schedule",
    "onnxtrain.optimizers.schedules.register",
    accepts=lambda obj: isinstance(obj, type) and issubclass(obj, LearningRateSchedule),
    expected="a LearningRateSchedule subclass",
    built_in=lambda: _BUILT_IN,
)


def register(cls: ScheduleT) -> ScheduleT:
    """Class decorator: a saved optimizer may name this `LearningRateSchedule` subclass (by its class name), and
    `load_model` / `optimizers.get` rebuild it with `cls.from_config(config)`. Define (and register) the class
    before loading. Registering a class of the same name again replaces it (a notebook cell run twice).

    Raises:
        InvalidTypeError: `cls` is not a LearningRateSchedule subclass.
        InvalidArgumentError: the name is one of Keras' schedules here.
    """
    return _REGISTERED.register(cls)


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """`{"class_name": ..., "config": {...}}`, as Keras writes a schedule in an optimizer's config.

    Raises:
        InvalidArgumentError: the class is not registered, its `get_config` is missing or not JSON.
    """
    name = type(schedule).__name__
    if _BUILT_IN.get(name) is not type(schedule) and _REGISTERED.get(name) is not type(schedule):
        raise InvalidArgumentError(
            f"The learning-rate schedule {name} cannot be saved: a saved optimizer names its schedule's class, and "
            f"{name} is not registered. Decorate the class with @onnxtrain.optimizers.schedules.register (and give "
            "it get_config()), or compile with a number as learning_rate."
        )
    try:
        config = schedule.get_config()
        json.dumps(config, allow_nan=False)
    except NotImplementedError as e:
        raise InvalidArgumentError(str(e)) from e
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"The learning-rate schedule {name} cannot be saved: its get_config() must hold JSON values (numbers, "
            f"strings, lists, dicts). {type(e).__name__}: {e}"
        ) from e
    return {"class_name": name, "config": config}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """The schedule `serialize` (or Keras' `keras.optimizers.schedules.serialize`) described.

    Raises:
        InvalidArgumentError: not a {"class_name": ..., "config": {...}} dict.
        UnknownIdentifierError: a class that is neither Keras' nor registered.
    """
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise InvalidArgumentError(
            f"A learning-rate schedule's config expects {{'class_name': ..., 'config': {{...}}}}. Received: {config!r}"
        )
    name, arguments = config["class_name"], config.get("config", {})
    if not isinstance(arguments, dict):
        raise InvalidArgumentError(
            f"The config of learning-rate schedule {name} expects a dict. Received: config={arguments!r}"
        )
    cls = _BUILT_IN.get(name) or _REGISTERED.get(name)
    if cls is None:
        raise UnknownIdentifierError(
            f"Could not interpret learning-rate schedule {name!r}. Valid names: {sorted(_BUILT_IN)}, and those "
            f"registered with @onnxtrain.optimizers.schedules.register ({_REGISTERED.names or 'none yet'}): define "
            "and register your class before loading."
        )
    return cls.from_config(dict(arguments))


def from_keras(value: object) -> LearningRateSchedule | None:
    """onnxtrain's equal of a `keras.optimizers.schedules` object (by its class name and config), else None."""
    cls = type(value)
    if cls.__module__.split(".")[0] != "keras" or cls.__name__ not in _BUILT_IN:
        return None
    return _BUILT_IN[cls.__name__](**value.get_config())  # type: ignore[attr-defined]
