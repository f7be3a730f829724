"""Callbacks that set the learning rate between steps or epochs: LearningRateScheduler and ReduceLROnPlateau; and
`optimizer_schedule`, which finds the optimizer's own schedule for `fit` and refuses these callbacks beside it.

Both write through `model.learning_rate` and, like Keras', add the rate to each epoch's logs as `learning_rate`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain._keyword_arguments import refuse_unknown
from onnxtrain.callbacks._callback import Callback, Logs, _overrides, check_callback_verbose
from onnxtrain.callbacks._monitored import EarlyStoppingMode, _Monitor, check_count
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.optimizers import LearningRateSchedule, Optimizer
from onnxtrain.progress import print_once


def log_learning_rate(callback: Callback, logs: Logs | None) -> None:
    """Add the current rate to the epoch's logs as `learning_rate` (Keras' key), where the History reads it."""
    if isinstance(logs, MutableMapping):
        logs["learning_rate"] = float(callback.model.learning_rate)


def optimizer_schedule(optimizer: Optimizer, callbacks: Sequence[Callback]) -> LearningRateSchedule | None:
    """The optimizer's learning-rate schedule, which `fit` calls before each update, or None for a fixed rate.

    Raises:
        InvalidArgumentError: a LearningRateScheduler or ReduceLROnPlateau is among `callbacks` too: both would set
            the rate (Keras refuses the callback's first change, with a TypeError).
    """
    schedule = optimizer.learning_rate
    if not isinstance(schedule, LearningRateSchedule):
        return None
    setters = [type(c).__name__ for c in callbacks if isinstance(c, LearningRateScheduler | ReduceLROnPlateau)]
    if setters:
        raise InvalidArgumentError(
            f"fit: {', '.join(setters)} sets the learning rate, but the optimizer's learning_rate is the schedule "
            f"{schedule!r}, which sets it before every step. Use one of them: compile with a number as "
            "learning_rate for the callback to change, or leave the callback out."
        )
    return schedule


def _takes_lr(schedule: Callable[..., float]) -> bool:
    """Whether `schedule` is Keras' `schedule(epoch, lr)` rather than `schedule(epoch)`, from its signature."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):  # no readable signature (some builtins and extension types)
        return True
    kinds = [p.kind for p in signature.parameters.values()]
    positional = sum(
        kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for kind in kinds
    )
    takes_lr = positional >= 2 or inspect.Parameter.VAR_POSITIONAL in kinds
    try:
        signature.bind(*[0] * (2 if takes_lr else 1))
    except TypeError as e:
        raise InvalidTypeError(
            "LearningRateScheduler(schedule=...) expects a callable taking (epoch, lr) or (epoch). "
            f"Received: {schedule!r} with signature {signature}"
        ) from e
    return takes_lr


class LearningRateScheduler(Callback):
    """Set the learning rate from `schedule(epoch, lr) -> new_lr` or `schedule(epoch) -> new_lr` before each epoch
    (or step).

    `epoch` is the 1-based epoch number used everywhere in onnxtrain (Keras passes a 0-based index: a Keras
    schedule `epoch < 10` becomes `epoch <= 10`). `lr` is the current rate. Which form `schedule` has is read once
    from its signature; one whose signature cannot be read gets two arguments.

    With `per_step=True`, the schedule is called right before every training step with that step's number: the
    optimizer's updates so far plus one (`Callback.optimizer_steps`), so it counts on across `fit` calls as
    epochs do, continues in a model loaded with its optimizer state, and starts at 1 again after compile() (a
    new optimizer). A Keras `LearningRateSchedule` is called with `optimizer.iterations`, one less: give it (or
    onnxtrain's equal, `onnxtrain.optimizers.schedules`) to the optimizer as its `learning_rate` instead. This
    callback beside an optimizer with a schedule is refused at the start of `fit`, as Keras refuses it.

    At each epoch's end the rate is added to the logs as `learning_rate` (as Keras does), so the History and a
    CSVLogger placed after this callback record it.

    Example:
        >>> LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 5 else lr)  # doctest: +SKIP
        >>> LearningRateScheduler(lambda epoch: 0.01 if epoch <= 10 else 0.001)  # doctest: +SKIP
    """

    adds_log_keys = ("learning_rate",)

    def __init__(
        self,
        schedule: Callable[[int, float], float] | Callable[[int], float],
        per_step: bool = False,
        verbose: int = 0,
    ):
        if not callable(schedule):
            raise InvalidTypeError(f"LearningRateScheduler(schedule=...) expects a callable. Received: {schedule!r}")
        self.verbose = check_callback_verbose("LearningRateScheduler", verbose)
        self.schedule: Callable[..., float] = schedule
        self._takes_lr = _takes_lr(schedule)
        self.per_step = check_bool("LearningRateScheduler", "per_step", per_step)

    @property
    def wants_batch_begin(self) -> bool:
        return self.per_step or _overrides(self, "on_train_batch_begin", "on_batch_begin", since=LearningRateScheduler)

    def _apply(self, count: int, unit: str) -> None:
        lr = self.schedule(count, self.model.learning_rate) if self._takes_lr else self.schedule(count)
        if isinstance(lr, np.floating | np.integer):
            lr = float(lr)
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr < 0:
            raise InvalidArgumentError(
                f"LearningRateScheduler's schedule must return a finite number >= 0. Received: {lr!r} at {unit} {count}"
            )
        self.model.learning_rate = float(lr)
        if self.verbose:
            print_once(f"LearningRateScheduler: {unit} {count}, learning rate {lr:.6g}")

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if not self.per_step:
            self._apply(epoch, "epoch")

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        if self.per_step:  # right before the step: no call for a step that never comes
            self._apply(self.optimizer_steps + 1, "step")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        log_learning_rate(self, logs)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved for `patience` epochs: Keras 3's
    arguments, defaults and rules.

    Args:
        monitor: the figure to watch, e.g. "val_loss" (default), "loss", "val_accuracy".
        factor: new_lr = lr * factor, with 0 < factor < 1.
        patience: reduce after this many epochs in a row without improvement (0 and 1 both reduce at the first).
        verbose: 1 prints each reduction.
        mode: "min", "max" or "auto" (the loss min, a compiled metric by its direction, anything else refused
            when fit starts), as in EarlyStopping (an `EarlyStoppingMode` too).
        min_delta: an epoch improves when it beats the best so far by more than this.
        cooldown: epochs after a reduction during which no epoch counts as not improving.
        min_lr: the rate is never reduced below this (nor at all once it is there).

    Each epoch's end adds the rate it trained with, before any reduction, to the logs as `learning_rate` (as
    Keras does). The best value, the wait and the cooldown start afresh in each `fit`; the first epoch is always
    the best so far (a NaN included, after which nothing improves). A `monitor` that the fit's epoch logs will
    not hold is refused when `fit` starts, before its first step (Keras warns).

    Example:
        >>> model.fit(train, epochs=50, validation_split=0.1,
        ...           callbacks=[ReduceLROnPlateau(factor=0.2, patience=5, min_lr=1e-4)])  # doctest: +SKIP
    """

    adds_log_keys = ("learning_rate",)

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str | EarlyStoppingMode = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **unknown: Any,
    ):
        refuse_unknown("ReduceLROnPlateau", unknown, ReduceLROnPlateau.__init__, renamed={})  # KotlinDL's minLr, ...
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        scale = as_real(factor)
        if scale is None or not 0 < scale < 1:
            raise InvalidArgumentError(
                f"ReduceLROnPlateau(factor=...) expects a number between 0 and 1 (new_lr = lr * factor). "
                f"Received: factor={factor!r}"
            )
        floor = as_real(min_lr)
        if floor is None or not 0 <= floor < math.inf:
            raise InvalidArgumentError(
                f"ReduceLROnPlateau(min_lr=...) expects a finite number >= 0. Received: min_lr={min_lr!r}"
            )
        self.monitor, self.min_delta = monitor, self._monitor.min_delta
        self.factor, self.min_lr = scale, floor
        self.patience = check_count("ReduceLROnPlateau", "patience", patience)
        self.cooldown = check_count("ReduceLROnPlateau", "cooldown", cooldown)
        self.verbose = check_callback_verbose("ReduceLROnPlateau", verbose)
        self.on_train_begin()

    @property
    def mode(self) -> str:
        """ "min" or "max"; "auto" (a figure other than the loss) until fit starts and reads the direction."""
        return self._monitor.mode

    def log_keys_read(self) -> list[tuple[str, str]]:
        return [self._monitor.read()]

    def check_fit_start(self, directions: Mapping[str, str]) -> None:
        self._monitor.resolve(directions)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        log_learning_rate(self, logs)
        value = self._monitor.value(logs)
        if value is None:  # an epoch without validation (validation_freq)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._monitor.improves(value, self.best):
            self.best, self.wait = value, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, epoch: int) -> bool:
        """Lower the rate unless it is at `min_lr` already; whether it did. Compared in float32, the precision
        the rate is applied in (Keras' variable's)."""
        old = float(self.model.learning_rate)
        if not np.float32(old) > np.float32(self.min_lr):
            return False
        new = max(old * self.factor, self.min_lr)
        self.model.learning_rate = new
        if self.verbose:
            print_once(f"Epoch {epoch}: ReduceLROnPlateau reducing learning rate to {new:.6g}.")
        return True
