"""Callbacks that watch one figure of the epoch logs (EarlyStopping, ModelCheckpoint) and the _Monitor they share."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain.callbacks._callback import Callback, Logs, logger
from onnxtrain.errors import InvalidArgumentError


class _Monitor:
    """A watched figure ("val_loss"), the direction that counts as better, and the best value seen."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float = 0.0):
        if not isinstance(monitor, str) or not monitor:
            raise InvalidArgumentError(
                f"{owner}(monitor=...) expects a log key such as 'val_loss'. Received: {monitor!r}"
            )
        if mode not in ("auto", "min", "max"):
            raise InvalidArgumentError(f"{owner}(mode=...) expects 'auto', 'min' or 'max'. Received: mode={mode!r}")
        delta = as_real(min_delta)
        if delta is None or not 0 <= delta < math.inf:
            raise InvalidArgumentError(
                f"{owner}(min_delta=...) expects a finite number >= 0. Received: min_delta={min_delta!r}"
            )
        if mode == "auto":  # accuracy, of the model or of one output (`kind_accuracy`), grows; the rest shrink
            key = monitor.removeprefix("val_")
            mode = "max" if key in ("accuracy", "acc") or key.endswith(("_accuracy", "_acc")) else "min"
        self.owner, self.monitor, self.mode, self.min_delta = owner, monitor, mode, delta
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: Logs | None) -> float:
        logs = logs or {}
        if self.monitor not in logs:
            hint = " Pass validation=... or validation_split=... to fit." if self.monitor.startswith("val_") else ""
            raise InvalidArgumentError(
                f"{self.owner}(monitor={self.monitor!r}) found no such figure; the epoch logs have "
                f"{sorted(logs)}." + hint
            )
        return float(logs[self.monitor])

    def improves(self, value: float) -> bool:
        """Better than the best by more than min_delta (NaN never improves)."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    Args:
        monitor: the figure to watch, e.g. "val_loss" (default), "loss", "val_accuracy".
        min_delta: the smallest change that counts as an improvement.
        patience: stop after this many epochs in a row without improvement (0 and 1 both stop at the first).
        mode: "min", "max" or "auto" (max for accuracy, an output's too, e.g. "val_kind_accuracy"; min otherwise).
        baseline: a value the figure must beat; until it does, epochs count as not improving.
        restore_best_weights: at the end of training, put back the weights of the best epoch (whether or not
            training stopped early).

    After `fit`, `stopped_epoch` is the epoch at which it stopped training (0 when it did not) and
    `best_epoch` the best epoch seen. A missing `monitor` raises InvalidArgumentError at the end of the first
    epoch.

    Example:
        >>> model.fit(train, epochs=100, validation_split=0.1,
        ...           callbacks=[EarlyStopping(patience=3, restore_best_weights=True)])  # doctest: +SKIP
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
    ):
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int | np.integer) or patience < 0:
            raise InvalidArgumentError(
                f"EarlyStopping(patience=...) expects an int >= 0. Received: patience={patience!r}"
            )
        limit = as_real(baseline)
        if baseline is not None and (limit is None or not math.isfinite(limit)):
            raise InvalidArgumentError(
                f"EarlyStopping(baseline=...) expects a finite number or None. Received: baseline={baseline!r}"
            )
        self.monitor, self.mode = monitor, self._monitor.mode
        self.patience = int(patience)
        self.baseline = limit
        self.restore_best_weights = check_bool("EarlyStopping", "restore_best_weights", restore_best_weights)
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None
        self._monitor.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self._monitor.best = self.baseline

    @property
    def best(self) -> float:
        return self._monitor.best

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._monitor.value(logs)
        if self._monitor.improves(value):
            self._monitor.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            logger.info(
                "EarlyStopping restored the weights of epoch %d (%s=%.4f).",
                self.best_epoch,
                self.monitor,
                self.best,
            )


class ModelCheckpoint(Callback):
    """Save the model at the end of each epoch (crash-safely, via `model.save`).

    Args:
        directory: where to save; may contain format fields of the epoch and its figures, e.g.
            "checkpoints/epoch-{epoch:02d}-{val_loss:.3f}"; without fields one directory is replaced.
        monitor / mode / min_delta: the figure that decides "best" (with `save_best_only`).
        save_best_only: save only when `monitor` improves on the best so far.
        save_optimizer_state: include the optimizer state, so training can resume exactly.

    `last_saved` holds the directory written last (or None).
    """

    def __init__(
        self,
        directory: str | Path,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        min_delta: float = 0.0,
        save_optimizer_state: bool = False,
    ):
        if not isinstance(directory, str | Path) or not str(directory):
            raise InvalidArgumentError(f"ModelCheckpoint(directory=...) expects a path. Received: {directory!r}")
        self.directory = str(directory)
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, min_delta)
        self.monitor = monitor
        self.save_best_only = check_bool("ModelCheckpoint", "save_best_only", save_best_only)
        self.save_optimizer_state = check_bool("ModelCheckpoint", "save_optimizer_state", save_optimizer_state)
        self.last_saved: Path | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        # The best value persists across fit calls, like the model being trained.
        self.last_saved = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            value = self._monitor.value(logs)
            if not self._monitor.improves(value):
                return
            self._monitor.best = value
        try:
            target = Path(self.directory.format(epoch=epoch, **logs))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:  # the field, its format
            raise InvalidArgumentError(
                f"ModelCheckpoint(directory={self.directory!r}) has a field the epoch logs cannot "
                f"fill ({e}); available: {['epoch', *logs]}."
            ) from e
        self.last_saved = self.model.save(
            target, writing_mode="override", save_optimizer_state=self.save_optimizer_state
        )
