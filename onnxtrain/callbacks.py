"""Callbacks: hooks into `fit` (Keras' contract), and the list that dispatches to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from onnxtrain.errors import InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.model import Sequential

Logs = Mapping[str, float]


class Callback:
    """Base class: override any hook. `self.model` is the model being trained; set
    `self.model.stop_training = True` to stop after the current batch or epoch.

    Epochs are numbered from 1 and keep counting across `fit` calls; batches are numbered from 1 in each epoch.
    Overriding `on_batch_end` makes `fit` compute running figures every batch (a little slower).
    """

    model: Sequential

    def set_model(self, model: Sequential) -> None:
        self.model = model

    def on_train_begin(self, logs: Logs | None = None) -> None: ...

    def on_train_end(self, logs: Logs | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks: Sequence[Callback], model: Sequential):
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise InvalidTypeError(
                    f"callbacks expects Callback instances. Received: callbacks[{i}]={callback!r}"
                )
            callback.set_model(model)
        self.callbacks = list(callbacks)
        # Only pay for per-batch logs when a callback actually overrides on_batch_end.
        self.wants_batches = any(type(c).on_batch_end is not Callback.on_batch_end for c in self.callbacks)

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


__all__ = ["Callback", "CallbackList"]
