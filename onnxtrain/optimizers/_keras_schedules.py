"""Keras 3's six learning-rate schedules (names, arguments, defaults and formulas, in float64) and the checks of their
arguments. Public as `onnxtrain.optimizers.schedules.ExponentialDecay`, ...; saving them is in `schedules`."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.optimizers._schedule_base import LearningRateSchedule

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


# --- the schedules ------------------------------------------------------------------------------------------------
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
