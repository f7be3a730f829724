"""EarlyStopping, KotlinDL's EarlyStoppingMode, and the _Monitor that every callback watching one figure of the
epoch logs shares (ReduceLROnPlateau, in `_learning_rate`, and ModelCheckpoint, in `_model_checkpoint`, use it)."""

from __future__ import annotations

import enum
import logging
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain._keyword_arguments import refuse_unknown
from onnxtrain.callbacks._callback import Callback, Logs, check_callback_verbose, logger
from onnxtrain.errors import InvalidArgumentError, ModelStateError
from onnxtrain.progress import log_once, print_once


class EarlyStoppingMode(enum.Enum):
    """KotlinDL's modes of EarlyStopping, taken by every callback's `mode` (as are the strings "auto", "min" and
    "max", in any case): MIN and MAX say which direction improves; AUTO is Keras 3's rule (a loss shrinks, a
    compiled metric improves as it says), which `_Monitor.resolve` applies when fit starts."""

    AUTO = "auto"
    MIN = "min"
    MAX = "max"


class _Monitor:
    """A watched figure ("val_loss") and the direction that counts as better, with Keras' rules for "better" and for
    mode "auto": a loss shrinks, and any other figure improves as its compiled metric says (Keras' `_direction`),
    which `resolve` reads when fit starts."""

    def __init__(self, owner: str, monitor: str, mode: str | EarlyStoppingMode, min_delta: float = 0.0):
        if not isinstance(monitor, str) or not monitor:
            raise InvalidArgumentError(
                f"{owner}(monitor=...) expects a log key such as 'val_loss'. Received: {monitor!r}"
            )
        given = mode
        mode = mode.value if isinstance(mode, EarlyStoppingMode) else mode.lower() if isinstance(mode, str) else mode
        if mode not in ("auto", "min", "max"):
            raise InvalidArgumentError(
                f"{owner}(mode=...) expects 'auto', 'min' or 'max' (any case), or an EarlyStoppingMode. "
                f"Received: mode={given!r}"
            )
        delta = as_real(min_delta)
        if delta is None or not 0 <= delta < math.inf:
            raise InvalidArgumentError(
                f"{owner}(min_delta=...) expects a finite number >= 0. Received: min_delta={min_delta!r}"
            )
        self.owner, self.monitor, self.min_delta = owner, monitor, delta
        self.auto = mode == "auto"
        # "auto" until fit says which way the figure improves (`resolve`); the loss is known to shrink already
        self.mode: str = "min" if self.auto and monitor.removeprefix("val_") == "loss" else str(mode)

    def resolve(self, directions: Mapping[str, str]) -> None:
        """In mode "auto", take the direction from `directions` (fit's, at its start: "up" or "down" by log key,
        `Callback.check_fit_start`); a loss (`loss`, an output's `<name>_loss`) shrinks.

        Raises:
            InvalidArgumentError: nothing says which way the figure improves (a figure a callback adds, a metric of
                one's own without a direction): Keras' refusal and advice, mode='max' or mode='min'.
        """
        if not self.auto:
            return
        direction = directions.get(self.monitor)
        figure = self.monitor.removeprefix("val_")
        if direction is None and (figure == "loss" or figure.endswith("_loss")):
            direction = "down"
        if direction not in ("up", "down"):
            raise InvalidArgumentError(
                f"fit: {self.owner}(monitor={self.monitor!r}) has mode 'auto', but nothing says whether "
                f"{self.monitor!r} should be maximized or minimized: it is neither a loss nor a compiled metric that "
                "knows its direction (a figure a callback adds, or a metric of one's own). Pass mode='max' to "
                "monitor its highest value, or mode='min' for its lowest. Nothing was trained."
            )
        self.mode = "max" if direction == "up" else "min"

    def value(self, logs: Logs | None) -> float | None:
        """The monitored figure of the epoch's `logs`; None for a validation figure on an epoch fit did not validate
        (`validation_freq`; fit's start refuses a val_ monitor without validation data), which the callback skips,
        as Keras' callbacks skip an epoch whose figure is not available.

        Raises:
            InvalidArgumentError: the logs have no such figure (a name the model does not log).
        """
        logs = logs or {}
        if self.monitor not in logs:
            if self.monitor.startswith("val_") and not any(key.startswith("val_") for key in logs):
                return None
            raise InvalidArgumentError(  # a name the model does not log: metrics are logged as compile named them
                f"{self.owner}(monitor={self.monitor!r}) found no such figure; the epoch logs have "
                f"{sorted(logs)}. Monitor one of those: a metric is logged under the name compile was given it "
                "(metrics=['acc'] logs 'acc' and 'val_acc')."
            )
        return float(logs[self.monitor])

    def read(self) -> tuple[str, str]:
        """The monitored key and its owner's argument, as `Callback.log_keys_read` gives them."""
        return self.monitor, f"{self.owner}(monitor={self.monitor!r})"

    def improves(self, value: float, reference: float | None) -> bool:
        """Better than `reference` by more than min_delta. As in Keras, anything improves on None (no value yet,
        a NaN included), and nothing improves on NaN.

        Raises:
            ModelStateError: mode "auto" not resolved yet (the hooks called outside fit).
        """
        if reference is None:
            return True
        if self.mode == "auto":
            raise ModelStateError(
                f"{self.owner}(monitor={self.monitor!r}, mode='auto') learns which way {self.monitor!r} improves when "
                "fit starts (check_fit_start); outside fit, pass mode='min' or mode='max'."
            )
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta


def check_count(owner: str, arg: str, value: object) -> int:
    """`value` as an int >= 0 (numpy integers too); InvalidArgumentError naming it otherwise."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or value < 0:
        raise InvalidArgumentError(f"{owner}({arg}=...) expects an int >= 0. Received: {arg}={value!r}")
    return int(value)


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by more than `min_delta` for `patience` epochs: Keras 3's
    rules, with onnxtrain's 1-based epoch numbers.

    Args:
        monitor: the figure to watch, e.g. "val_loss" (default), "loss", "val_accuracy".
        min_delta: the smallest change that counts as an improvement.
        patience: stop after this many epochs in a row without improvement (0 and 1 both stop at the first).
        verbose: 1 prints when it stops and when it restores weights.
        mode: "min", "max" or "auto" (Keras 3's rule: min for a loss, "loss" or an output's "kind_loss"; for a
            compiled metric, its direction: max for accuracies, precision, recall, AUC and F-scores, min for
            errors such as "mae"; any other figure is refused when fit starts: pass "min" or "max"), in any case,
            or KotlinDL's `EarlyStoppingMode.AUTO`, `MIN`, `MAX`.
        baseline: a value the figure must beat. The best value is still tracked from the first epoch, but the
            patience count restarts only at an epoch that beats both the baseline and the best so far; so if no
            epoch beats the baseline, training stops at the first epoch without improvement once `patience`
            epochs have run (while the figure keeps improving it never stops).
        restore_best_weights: at the end of training, put back the weights of the best epoch, whether or not
            training stopped early and whether or not that epoch beat the baseline.
        start_from_epoch: epochs numbered up to this one are not watched (a warm-up). Epoch numbers count on
            across `fit` calls, so this counts the model's epochs, as Keras' does from `initial_epoch`.

    The first epoch watched is always the best so far (so training never stops right after it), even when its
    figure is NaN, after which nothing improves (Keras' rule). `wait`, `best` (None before the first epoch
    watched), `best_epoch`, `stopped_epoch` and the best weights start afresh in each `fit`.

    After `fit`, `stopped_epoch` is the epoch after which it stopped training (0 when it did not) and
    `best_epoch` the best epoch watched (0 when none was). Both are onnxtrain's 1-based epoch numbers; Keras'
    are 0-based indices, one less (its message "Epoch 5: early stopping" is `stopped_epoch == 4` there, 5 here).
    A `monitor` that the fit's epoch logs will not hold ("val_loss" without validation data, a metric compile was
    not given) is refused when `fit` starts, before its first step (Keras warns, then ignores it).

    Example:
        >>> model.fit(train, epochs=100, validation_split=0.1,
        ...           callbacks=[EarlyStopping(patience=3, restore_best_weights=True)])  # doctest: +SKIP
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str | EarlyStoppingMode = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        **unknown: Any,
    ):
        refuse_unknown("EarlyStopping", unknown, EarlyStopping.__init__, renamed={})  # KotlinDL's minDelta, ...
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience = check_count("EarlyStopping", "patience", patience)
        self.verbose = check_callback_verbose("EarlyStopping", verbose)
        limit = as_real(baseline)
        if baseline is not None and (limit is None or not math.isfinite(limit)):
            raise InvalidArgumentError(
                f"EarlyStopping(baseline=...) expects a finite number or None. Received: baseline={baseline!r}"
            )
        self.monitor = monitor
        self.baseline = limit
        self.restore_best_weights = check_bool("EarlyStopping", "restore_best_weights", restore_best_weights)
        self.start_from_epoch = check_count("EarlyStopping", "start_from_epoch", start_from_epoch)
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
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if epoch <= self.start_from_epoch:
            return
        value = self._monitor.value(logs)
        if value is None:  # an epoch without validation (validation_freq)
            return
        # Keras counts the epoch first: an improvement that does not beat the baseline leaves it counted.
        self.wait += 1
        if self._monitor.improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._monitor.improves(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print_once(f"Epoch {self.stopped_epoch}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            message = f"Restoring model weights from the end of the best epoch: {self.best_epoch}."
            if self.verbose:
                print_once(message)
            else:
                log_once(logger, logging.INFO, "EarlyStopping: %s", message)
            self.model.set_weights(self.best_weights)
