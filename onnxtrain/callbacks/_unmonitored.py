"""The stock callbacks that watch no monitored figure and set no learning rate: `TerminateOnNaN`, `CSVLogger` and
`TimeStopping`."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from onnxtrain._checks import as_real, check_bool
from onnxtrain.callbacks._base import Callback, Logs, _overrides, check_callback_verbose, logger
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.progress import log_once, print_once


class TerminateOnNaN(Callback):
    """Stop training gracefully when the loss becomes NaN or infinite.

    Without this callback, `fit` raises NonFiniteLossError naming the epoch and batch. With it, `fit` stops
    after that batch, records the epoch (its `loss` is the non-finite value) and returns the History normally;
    the other callbacks' `on_epoch_end`/`on_train_end` still run. Either way the weights are those of the last
    finite step (a non-finite loss skips the update), unless that step's own update overflowed them (NaN weights,
    which save refuses; NonFiniteLossError says so). `stopped_at` holds (epoch, batch), or None.

    `fit` hands the failing batch to `on_batch_end` even though this callback asks for no per-batch figures,
    so it costs nothing per step.
    """

    @property
    def wants_batches(self) -> bool:
        # fit calls the batch-end hooks for a non-finite loss anyway; only a subclass's own end hook needs more.
        return _overrides(self, "on_train_batch_end", "on_batch_end", since=TerminateOnNaN)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.stopped_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss", 0.0)
        if not math.isfinite(loss):
            self.stopped_at = (self._epoch, batch)
            log_once(logger, logging.WARNING, "Epoch %d, batch %d: the loss is %s; stopping training.", self._epoch,
                     batch, loss)  # fmt: skip
            self.model.stop_training = True


class CSVLogger(Callback):
    """Append one row per epoch (`epoch`, then the figures) to a CSV file, flushed every epoch.

    The file reads back with `History.from_csv`. With `append=True` an existing file is continued under its
    header (figures it lacks are dropped, figures missing from the logs are written as nan); otherwise the
    file is replaced when training begins. The columns are Keras 3's: those of the first epoch logged, sorted by
    name (a `learning_rate` a callback before this one adds among them); where that epoch logged no "val_" figure
    (no validation, or a `validation_freq` that skips it), a "val_" column for each of them follows (Keras' rule:
    for every one, `val_learning_rate` too), so that the later epochs' validation figures have a place (those an
    epoch lacks are written as nan, Keras' "NA"). `History.from_csv` leaves out a "val_" column that holds no
    value, so the file of a fit without validation reads back equal to its History.
    """

    def __init__(self, path: str | Path, append: bool = False):
        if not isinstance(path, str | Path) or not str(path):
            raise InvalidArgumentError(f"CSVLogger(path=...) expects a file path. Received: {path!r}")
        if Path(path).is_dir():
            raise InvalidArgumentError(
                f"CSVLogger(path=...) expects a file path. Received: {str(path)!r}, which is a directory: "
                f"name a file in it, e.g. CSVLogger({str(Path(path) / 'history.csv')!r})"
            )
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
            keys = sorted(logs)
            if not any(key.startswith("val_") for key in keys):
                keys += [f"val_{key}" for key in keys]
            self._keys = keys
            lines.append(",".join(["epoch", *self._keys]))
        lines.append(",".join([str(epoch), *(repr(float(logs.get(k, math.nan))) for k in self._keys)]))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


class TimeStopping(Callback):
    """Stop training at the end of the first epoch that ends after `seconds` since training began.

    Epochs are never cut short, so the run can exceed `seconds` by up to one epoch. `stopped_epoch` is the
    epoch after which it stopped training (0 when it did not). KotlinDL's and TensorFlow Addons' arguments and
    defaults: `seconds=86400` (a day), and `verbose` (1 or True prints, when training ends, the epoch at which it
    stopped).
    """

    def __init__(self, seconds: float = 86400, verbose: int = 0, clock: Callable[[], float] = time.monotonic):
        limit = as_real(seconds)
        if limit is None or not limit > 0:
            raise InvalidArgumentError(
                f"TimeStopping(seconds=...) expects a positive number. Received: seconds={seconds!r}"
            )
        self.seconds, self._clock = limit, clock
        self.verbose = check_callback_verbose("TimeStopping", verbose)
        self.stopped_epoch = 0
        self._deadline = math.inf

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.stopped_epoch = 0
        self._deadline = self._clock() + self.seconds

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self._clock() >= self._deadline:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            log_once(
                logger, logging.INFO, "TimeStopping: %.1f s elapsed; stopping after epoch %d.", self.seconds, epoch
            )

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print_once(f"Timed stopping at epoch {self.stopped_epoch} after training for {self.seconds:g} seconds.")
