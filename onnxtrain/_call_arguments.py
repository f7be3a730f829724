"""The arguments of a model's methods taken as Keras takes them: keywords a method lacks refused by name
(`refuse_unknown`), Keras' second spelling of one (`alias`: `x=` for `dataset=`), and data given as x and y
(`dataset_arg`). Every refusal of an unknown keyword names Python's spelling of KotlinDL's names (`_spelling`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from onnxtrain._spelling import KOTLINDL_ARGUMENTS, spelling_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


def refuse_unknown(method: str, unknown: Mapping[str, Any], function: Any) -> None:
    """Refuse keywords `method` does not take (a Keras argument onnxtrain lacks, a typo, KotlinDL's camelCase),
    naming what it takes: one error instead of Python's bare TypeError.

    Raises:
        InvalidTypeError: naming the unknown keywords, Python's spelling of KotlinDL's (`spelling_hint`) and the
            method's own keywords.
    """
    if not unknown:
        return
    parameters = inspect.signature(function).parameters.values()
    taken = [p.name for p in parameters if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    names = ", ".join(repr(name) for name in unknown)
    raise InvalidTypeError(
        f"{method}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} {names}."
        f"{spelling_hint(unknown, taken, KOTLINDL_ARGUMENTS)} It takes: {', '.join(taken)}."
    )


def alias(name: str, value: Any, alias: str, aliased: Any) -> Any:
    """The argument given as `name` or as its Keras spelling `alias`, refusing both."""
    if aliased is None:
        return value
    if value is not None:
        raise InvalidArgumentError(f"Pass {name}=... or {alias}=..., not both (they are the same argument).")
    return aliased


def dataset_arg(dataset: Any, y: Any, argument: str) -> Any:
    # Imported here: the layers and optimizers import this module (`spelling_hint`), and `_batches` imports them.
    from onnxtrain._batches import SeparateArrays

    if dataset is None:
        raise InvalidArgumentError(f"{argument} is required: pass a Dataset, an (x, y) tuple, or x and y.")
    return SeparateArrays(dataset, y) if y is not None else dataset
