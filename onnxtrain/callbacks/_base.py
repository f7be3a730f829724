"""The Callback contract: the base class whose hooks `fit` calls, what a callback sees of the model being trained
(`CallbackModel`), the type of `logs`, and the checks the stock callbacks share."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

import numpy as np

from onnxtrain.errors import InvalidArgumentError

Logs = Mapping[str, float]
"""What the hooks get as `logs`: its keys sorted, as Keras 3 hands them to every hook (`sorted_logs`). At an epoch's
end it is one dict that fit hands to every callback in order, so a callback may add a figure to it (as
LearningRateScheduler and ReduceLROnPlateau add `learning_rate`, like Keras'), after the sorted keys: the History and
the callbacks after it see it. The progress line is printed before the callbacks run, so that what they print
follows it, and shows only fit's own figures."""
logger = logging.getLogger("onnxtrain")


def sorted_logs(logs: Mapping[str, float]) -> dict[str, float]:
    """`logs` with its keys sorted: the order Keras 3 gives every hook's logs (its CallbackList passes them through
    `python_utils.pythonify_logs`), and so its History's keys (the first epoch's, then those logged later) and
    `evaluate(..., return_dict=True)`'s: "accuracy", "loss", "val_accuracy", "val_loss"."""
    return dict(sorted(logs.items()))


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
        """Called by each `fit` call before any other hook, with the model being trained (the `Sequential` or
        `Model` whose `fit` it is), which `self.model` then is. An override should call `super().set_model(model)`."""
        self.model = model

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Called by each `fit` call after `set_model`, before `on_train_begin`, with Keras' `params` of the call:
        {"verbose": ..., "epochs": the epochs asked for, "steps": batches per epoch (None for a generator read to its
        end)}, which `self.params` then is. An override should call `super().set_params(params)`."""
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

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once at the start of each `fit` call, before the first epoch.

        Args:
            logs: an empty dict (as in Keras, which passes no data here).
        """

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once at the end of each `fit` call, after the last epoch (also when a callback stopped training;
        not when `fit` raises).

        Args:
            logs: the last epoch's logs as fit built them, sorted by key as Keras passes them: its figures and
                validation figures, without the keys that callbacks added at its end (`learning_rate`), as in
                Keras, whose epoch-end hooks get a copy of them (the History records those keys:
                `history.last()`). An empty dict where no epoch ran.
        """

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of every epoch of `fit`, before its first batch.

        Args:
            epoch: the epoch's number, counted from 1 and on across `fit` calls on one model (the second `fit` of 2
                epochs after 2 trained begins epoch 3), as the History's `epochs` and the progress line number them;
                Keras passes the 0-based index.
            logs: an empty dict (as in Keras).
        """

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the end of every epoch of `fit`, after its validation, before the History records it.

        Args:
            epoch: the epoch's number, as `on_epoch_begin` got it.
            logs: the epoch's figures, keyed as the History's: "loss" and each compiled metric ("accuracy"; a model
                of several outputs also "<output>_loss", "<output>_<metric>"), their means over the epoch's
                batches; with validation on this epoch (`validation_data`/`validation_split`, `validation_freq`),
                the same figures on it with "val_" before each key; sorted by key, as Keras 3's. e.g.
                {"accuracy": 0.7, "loss": 0.2, "val_accuracy": 0.6, "val_loss": 0.3}. It is one dict that every
                callback gets in turn, with the keys the callbacks before this one added after those
                ("learning_rate" from LearningRateScheduler or ReduceLROnPlateau); a key added here reaches the
                callbacks after this one and the History.
        """

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before each training batch of `fit` (only where a batch-begin hook is overridden). The default
        calls `on_batch_begin(batch, logs)`, Keras' older name: override either one.

        Args:
            batch: the batch's number in its epoch, counted from 1 (Keras' is the 0-based index).
            logs: an empty dict (as in Keras).
        """
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after each training batch of `fit` (only where a batch-end hook is overridden: the running
        figures cost a little each step). The default calls `on_batch_end(batch, logs)`, Keras' older name:
        override either one.

        Args:
            batch: the batch's number in its epoch, counted from 1 (Keras' is the 0-based index).
            logs: the epoch's running figures up to this batch, as Keras': the mean "loss" and each compiled metric
                over the batches so far, keyed and sorted as `on_epoch_end`'s (no "val_" keys). After a batch whose
                loss is not finite (NaN, inf), "loss" is that batch's loss: set `self.model.stop_training = True`
                here (as TerminateOnNaN does) to end `fit` there, which otherwise raises a `NonFiniteLossError`.
        """
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Keras' older name of `on_train_batch_begin`, which calls it by default: the same arguments."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Keras' older name of `on_train_batch_end`, which calls it by default: the same arguments."""


def _overrides(callback: Callback, *hooks: str, since: type[Callback] = Callback) -> bool:
    """Whether `callback`'s class overrides one of `hooks` as `since` (a base class of it) has them."""
    return any(getattr(type(callback), hook) is not getattr(since, hook) for hook in hooks)


def check_callback_verbose(owner: str, verbose: object) -> int:
    """A callback's `verbose` as an int: an int >= 0 or a bool (numpy's too)."""
    if not isinstance(verbose, bool | np.bool_ | numbers.Integral) or verbose < 0:
        raise InvalidArgumentError(f"{owner}(verbose=...) expects an int >= 0 or a bool. Received: verbose={verbose!r}")
    return int(verbose)
