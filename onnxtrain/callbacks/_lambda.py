"""LambdaCallback: a callback made of functions passed by hook name, as Keras' is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onnxtrain.callbacks._callback import UNCALLED_HOOKS, Callback, Logs
from onnxtrain.callbacks._hooks import call_problem, shown_signature
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

# The hooks fit calls, each with the arguments Keras passes: (positional count, keyword names, as shown).
_HOOKS: dict[str, tuple[int, tuple[str, ...], str]] = {
    "on_train_begin": (1, (), "(logs)"),
    "on_train_end": (1, (), "(logs)"),
    "on_epoch_begin": (2, (), "(epoch, logs)"),
    "on_epoch_end": (2, (), "(epoch, logs)"),
    **{
        f"on_{kind}_{when}": (1, ("logs",), "(batch, logs=logs)")
        for kind in ("train_batch", "batch")
        for when in ("begin", "end")
    },
}


class LambdaCallback(Callback):
    """A callback from plain functions, with Keras' names and signatures:

    - `on_epoch_begin(epoch, logs)` and `on_epoch_end(epoch, logs)`, with onnxtrain's 1-based epoch numbers;
    - `on_train_begin(logs)` and `on_train_end(logs)`;
    - `on_train_batch_begin(batch, logs=...)` and `on_train_batch_end(batch, logs=...)`, or their aliases
      `on_batch_begin` / `on_batch_end` (batches numbered from 1 in each epoch). A `on_train_batch_*` function
      replaces its alias, as overriding the method does.

    Only the batch hooks given cost anything per step. Keras' test and predict hooks are accepted but never
    called (a warning says so); any other name raises InvalidArgumentError.

    Example:
        >>> LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        on_epoch_begin: Callable[[int, Logs | None], Any] | None = None,
        on_epoch_end: Callable[[int, Logs | None], Any] | None = None,
        on_train_begin: Callable[[Logs | None], Any] | None = None,
        on_train_end: Callable[[Logs | None], Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Callable[..., Any] | None,
    ):
        given = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        unknown = [name for name in kwargs if name not in _HOOKS and name not in UNCALLED_HOOKS]
        if unknown:
            raise InvalidArgumentError(
                f"LambdaCallback takes functions by hook name: {', '.join(_HOOKS)}. Received: {', '.join(unknown)}"
            )
        for name, function in given.items():
            if function is not None and not callable(function):
                raise InvalidTypeError(f"LambdaCallback({name}=...) expects a function. Received: {function!r}")
            if function is not None and name in _HOOKS:
                _check_arguments(name, function)
        self._functions: dict[str, Callable[..., Any]] = {
            name: f for name, f in given.items() if f is not None and name in _HOOKS
        }
        for name in UNCALLED_HOOKS:  # kept as attributes, as Keras keeps them, so fit's warning names them
            if given.get(name) is not None:
                setattr(self, name, given[name])

    def log_keys_added(self) -> tuple[str, ...] | None:
        return None if "on_epoch_end" in self._functions else ()  # the function may add any key

    @property
    def wants_batches(self) -> bool:
        return "on_train_batch_end" in self._functions or "on_batch_end" in self._functions

    @property
    def wants_batch_begin(self) -> bool:
        return "on_train_batch_begin" in self._functions or "on_batch_begin" in self._functions

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if "on_train_begin" in self._functions:
            self._functions["on_train_begin"](logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if "on_train_end" in self._functions:
            self._functions["on_train_end"](logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if "on_epoch_begin" in self._functions:
            self._functions["on_epoch_begin"](epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if "on_epoch_end" in self._functions:
            self._functions["on_epoch_end"](epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        function = self._functions.get("on_train_batch_begin", self._functions.get("on_batch_begin"))
        if function is not None:
            function(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        function = self._functions.get("on_train_batch_end", self._functions.get("on_batch_end"))
        if function is not None:
            function(batch, logs=logs)


def _check_arguments(name: str, function: Callable[..., Any]) -> None:
    """Refuse now a function that cannot take the arguments fit will pass it, rather than after an epoch."""
    positional, by_name, shown = _HOOKS[name]
    problem = call_problem(function, positional, by_name)
    if problem is not None:
        raise InvalidTypeError(
            f"LambdaCallback({name}=...) expects a function that fit can call as {name}{shown}: {problem}. "
            f"Received: {name}={function!r}, which takes {shown_signature(function)}"
        )
