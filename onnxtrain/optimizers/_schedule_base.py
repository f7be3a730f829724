"""The `LearningRateSchedule` contract (the rate as a function of the step) and `rate_at`, the checked rate `fit`
sets before each update. Public as `onnxtrain.optimizers.schedules.LearningRateSchedule`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from onnxtrain._checks import as_real
from onnxtrain.errors import InvalidArgumentError


class LearningRateSchedule:
    """Base class: the learning rate as a function of the step. Subclass it, override `__call__(step)` (the rate of
    the update after `step` updates, a finite number >= 0) and `get_config()` (the constructor's arguments, JSON
    values), and decorate the class with `@register` so that a saved model can rebuild it.

    `float(schedule)` is its rate at step 0, the rate an optimizer starts with.

    Example:
        >>> from onnxtrain.optimizers.schedules import register
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
