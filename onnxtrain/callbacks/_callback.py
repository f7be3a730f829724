"""The CallbackList that dispatches `fit`'s hooks to its callbacks, and fit's checks of the callbacks before its
first step (the epoch-log keys they read, their hooks, `check_fit_start`).

The contract (`Callback`, `CallbackModel`, `Logs`) is `_base`, the stock callbacks without a monitored figure
`_unmonitored`; both are re-exported here, where `onnxtrain.callbacks` and the other stock callbacks import them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from onnxtrain.callbacks._base import Callback, CallbackModel, Logs, sorted_logs
from onnxtrain.callbacks._base import _overrides as _overrides
from onnxtrain.callbacks._base import check_callback_verbose as check_callback_verbose
from onnxtrain.callbacks._base import logger as logger
from onnxtrain.callbacks._hooks import UNCALLED_ADVICE, UNCALLED_HOOKS, check_hooks
from onnxtrain.callbacks._unmonitored import CSVLogger as CSVLogger
from onnxtrain.callbacks._unmonitored import TerminateOnNaN as TerminateOnNaN
from onnxtrain.callbacks._unmonitored import TimeStopping as TimeStopping
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.progress import prints_here


def _warn_about_uncalled_hooks(callback: Callback) -> None:
    hooks = [hook for hook in UNCALLED_HOOKS if callable(getattr(callback, hook, None))]  # a LambdaCallback's too
    if hooks and prints_here():  # one warning for a data-parallel world, not one per process
        warnings.warn(
            f"Callback {type(callback).__name__} overrides {', '.join(hooks)}, which onnxtrain never calls: "
            + UNCALLED_ADVICE,
            UserWarning,
            stacklevel=5,  # the user's fit call: Sequential.fit -> Trainer.fit -> CallbackList -> here
        )


def _dict(logs: Logs | None) -> Logs:
    """A hook's logs as Keras 3's CallbackList passes them: a dict, its keys sorted (`sorted_logs`), empty where
    there are none (a begin hook's). fit's own dict is sorted in place, not copied: a key a callback adds to it
    (learning_rate) then follows the sorted ones in what fit reads back from it (the History), as in Keras."""
    if logs is None:
        return {}
    if not isinstance(logs, dict):
        return sorted_logs(logs)
    keys = list(logs)
    if keys != sorted(keys):
        ordered = sorted_logs(logs)
        logs.clear()
        logs.update(ordered)
    return logs


class CallbackList:
    """Calls every callback's hook in order, with `logs` a dict sorted by key (empty for the begin hooks), as
    Keras 3's does.

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
