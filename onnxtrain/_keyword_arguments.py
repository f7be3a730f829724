"""Keyword arguments as every call that takes them checks them (a model's methods, the initializers, `Dataset`, the
loaders): a keyword the call does not take refused by name, with Python's spelling of KotlinDL's (`refuse_unknown`),
and an argument given under two spellings refused (`alias`). Imports no data module: the initializers use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from onnxtrain._spelling import KOTLINDL_ARGUMENTS, setting_hint, spelling_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


def refuse_unknown(
    method: str,
    unknown: Mapping[str, Any],
    function: Any,
    *,
    also: Sequence[str] = (),
    renamed: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
) -> None:
    """Refuse keywords `method` does not take (a Keras argument onnxtrain lacks, a typo, KotlinDL's camelCase),
    naming what it takes: one error instead of Python's bare TypeError.

    Args:
        method: the call as messages name it ("fit", "RandomUniform", "InferenceModel.load").
        unknown: the keywords refused, with their values.
        function: the function whose keywords the call takes (its signature is read).
        also: other keywords it takes that the signature does not show (KotlinDL's names of an initializer's).
        renamed: KotlinDL's names of the call's arguments that are more than a case change (snake-cased), with
            what stands for each here (`spelling_hint`); default `KOTLINDL_ARGUMENTS`, a model method's.
        settings: settings that are no argument of the call (snake-cased), with where each is set (`setting_hint`).

    Raises:
        InvalidTypeError: naming the unknown keywords, Python's spelling of KotlinDL's (`spelling_hint`), where a
            setting is set, the call's own keywords and the values received.
    """
    if not unknown:
        return
    parameters = inspect.signature(function).parameters.values()
    own = [p.name for p in parameters if p.name not in ("self", "cls") and p.kind not in _VARIADIC]
    taken = [*own, *(name for name in also if name not in own)]
    names = ", ".join(repr(name) for name in unknown)
    hint = spelling_hint(unknown, taken, KOTLINDL_ARGUMENTS if renamed is None else renamed)
    hint += setting_hint(unknown, settings or {})
    received = ", ".join(f"{name}={shown_value(value)}" for name, value in unknown.items())
    raise InvalidTypeError(
        f"{method}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} {names}.{hint} It takes: "
        f"{', '.join(taken)}. Received: {received}"
    )


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def shown_value(value: Any) -> str:
    """`value` as a refusal names it: an array by its shape and dtype, anything else by a repr of 80 characters at
    most."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        return f"<{type(value).__name__} of shape {shape}, dtype {dtype}>"
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def alias(name: str, value: Any, alias: str, aliased: Any) -> Any:
    """The argument given as `name` or as its Keras spelling `alias`, refusing both."""
    if aliased is None:
        return value
    if value is not None:
        raise InvalidArgumentError(f"Pass {name}=... or {alias}=..., not both (they are the same argument).")
    return aliased
