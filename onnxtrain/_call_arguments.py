"""The arguments of a model's methods taken as Keras takes them: keywords a method lacks refused by name
(`refuse_unknown`) and Keras' second spelling of one (`alias`: `x=` for `dataset=`), both from `_keyword_arguments`,
and data given as x and y (`dataset_arg`), refusing labels beside a Dataset (KotlinDL's `fit(train, val)`).
"""

from __future__ import annotations

from typing import Any

from onnxtrain._keyword_arguments import alias, refuse_unknown, shown_value
from onnxtrain._spelling import KOTLINDL_ARGUMENTS, labels_beside_dataset, spelling_hint
from onnxtrain.errors import InvalidArgumentError

# What the model's methods import from here; KOTLINDL_ARGUMENTS and spelling_hint as this module gave them before.
__all__ = ["KOTLINDL_ARGUMENTS", "alias", "dataset_arg", "refuse_unknown", "shown_value", "spelling_hint"]


def dataset_arg(dataset: Any, y: Any, argument: str, method: str = "fit") -> Any:
    """The data of `method(dataset, y)` (`argument` as the method names its first): x and y as one
    `SeparateArrays`, else `dataset` itself (a Dataset, an (x, y) tuple, a generator).

    Raises:
        InvalidArgumentError: no data; or a Dataset with a y beside it, which KotlinDL's positional arguments give
            (`fit(train, val)`, `fit(train, 2)`, `evaluate(test, 100)`): the message names the keyword that takes
            it (`labels_beside_dataset`).
    """
    # Imported when called, not at import: `_batches` pulls in the datasets, layers and losses.
    from onnxtrain._batches import SeparateArrays
    from onnxtrain.datasets import Dataset

    if dataset is None:
        raise InvalidArgumentError(f"{argument} is required: pass a Dataset, an (x, y) tuple, or x and y.")
    if y is not None and isinstance(dataset, Dataset):
        raise InvalidArgumentError(labels_beside_dataset(method, y))
    return SeparateArrays(dataset, y) if y is not None else dataset
