"""Keras' `sample_weight` and `class_weight`: the per-example weights of a fit or an evaluation, checked once and
laid out as the weighted graphs read them (float32 [examples], or [examples, outputs] for several outputs), and the
engines that take them (`WeightedEngine`).

Keras 3 semantics: each example's loss is multiplied by its weight and the batch's loss is sum(w_i l_i) / batch
("sum_over_batch_size", not / sum(w)); weight penalties are added unweighted; `metrics` stay unweighted. A
`class_weight` turns into each example's weight from its label (class indices; the argmax of one-hot targets; the
rounded 0/1 target of a one-unit binary output), classes it does not name weighing 1. Given with `sample_weight`,
the two multiply (tf.keras 2 did; Keras 3 refuses the pair).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol, cast

import numpy as np

from onnxtrain.engine import Batch, Engine
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.layers import Shape
from onnxtrain.losses import BinaryCrossentropy, CategoricalCrossentropy, Loss, SoftmaxCrossEntropyWithLogits
from onnxtrain.multi_output import OutputLosses


class WeightedEngine(Protocol):
    """An engine whose steps take per-example weights (`takes_sample_weights = True`)."""

    def train_step(
        self, x: Batch, labels: np.ndarray, first_row: int = 0, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]: ...

    def eval_step(
        self, x: Batch, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]: ...


def weighted_engine(engine: Engine, engine_name: str) -> WeightedEngine:
    """`engine` as one whose steps take sample weights.

    Raises:
        UnsupportedError: the engine does not take them (ort-training: its training model has no weight input).
    """
    if not getattr(engine, "takes_sample_weights", False):
        raise UnsupportedError(
            f"sample_weight and class_weight need the portable engine. Received: engine={engine_name!r}, whose "
            "training model has no per-example weight input. Compile with engine='portable'."
        )
    return cast(WeightedEngine, engine)


def sample_weights(value: Any, examples: int, loss: Loss, argument: str = "sample_weight") -> np.ndarray | None:
    """`value` as the graphs read it: float32 [examples], or [examples, outputs] for a model of several outputs
    (one array for every output, or a list / dict {output name: array} with one per output, as Keras takes them).

    Raises:
        InvalidArgumentError: not one finite weight >= 0 per example.
        InvalidTypeError: not numeric, or for several outputs neither an array, a list nor a dict.
    """
    if value is None:
        return None
    if not isinstance(loss, OutputLosses):
        return _one_per_example(value, examples, argument)
    if isinstance(value, Mapping | list | tuple):
        columns = [  # an output without a loss may go without weights (its column weighs nothing)
            np.ones(examples, np.float32) if each is None else _one_per_example(each, examples, f"{argument}[{name!r}]")
            for name, each in zip(loss.names, loss.targets(value, argument), strict=True)
        ]
        return np.stack(columns, axis=1)
    column = _one_per_example(value, examples, argument)
    return np.repeat(column[:, None], len(loss.outputs), axis=1)


def _one_per_example(value: Any, examples: int, argument: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{argument} expects numeric weights. Received: dtype {array.dtype}")
    if array.ndim == 2 and array.shape[1] == 1:  # Keras takes (N, 1) as one weight per example too
        array = array[:, 0]
    if array.shape != (examples,):
        raise InvalidArgumentError(
            f"{argument} expects one weight per example, an array of shape ({examples},). Received: "
            f"{argument}.shape={array.shape}"
        )
    array = array.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgumentError(
            f"{argument} expects finite weights >= 0. Received: {argument}[{i}]={np.asarray(value).flat[i].item()!r} "
            f"({bad.size} such weights)"
        )
    return array


def class_sample_weights(class_weight: Any, labels: np.ndarray, loss: Loss, output_shape: Shape) -> np.ndarray:
    """Each example's weight from its label (`labels` as the loss prepared them), as Keras'
    `class_weight_to_sample_weights`: class indices as they are, one-hot targets by their argmax, a one-unit binary
    output's target rounded to 0 or 1; a class missing from `class_weight` weighs 1.

    Raises:
        UnsupportedError: a model of several outputs (as in Keras), or a loss without classes.
        InvalidArgumentError / InvalidTypeError: keys that are not the classes, or weights that are not finite
            numbers >= 0.
    """
    if isinstance(loss, OutputLosses):
        raise UnsupportedError(
            "class_weight is only supported for models of one output, as in Keras. Received a model of outputs "
            f"{loss.names}; pass sample_weight with one array per output instead."
        )
    if not isinstance(loss, SoftmaxCrossEntropyWithLogits | BinaryCrossentropy):
        raise UnsupportedError(
            f"class_weight needs a classification loss (sparse or categorical cross-entropy, binary "
            f"cross-entropy). Received: loss {loss.name!r}; pass sample_weight instead."
        )
    if isinstance(loss, CategoricalCrossentropy | BinaryCrossentropy) and len(output_shape) != 1:
        raise UnsupportedError(
            f"class_weight takes one class per example; the model's output has shape {output_shape}, a class per "
            "position. Pass sample_weight instead."
        )
    if isinstance(loss, BinaryCrossentropy) and output_shape == (1,):
        classes, found = 2, np.round(labels[:, 0]).astype(np.int64)
    elif labels.ndim == 2:  # one-hot (categorical, or binary of several units: Keras takes the argmax)
        classes, found = output_shape[-1], labels.argmax(axis=1)
    else:
        classes, found = output_shape[-1], labels
    table = _class_table(class_weight, classes)
    return table[found]


def _class_table(class_weight: Any, classes: int) -> np.ndarray:
    if not isinstance(class_weight, Mapping):
        raise InvalidTypeError(
            f"class_weight expects a dict {{class index: weight}}. Received: {type(class_weight).__name__}"
        )
    table = np.ones(classes, np.float32)
    for key, weight in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= key < classes:
            raise InvalidArgumentError(
                f"class_weight expects class indices in [0, {classes - 1}] as keys (the model has {classes} "
                f"classes). Received: key {key!r}"
            )
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float | np.integer | np.floating)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise InvalidArgumentError(
                f"class_weight expects finite weights >= 0. Received: {weight!r} for class {key!r}"
            )
        table[int(key)] = weight
    return table


def combined_weights(sample_weight: np.ndarray | None, class_weights: np.ndarray | None) -> np.ndarray | None:
    """The weights of a fit given `sample_weight`, `class_weight` or both (their product)."""
    if class_weights is None:
        return sample_weight
    if sample_weight is None:
        return class_weights
    return sample_weight * class_weights
