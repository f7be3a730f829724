"""Keras' callback hooks, as fit calls them, and the check at fit's start that a callback's hooks can be called so:
a hook that cannot take fit's arguments, or one under KotlinDL's camelCase name (which fit would never call)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from onnxtrain.errors import InvalidTypeError

# The hooks fit calls, each with the arguments it passes them, by position (CallbackList; a batch hook's
# default calls its `on_batch_*` alias so too).
CALLED_HOOKS: dict[str, tuple[str, ...]] = {
    "on_train_begin": ("logs",),
    "on_train_end": ("logs",),
    "on_epoch_begin": ("epoch", "logs"),
    "on_epoch_end": ("epoch", "logs"),
    "on_train_batch_begin": ("batch", "logs"),
    "on_train_batch_end": ("batch", "logs"),
    "on_batch_begin": ("batch", "logs"),
    "on_batch_end": ("batch", "logs"),
}

# Keras hooks that fit never calls: evaluate and predict take no callbacks. Overriding one earns a warning.
UNCALLED_HOOKS: dict[str, tuple[str, ...]] = {
    "on_test_begin": ("logs",),
    "on_test_end": ("logs",),
    "on_test_batch_begin": ("batch", "logs"),
    "on_test_batch_end": ("batch", "logs"),
    "on_predict_begin": ("logs",),
    "on_predict_end": ("logs",),
    "on_predict_batch_begin": ("batch", "logs"),
    "on_predict_batch_end": ("batch", "logs"),
}

UNCALLED_ADVICE = (
    "evaluate and predict take no callbacks, and fit's validation runs none. Move the code to on_epoch_end (its "
    "logs hold the val_* figures), or run it after evaluate()/predict()."
)


def _camel(hook: str) -> str:
    first, *rest = hook.split("_")
    return first + "".join(word.capitalize() for word in rest)


# KotlinDL's names of Keras' hooks (onEpochEnd for on_epoch_end, ...): Python calls neither by the other's name.
CAMEL_HOOKS = {_camel(hook): hook for hook in (*CALLED_HOOKS, *UNCALLED_HOOKS)}


def keras_signature(hook: str) -> str:
    """Keras' signature of `hook`, e.g. "on_epoch_end(self, epoch, logs=None)"."""
    *first, _ = CALLED_HOOKS.get(hook) or UNCALLED_HOOKS[hook]
    return f"{hook}({', '.join(['self', *first, 'logs=None'])})"


def call_problem(function: Callable[..., Any], positional: int, by_name: tuple[str, ...] = ()) -> str | None:
    """Why `function` cannot be called with `positional` arguments and the keyword arguments `by_name`, or None:
    also where Python cannot read its signature (a builtin's), which is left to the call."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*range(positional), **dict.fromkeys(by_name))
    except TypeError as e:
        return str(e)
    return None


def shown_signature(function: Callable[..., Any]) -> str:
    """`function`'s parameters as its definition lists them (with `self` for a method), or "(...)"."""
    try:
        return str(inspect.signature(function.__func__ if inspect.ismethod(function) else function))
    except (TypeError, ValueError):
        return "(...)"


def check_hooks(callback: Any) -> None:
    """Refuse a callback whose hooks fit would not call as written: one under KotlinDL's camelCase name, and one
    of Keras' names that cannot take the arguments fit passes (KotlinDL's `on_epoch_end(self, epoch, event, logs)`).
    A hook with defaults, `*args` or `**kwargs` passes; so do other methods. The test and predict hooks, which fit
    never calls, are only warned about (CallbackList).

    Raises:
        InvalidTypeError: naming the hook, its signature and Keras'.
    """
    name = type(callback).__name__
    for camel, hook in CAMEL_HOOKS.items():
        if inspect.getattr_static(callback, camel, None) is None:  # static: a __getattr__ answers any name
            continue
        function = getattr(callback, camel)
        if hook in UNCALLED_HOOKS:
            fix = f"Keras names it {keras_signature(hook)}, which onnxtrain never calls either: {UNCALLED_ADVICE}"
        else:
            fix = f"Rename it to Keras' {keras_signature(hook)}{_figures_hint(hook)}."
        raise InvalidTypeError(
            f"Callback {name} defines {camel}, KotlinDL's name for a hook, which fit never calls: onnxtrain calls "
            f"Keras' hooks. {fix} Received: {camel}{shown_signature(function)}. Nothing was trained."
        )
    for hook, arguments in CALLED_HOOKS.items():
        function = getattr(callback, hook)
        if not callable(function):
            raise InvalidTypeError(
                f"Callback {name}'s {hook} must be a method, as Keras' {keras_signature(hook)}. "
                f"Received: {hook}={function!r}. Nothing was trained."
            )
        problem = call_problem(function, len(arguments))
        if problem is not None:
            raise InvalidTypeError(
                f"Callback {name}'s {hook} cannot take the arguments fit passes it ({', '.join(arguments)}): "
                f"{problem}. Define it as Keras' {keras_signature(hook)}{_figures_hint(hook)}. "
                f"Received: {hook}{shown_signature(function)}. Nothing was trained."
            )


def _figures_hint(hook: str) -> str:
    """Where KotlinDL's event object went, for the hooks that took one."""
    if hook in ("on_epoch_end", "on_train_batch_end", "on_batch_end"):
        return " (KotlinDL's event figures are in logs: logs['loss'], logs['val_loss'], a metric by its name)"
    return ""
