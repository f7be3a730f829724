"""Callbacks: hooks into `fit` (Keras' contract), the list that dispatches to them, and the stock callbacks.

Epochs are numbered from 1 and keep counting across `fit` calls (as in the History); batches from 1 per epoch.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.model import Sequential

Logs = Mapping[str, float]
logger = logging.getLogger("onnxtrain")


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


class Callback:
    """Base class: override any hook. `self.model` is the model being trained; set
    `self.model.stop_training = True` to stop after the current batch or epoch.

    Overriding `on_batch_end` makes `fit` compute running figures every batch (a microsecond or so per step);
    a subclass can opt out by setting `wants_batches = False` while a flag of its own leaves that hook idle.
    """

    model: Sequential

    def set_model(self, model: Sequential) -> None:
        self.model = model

    @property
    def wants_batches(self) -> bool:
        return type(self).on_batch_end is not Callback.on_batch_end

    def on_train_begin(self, logs: Logs | None = None) -> None: ...

    def on_train_end(self, logs: Logs | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks: Sequence[Callback] | Callback | None, model: Sequential):
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, Sequence | set):
            raise InvalidTypeError(f"callbacks expects a list of Callback instances. Received: callbacks={callbacks!r}")
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise InvalidTypeError(f"callbacks expects Callback instances. Received: callbacks[{i}]={callback!r}")
            callback.set_model(model)
        self.callbacks = list(callbacks)
        # Only pay for per-batch logs when a callback actually uses on_batch_end.
        self.wants_batches = any(c.wants_batches for c in self.callbacks)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        for c in self.callbacks:
            c.on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for c in self.callbacks:
            c.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        for c in self.callbacks:
            c.on_epoch_end(epoch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for c in self.callbacks:
            c.on_batch_end(batch, logs)


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
        if mode == "auto":
            mode = "max" if monitor.removeprefix("val_") in ("accuracy", "acc") else "min"
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
        mode: "min", "max" or "auto" (max for accuracy, min otherwise).
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


class TerminateOnNaN(Callback):
    """Stop training gracefully when the loss becomes NaN or infinite.

    Without this callback, `fit` raises NonFiniteLossError naming the epoch and batch. With it, `fit` stops
    after that batch, records the epoch (its `loss` is the non-finite value) and returns the History normally;
    the other callbacks' `on_epoch_end`/`on_train_end` still run. Either way the weights are those of the last
    finite step (a non-finite loss skips the update). `stopped_at` holds (epoch, batch), or None.

    `fit` hands the failing batch to `on_batch_end` even though this callback asks for no per-batch figures,
    so it costs nothing per step.
    """

    wants_batches = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.stopped_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss", 0.0)
        if not math.isfinite(loss):
            self.stopped_at = (self._epoch, batch)
            logger.warning("Epoch %d, batch %d: the loss is %s; stopping training.", self._epoch, batch, loss)
            self.model.stop_training = True


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
        except (KeyError, IndexError, ValueError) as e:
            raise InvalidArgumentError(
                f"ModelCheckpoint(directory={self.directory!r}) has a field the epoch logs cannot "
                f"fill ({e}); available: {['epoch', *logs]}."
            ) from e
        self.last_saved = self.model.save(
            target, writing_mode="override", save_optimizer_state=self.save_optimizer_state
        )


class CSVLogger(Callback):
    """Append one row per epoch (`epoch`, then the figures) to a CSV file, flushed every epoch.

    The file reads back with `History.from_csv`. With `append=True` an existing file is continued under its
    header (figures it lacks are dropped, figures missing from the logs are written as nan); otherwise the
    file is replaced when training begins. The columns are those of the first epoch logged.
    """

    def __init__(self, path: str | Path, append: bool = False):
        if not isinstance(path, str | Path) or not str(path):
            raise InvalidArgumentError(f"CSVLogger(path=...) expects a file path. Received: {path!r}")
        self.path, self.append = Path(path), check_bool("CSVLogger", "append", append)
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._keys = None
        if self.append and self.path.exists() and self.path.stat().st_size:
            with open(self.path, encoding="utf-8") as f:
                header = f.readline().rstrip("\n").split(",")
            if header[0] != "epoch":
                raise InvalidArgumentError(
                    f"CSVLogger(append=True) cannot continue '{self.path}': its header does not start with "
                    "'epoch'. Pick another path or append=False."
                )
            self._keys = header[1:]
        elif not self.append or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        lines = []
        if self._keys is None:
            self._keys = list(logs)
            lines.append(",".join(["epoch", *self._keys]))
        lines.append(",".join([str(epoch), *(repr(float(logs.get(k, math.nan))) for k in self._keys)]))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


class LearningRateScheduler(Callback):
    """Set the learning rate from `schedule(epoch, lr) -> new_lr` or `schedule(epoch) -> new_lr` before each epoch
    (or step).

    `epoch` is the 1-based epoch number used everywhere in onnxtrain (Keras passes a 0-based index: a Keras
    schedule `epoch < 10` becomes `epoch <= 10`). With `per_step=True`, the schedule is called before every
    training step with the step number counted from 1 across the whole `fit` call. `lr` is the current rate.
    Which form `schedule` has is read once from its signature; one whose signature cannot be read gets two
    arguments.

    Example:
        >>> LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 5 else lr)  # doctest: +SKIP
        >>> LearningRateScheduler(lambda epoch: 0.01 if epoch <= 10 else 0.001)  # doctest: +SKIP
    """

    def __init__(
        self,
        schedule: Callable[[int, float], float] | Callable[[int], float],
        per_step: bool = False,
        verbose: int = 0,
    ):
        if not callable(schedule):
            raise InvalidTypeError(f"LearningRateScheduler(schedule=...) expects a callable. Received: {schedule!r}")
        if not isinstance(verbose, bool | np.bool_ | numbers.Integral) or verbose < 0:
            raise InvalidArgumentError(
                f"LearningRateScheduler(verbose=...) expects an int >= 0 or a bool. Received: verbose={verbose!r}"
            )
        self.schedule: Callable[..., float] = schedule
        self._takes_lr = _takes_lr(schedule)
        self.per_step = check_bool("LearningRateScheduler", "per_step", per_step)
        self.verbose = int(verbose)
        self._step = 0

    @property
    def wants_batches(self) -> bool:
        return self.per_step

    def _apply(self, count: int, unit: str) -> None:
        lr = self.schedule(count, self.model.learning_rate) if self._takes_lr else self.schedule(count)
        if isinstance(lr, np.floating | np.integer):
            lr = float(lr)
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
            raise InvalidArgumentError(
                "LearningRateScheduler's schedule must return a positive finite number. "
                f"Received: {lr!r} at {unit} {count}"
            )
        self.model.learning_rate = float(lr)
        if self.verbose:
            print(f"LearningRateScheduler: {unit} {count}, learning rate {lr:.6g}")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._step = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self.per_step:
            if self._step == 0:
                self._step = 1
                self._apply(1, "step")
        else:
            self._apply(epoch, "epoch")

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.per_step:
            self._step += 1
            self._apply(self._step, "step")


class TimeStopping(Callback):
    """Stop training at the end of the first epoch that ends after `seconds` since training began.

    Epochs are never cut short, so the run can exceed `seconds` by up to one epoch. `stopped_epoch` is the
    epoch after which it stopped training (0 when it did not).
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        limit = as_real(seconds)
        if limit is None or not limit > 0:
            raise InvalidArgumentError(
                f"TimeStopping(seconds=...) expects a positive number. Received: seconds={seconds!r}"
            )
        self.seconds, self._clock = limit, clock
        self.stopped_epoch = 0
        self._deadline = math.inf

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.stopped_epoch = 0
        self._deadline = self._clock() + self.seconds

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self._clock() >= self._deadline:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            logger.info("TimeStopping: %.1f s elapsed; stopping after epoch %d.", self.seconds, epoch)


__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "TimeStopping",
]
