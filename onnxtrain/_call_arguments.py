"""The arguments of a model's methods taken as Keras takes them: keywords a method lacks refused by name
(`refuse_unknown`) and Keras' second spelling of one (`alias`: `x=` for `dataset=`), both from `_keyword_arguments`,
and data given as x and y (`dataset_arg`).
"""

from __future__ import annotations

from typing import Any

from onnxtrain._keyword_arguments import alias, refuse_unknown, shown_value
from onnxtrain._spelling import KOTLINDL_ARGUMENTS, spelling_hint
from onnxtrain.errors import InvalidArgumentError

# What the model's methods import from here; KOTLINDL_ARGUMENTS and spelling_hint as this module gave them before.
__all__ = ["KOTLINDL_ARGUMENTS", "alias", "dataset_arg", "refuse_unknown", "shown_value", "spelling_hint"]


def dataset_arg(dataset: Any, y: Any, argument: str) -> Any:
    # Imported when called, not at import: `_batches` pulls in the datasets, layers and losses.
    from onnxtrain._batches import SeparateArrays

    if dataset is None:
        raise InvalidArgumentError(f"{argument} is required: pass a Dataset, an (x, y) tuple, or x and y.")
    return SeparateArrays(dataset, y) if y is not None else dataset
