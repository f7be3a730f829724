"""The Callback contract, the CallbackList that dispatches to it, and the stock callbacks that watch no figure and
set no learning rate."""

from __future__ import annotations

import logging
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain.callbacks._hooks import UNCALLED_ADVICE, UNCALLED_HOOKS, check_hooks
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.progress import log_once, print_once

Logs = Mapping[str, float]
"""What the hooks get as `logs`. At an epoch's end it is one dict that fit hands to every callback in order, so a
callback may add a figure to it (as LearningRateScheduler and ReduceLROnPlateau add `learning_rate`, like Keras'):
the History and the callbacks after it see it. The progress line is printed before the callbacks run, so that what
they print follows it, and shows only fit's own figures."""
logger = logging.getLogger("onnxtrain")


class CallbackModel(Protocol):
    """What the stock callbacks use of the model being trained (a `Sequential`, which a callback's `self.model`
    is): the flag that stops `fit`, the learning rate, the weights, `save` and `save_weights`."""

    stop_training: bool

    @property
    def learning_rate(self) -> float: ...

    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...

    def get_weights(self) -> dict[str, np.ndarray]: ...

    def set_weights(self, weights: Mapping[str, Any] | Sequence[Any]) -> None: ...

    def save(self, directory: str | Path, writing_mode: Any = ..., save_optimizer_state: bool = ...) -> Path: ...

    def save_weights(self, path: str | Path, overwrite: bool = ...) -> Path: ...


class Callback:
    """Base class: override any hook. `self.model` is the model being trained; set
    `self.model.stop_training = True` to stop after the current batch or epoch.

    The batch hooks are Keras': `on_train_batch_begin` and `on_train_batch_end`, with `on_batch_begin` and
    `on_batch_end` as their aliases (the `on_train_batch_*` defaults call them), so a callback overriding either
    spelling is called once per batch. Batches are numbered from 1 in each epoch; begin gets no logs, end gets
    the running loss and metrics of the epoch. Keras' test and predict hooks are never called (a warning says so).
    `fit` refuses, before its first step, a hook it could not call as written: one under KotlinDL's camelCase name
    (`onEpochEnd`), or one whose signature cannot take Keras' arguments (KotlinDL's `on_epoch_end(epoch, event, logs)`).

    Overriding an end hook makes `fit` compute running figures every batch (a microsecond or so per step);
    a subclass can opt out by setting `wants_batches = False` while a flag of its own leaves that hook idle.

    During `fit`, `self.params` is Keras' {"verbose": ..., "epochs": ..., "steps": ...} of the call (epochs asked
    for, batches per epoch), and `self.optimizer_steps` the updates the optimizer has made so far.
    """

    model: CallbackModel
    params: Mapping[str, Any] = MappingProxyType({})
    _optimizer_steps: Callable[[], int] | None = None
    adds_log_keys: ClassVar[tuple[str, ...]] = ()  # what a stock callback adds to the epoch logs (learning_rate)

    def set_model(self, model: CallbackModel) -> None:
        self.model = model

    def set_params(self, params: Mapping[str, Any]) -> None:
        self.params = params

    def set_optimizer_steps(self, counter: Callable[[], int]) -> None:
        """Where `optimizer_steps` reads from (fit passes its trainer's count)."""
        self._optimizer_steps = counter

    @property
    def optimizer_steps(self) -> int:
        """The updates the optimizer has made so far, counted across `fit` calls: Keras'
        `self.model.optimizer.iterations`. It starts at 0 with each new optimizer (compile), and a model loaded
        with its optimizer state continues the saved count (engine="portable"; "ort-training" restarts at 0). A
        non-finite loss makes no update and is not counted. 0 outside `fit`."""
        return self._optimizer_steps() if self._optimizer_steps is not None else 0

    def log_keys_read(self) -> list[tuple[str, str]]:
        """The epoch-log keys this callback reads at an epoch's end, each as (key, how the callback names it), e.g.
        ("val_loss", "EarlyStopping(monitor='val_loss')"). Before its first step `fit` refuses a key that its epoch
        logs will not hold (`check_log_keys`); a callback of one's own may override this to be checked too. None
        here."""
        return []

    def check_fit_start(self, directions: Mapping[str, str]) -> None:
        """Called by `fit` before its first step, once the keys of `log_keys_read` have passed, in every process of
        a data-parallel fit: refuse here what would otherwise fail only after an epoch (a path a callback cannot
        write). `directions` says which way each figure of the epoch logs improves, "up" or "down" by key (val_
        keys too), as Keras' metrics' `_direction`: the losses down, each compiled metric by its kind; the stock
        callbacks in mode "auto" take theirs from it (and refuse a figure it does not name). Nothing here."""

    def log_keys_added(self) -> tuple[str, ...] | None:
        """The keys this callback adds to the epoch logs, which the callbacks after it may read; None where that is
        unknown: a subclass's own `on_epoch_end` may add any."""
        stock = next(c for c in type(self).__mro__ if issubclass(c, Callback) and c.__module__.startswith("onnxtrain."))
        return None if _overrides(self, "on_epoch_end", since=stock) else stock.adds_log_keys

    @property
    def wants_batches(self) -> bool:
        """Whether `fit` must call the batch-end hooks with running figures (one of them is overridden)."""
        return _overrides(self, "on_train_batch_end", "on_batch_end")

    @property
    def wants_batch_begin(self) -> bool:
        """Whether `fit` must call the batch-begin hooks (one of them is overridden)."""
        return _overrides(self, "on_train_batch_begin", "on_batch_begin")

    def on_train_begin(self, logs: Logs | None = None) -> None: ...

    def on_train_end(self, logs: Logs | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None: ...

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...


def _overrides(callback: Callback, *hooks: str, since: type[Callback] = Callback) -> bool:
    """Whether `callback`'s class overrides one of `hooks` as `since` (a base class of it) has them."""
    return any(getattr(type(callback), hook) is not getattr(since, hook) for hook in hooks)


def _warn_about_uncalled_hooks(callback: Callback) -> None:
    hooks = [hook for hook in UNCALLED_HOOKS if callable(getattr(callback, hook, None))]  # a LambdaCallback's too
    if hooks:
        warnings.warn(
            f"Callback {type(callback).__name__} overrides {', '.join(hooks)}, which onnxtrain never calls: "
            + UNCALLED_ADVICE,
            UserWarning,
            stacklevel=5,  # the user's fit call: Sequential.fit -> Trainer.fit -> CallbackList -> here
        )


def _dict(logs: Logs | None) -> Logs:
    """A hook's logs as Keras passes them: a dict, empty where there are none (a begin hook's)."""
    return {} if logs is None else logs


class CallbackList:
    """Calls every callback's hook in order, with `logs` a dict (empty for the begin hooks), as Keras' does.

    Args:
        callbacks: a Callback, a sequence or set of them, or None.
        model: what the callbacks' `self.model` is.
        params: Keras' `params` of the fit call, given to each callback (`Callback.set_params`).
        optimizer_steps: reads the optimizer's update count (`Callback.optimizer_steps`).
    """

    def __init__(
        self,
        callbacks: Sequence[Callback] | Callback | None,
        model: CallbackModel,
        params: Mapping[str, Any] | None = None,
        optimizer_steps: Callable[[], int] | None = None,
    ):
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif callbacks is None:
            callbacks = []
        elif isinstance(callbacks, str | bytes) or not isinstance(callbacks, Sequence | set):
            raise InvalidTypeError(f"callbacks expects a list of Callback instances. Received: callbacks={callbacks!r}")
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise InvalidTypeError(f"callbacks expects Callback instances. Received: callbacks[{i}]={callback!r}")
            callback.set_model(model)
            if params is not None:
                callback.set_params(params)
            if optimizer_steps is not None:
                callback.set_optimizer_steps(optimizer_steps)
            _warn_about_uncalled_hooks(callback)
        self.callbacks = list(callbacks)
        # Only pay for per-batch calls and logs when a callback actually uses a batch hook.
        self.wants_batches = any(c.wants_batches for c in self.callbacks)
        self.wants_batch_begin = any(c.wants_batch_begin for c in self.callbacks)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        logs = _dict(logs)
        for c in self.callbacks:
            c.on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        logs = _dict(logs)
        for c in self.callbacks:
            c.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        logs = _dict(logs)
        for c in self.callbacks:
            c.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = _dict(logs)
        for c in self.callbacks:
            c.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Call every callback's `on_train_batch_begin` (which by default calls its `on_batch_begin`)."""
        logs = _dict(logs)
        for c in self.callbacks:
            c.on_train_batch_begin(batch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Call every callback's `on_train_batch_end` (which by default calls its `on_batch_end`)."""
        logs = _dict(logs)
        for c in self.callbacks:
            c.on_train_batch_end(batch, logs)

    on_train_batch_begin = on_batch_begin
    on_train_batch_end = on_batch_end


def check_log_keys(callbacks: Any, logged: Sequence[str], validating: bool) -> None:
    """Refuse, before fit's first step, a key a callback reads (`Callback.log_keys_read`) that the epoch logs
    will not hold: none of `logged` (fit's own keys; `validating`: whether they include the val_ ones) nor a key a
    callback before it adds. After a callback that may add any key, nothing is checked. `callbacks` as fit takes
    them, before a data-parallel fit leaves out those that write files (so every process refuses alike); what is
    not a Callback is left to `CallbackList` to refuse.

    Raises:
        InvalidArgumentError: naming the callback's argument, the keys the logs will hold and the fix.
    """
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Sequence | set):
        return
    available = list(logged)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            continue
        for key, reader in callback.log_keys_read():
            if key not in available:
                raise InvalidArgumentError(_missing_key(reader, key, available, validating))
        added = callback.log_keys_added()
        if added is None:
            return
        available += [key for key in added if key not in available]


def check_fit_start(callbacks: Any, directions: Mapping[str, str]) -> None:
    """Before fit's first step, refuse a callback whose hooks fit could not call as written (`check_hooks`: a
    KotlinDL camelCase name, a signature that cannot take Keras' arguments), then call every callback's
    `check_fit_start` with the figures' `directions`, in order (`callbacks` as `check_log_keys` takes them)."""
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Sequence | set):
        return
    callbacks = [callback for callback in callbacks if isinstance(callback, Callback)]
    for callback in callbacks:
        check_hooks(callback)
    for callback in callbacks:
        callback.check_fit_start(MappingProxyType(dict(directions)))


def _missing_key(reader: str, key: str, available: list[str], validating: bool) -> str:
    """fit's refusal of `key`, which `reader` (a callback's argument) reads and the epoch logs will not hold."""
    problem = f"fit: {reader} reads {key!r}, which this fit's epoch logs will not hold: they hold {sorted(available)}."
    if key.startswith("val_") and not validating:
        instead = key.removeprefix("val_") if key.removeprefix("val_") in available else "loss"
        fix = (
            "The val_ figures need validation data: pass validation=(x_val, y_val) (Keras: validation_data=...) or "
            f"validation_split=0.2 to fit, or {'monitor' if '(monitor=' in reader else 'use'} {instead!r}."
        )
    else:
        fix = (
            "Name one of those: a metric is logged under the name compile was given it (metrics=['acc'] logs 'acc', "
            "and 'val_acc' with validation data)."
        )
    return f"{problem} {fix} Nothing was trained."


def check_callback_verbose(owner: str, verbose: object) -> int:
    """A callback's `verbose` as an int: an int >= 0 or a bool (numpy's too)."""
    if not isinstance(verbose, bool | np.bool_ | numbers.Integral) or verbose < 0:
        raise InvalidArgumentError(f"{owner}(verbose=...) expects an int >= 0 or a bool. Received: verbose={verbose!r}")
    return int(verbose)


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
    file is replaced when training begins. The columns are those of the first epoch logged.
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
            self._keys = list(logs)
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
