"""The arguments of a model's methods taken as Keras takes them: keywords a method lacks refused by name
(`refuse_unknown`), Keras' second spelling of one (`alias`: `x=` for `dataset=`), and data given as x and y
(`dataset_arg`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from onnxtrain._batches import SeparateArrays
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


def refuse_unknown(method: str, unknown: Mapping[str, Any], function: Any) -> None:
    """Refuse keywords `method` does not take (a Keras argument onnxtrain lacks, a typo), naming what it takes:
    one error instead of Python's bare TypeError.

    Raises:
        InvalidTypeError: naming the unknown keywords and the method's own.
    """
    if not unknown:
        return
    parameters = inspect.signature(function).parameters.values()
    taken = [p.name for p in parameters if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    names = ", ".join(repr(name) for name in unknown)
    raise InvalidTypeError(
        f"{method}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} {names}. It takes: "
        f"{', '.join(taken)}."
    )


def alias(name: str, value: Any, alias: str, aliased: Any) -> Any:
    """The argument given as `name` or as its Keras spelling `alias`, refusing both."""
    if aliased is None:
        return value
    if value is not None:
        raise InvalidArgumentError(f"Pass {name}=... or {alias}=..., not both (they are the same argument).")
    return aliased


def dataset_arg(dataset: Any, y: Any, argument: str) -> Any:
    if dataset is None:
        raise InvalidArgumentError(f"{argument} is required: pass a Dataset, an (x, y) tuple, or x and y.")
    return SeparateArrays(dataset, y) if y is not None else dataset
