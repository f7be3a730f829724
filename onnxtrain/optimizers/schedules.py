"""Learning-rate schedules: Keras 3's six (names, arguments, defaults and formulas), the `LearningRateSchedule` base
class for one's own, and how a schedule is saved (`serialize`, `deserialize`, `register`).

Any optimizer takes a schedule as its `learning_rate`; before each update `fit` sets the rate to
`schedule(step)`, with `step` the optimizer's updates so far (Keras' `optimizer.iterations`: 0 for the first
update), counted across `fit` calls and restored with the optimizer state.

Example:
    >>> from onnxtrain.optimizers import Adam, schedules
    >>> Adam(learning_rate=schedules.ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9))  # doctest: +SKIP

The formulas are Keras', evaluated in float64 (Keras': float32); the rate is applied in float32 either way.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain._registry import Registered
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError

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


class LearningRateSchedule:
    """Base class: the learning rate as a function of the step. Subclass it, override `__call__(step)` (the rate of
    the update after `step` updates, a finite number >= 0) and `get_config()` (the constructor's arguments, JSON
    values), and decorate the class with `@register` so that a saved model can rebuild it.

    `float(schedule)` is its rate at step 0, the rate an optimizer starts with.

    Example:
        >>> @register
        ... class Halving(LearningRateSchedule):
        ...     def __init__(self, rate: float, every: int):
        ...         self.rate, self.every = rate, every
        ...     def __call__(self, step: int) -> float:
        ...         return self.rate * 0.5 ** (step // self.every)
        ...     def get_config(self) -> dict:
        ...         return {"rate": self.rate, "every": self.every}
        >>> Halving(0.1, every=100)(250)
        0.025
    """

    def __call__(self, step: int) -> float:
        raise NotImplementedError(f"Learning-rate schedule {type(self).__name__} must override __call__(self, step).")

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"Learning-rate schedule {type(self).__name__} must override get_config() (its constructor's arguments) "
            "to be saved."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __float__(self) -> float:
        return rate_at(self, 0)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        try:
            return self.get_config() == other.get_config()
        except NotImplementedError:
            return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except NotImplementedError:
            return object.__repr__(self)
        arguments = ", ".join(f"{key}={value!r}" for key, value in config.items() if key != "name")
        return f"{type(self).__name__}({arguments})"


def rate_at(schedule: Any, step: int) -> float:
    """`schedule(step)` as a Python float: what `fit` sets before each update.

    Raises:
        InvalidArgumentError: the schedule returned something other than a finite number >= 0, naming the
            schedule, the step and the value.
    """
    try:
        value = schedule(step)
    except OverflowError:  # Python's float power beyond float64's range (a growing ExponentialDecay)
        value = math.inf
    rate = as_real(value.item() if isinstance(value, np.ndarray) and value.size == 1 else value)
    if rate is None or not 0 <= rate < math.inf:  # NaN fails the comparison
        raise InvalidArgumentError(
            f"The learning-rate schedule {schedule!r} returned {value!r} at step {step}; a learning rate must be a "
            "finite number >= 0."
        )
    return rate


# --- argument checks ----------------------------------------------------------------------------------------------
_INTEGERS = (int, np.integer)


def _number(owner: str, arg: str, value: object, low: float | None = None, low_open: bool = False) -> Any:
    """`value` (an int stays an int, so that configs keep what was given) if finite and above `low`."""
    number = as_real(value)
    if number is not None and math.isfinite(number):
        if low is None or (number > low if low_open else number >= low):
            return int(value) if isinstance(value, _INTEGERS) else number
    bound = "" if low is None else f" {'>' if low_open else '>='} {low:g}"
    raise InvalidArgumentError(f"{owner}({arg}=...) expects a finite number{bound}. Received: {arg}={value!r}")


def _name(owner: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{owner}(name=...) expects a string. Received: name={value!r}")
    return value


# --- Keras' schedules ---------------------------------------------------------------------------------------------
class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: Keras' arguments, their checks, the step's progress
    `step / decay_steps` (floored with `staircase=True`) and the config. `name` defaults to the class's name."""

    decay_rate_low_open: ClassVar[bool] = False  # whether decay_rate must be > 0 (else >= 0)

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool = False,
        name: str | None = None,
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate, 0.0, low_open=self.decay_rate_low_open)
        self.staircase = check_bool(owner, "staircase", staircase)
        self.name = _name(owner, owner if name is None else name)

    def progress(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class ExponentialDecay(_StepDecay):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`, the exponent floored with `staircase=True`."""

    decay_rate_low_open = True

    def __call__(self, step: int) -> float:
        try:
            return self.initial_learning_rate * self.decay_rate ** self.progress(step)
        except OverflowError:
            return math.inf


class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[0]` while step <= boundaries[0], `values[i]` while boundaries[i-1] < step <= boundaries[i], and
    `values[-1]` after the last boundary."""

    def __init__(self, boundaries: Sequence[float], values: Sequence[float], name: str = "PiecewiseConstant"):
        owner = type(self).__name__
        for arg, given in (("boundaries", boundaries), ("values", values)):
            if isinstance(given, str | bytes) or not isinstance(given, Sequence | np.ndarray):
                raise InvalidTypeError(f"{owner}({arg}=...) expects a list of numbers. Received: {arg}={given!r}")
        if len(boundaries) == 0 or len(boundaries) != len(values) - 1:
            raise InvalidArgumentError(
                f"{owner} expects one boundary fewer than values, and at least one. Received: "
                f"boundaries={boundaries!r} of length {len(boundaries)}, values={values!r} of length {len(values)}"
            )
        self.boundaries = [_number(owner, "boundaries", b) for b in boundaries]
        if any(high < low for low, high in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise InvalidArgumentError(f"{owner}(boundaries=...) expects increasing steps. Received: {boundaries!r}")
        self.values = [_number(owner, "values", v, 0.0) for v in values]
        self.name = _name(owner, name)

    def __call__(self, step: int) -> float:
        return float(self.values[bisect.bisect_left(self.boundaries, step)])

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From `initial_learning_rate` to `end_learning_rate` over `decay_steps` along `(1 - step / decay_steps) **
    power`, then `end_learning_rate`; with `cycle=True` the decay restarts, over the next multiple of
    `decay_steps`, each time it ends."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate, 0.0)
        self.power = _number(owner, "power", power, 0.0, low_open=True)
        self.cycle = check_bool(owner, "cycle", cycle)
        self.name = _name(owner, name)

    def __call__(self, step: int) -> float:
        decay_steps = self.decay_steps
        if self.cycle:  # the first multiple of decay_steps at or above step (decay_steps itself at step 0)
            decay_steps = decay_steps * (1.0 if step == 0 else math.ceil(step / self.decay_steps))
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power + self.end_learning_rate

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class InverseTimeDecay(_StepDecay):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`, the ratio floored with `staircase=True`."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1 + self.decay_rate * self.progress(step))


def _cosine(step: float, decay_steps: float, alpha: float) -> float:
    return (1 - alpha) * 0.5 * (1.0 + math.cos(math.pi * step / decay_steps)) + alpha


class CosineDecay(LearningRateSchedule):
    """Cosine decay from `initial_learning_rate` to `alpha` times it over `decay_steps`, then constant. With
    `warmup_target`, first a linear warmup from `initial_learning_rate` to `warmup_target` over `warmup_steps`,
    then the decay from `warmup_target`. Keras' canonical warmup starts from `initial_learning_rate=0.0`: the
    first update then changes nothing, as in Keras; with `alpha=0` the rate is 0 once the decay has ended."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: float = 0,
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.alpha = _number(owner, "alpha", alpha, 0.0)
        self.name = _name(owner, name)
        self.warmup_target = None if warmup_target is None else _number(owner, "warmup_target", warmup_target, 0.0)
        self.warmup_steps = _number(owner, "warmup_steps", warmup_steps, 0.0)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self.initial_learning_rate * _cosine(min(step, self.decay_steps), self.decay_steps, self.alpha)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return (self.warmup_target - self.initial_learning_rate) * fraction + self.initial_learning_rate
        return self.warmup_target * _cosine(step - self.warmup_steps, self.decay_steps, self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): a cosine decay over `first_decay_steps`, then again from the
    initial rate times `m_mul` over `t_mul` times as many steps, and so on; `alpha` is the floor as a fraction of
    the initial rate."""

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: float,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate, 0.0)
        self.first_decay_steps = _number(owner, "first_decay_steps", first_decay_steps, 0.0, low_open=True)
        self.t_mul = _number(owner, "t_mul", t_mul, 0.0, low_open=True)
        self.m_mul = _number(owner, "m_mul", m_mul, 0.0)
        self.alpha = _number(owner, "alpha", alpha, 0.0)
        self.name = _name(owner, name)

    def __call__(self, step: int) -> float:
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1.0 - fraction * (1.0 - self.t_mul)) / math.log(self.t_mul))
            done = (1.0 - self.t_mul**restart) / (1.0 - self.t_mul)  # the length of the finished periods
            fraction = (fraction - done) / self.t_mul**restart
        decayed = 0.5 * self.m_mul**restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * decayed + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


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
