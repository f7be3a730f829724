"""Keras' `sample_weight` and `class_weight`: the weights of a fit or an evaluation, checked once and laid out as
the weighted graphs read them, and the engines that take them (`WeightedEngine`).

Keras 3 semantics: each example's loss is multiplied by its weight and the batch's loss is sum(w_i l_i) / batch
("sum_over_batch_size", not / sum(w)); weight penalties are added unweighted; `metrics` stay unweighted, and
`weighted_metrics` weigh each example, or each position where the weights are per position. An output
with steps (a tagger's (T, C), `_loss_base.weight_steps`) takes one weight per position too, an (N, T) array as
Keras 3 takes it (Keras needs that form there): each position's loss times its weight, over the positions' count
(over the unmasked ones' where the output carries a mask); one weight per example, (N,), weighs each of its
positions alike. A `class_weight` turns into each example's weight from its label (class indices; the argmax of
one-hot targets; the rounded 0/1 target of a one-unit binary output), classes it does not name weighing 1. Given
with `sample_weight`, the two multiply (tf.keras 2 did; Keras 3 refuses the pair).

Layouts: `Batches.w` holds float32 [examples] or [examples, *steps] for one output, [examples, outputs] for several;
a weighted graph of one output reads [batch, *steps] (`_loss_base.weight_steps`), so `weighted_engine` spreads one
weight per example over the positions there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from onnxtrain._loss_base import weight_steps
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


def weighted_engine(
    engine: Engine, engine_name: str, output_shape: Shape = (), several_outputs: bool = False
) -> WeightedEngine:
    """`engine` as one whose steps take sample weights; for a model of one output with steps (`output_shape`,
    `weight_steps`), one that spreads one weight per example over its positions, as its weighted graphs read one
    weight per position.

    Raises:
        UnsupportedError: the engine does not take them (ort-training: its training model has no weight input).
    """
    if not getattr(engine, "takes_sample_weights", False):
        raise UnsupportedError(
            f"sample_weight and class_weight need the portable engine. Received: engine={engine_name!r}, whose "
            "training model has no per-example weight input. Compile with engine='portable'."
        )
    weighted = cast(WeightedEngine, engine)
    steps = () if several_outputs else weight_steps(output_shape)
    return PositionWeights(weighted, steps) if steps else weighted


@dataclass(frozen=True)
class PositionWeights:
    """A weighted engine whose graphs read one weight per position ([batch, *steps]): a batch weighed per example
    gives each of its positions the example's weight, the same loss (sum_i w_i sum_t l_it / (N T))."""

    engine: WeightedEngine
    steps: Shape

    def train_step(
        self, x: Batch, labels: np.ndarray, first_row: int = 0, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        return self.engine.train_step(x, labels, first_row, self.spread(sample_weight))

    def eval_step(
        self, x: Batch, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        return self.engine.eval_step(x, labels, self.spread(sample_weight))

    def spread(self, sample_weight: np.ndarray | None) -> np.ndarray | None:
        """[batch] weights as [batch, *steps]; per-position ones as they are."""
        if sample_weight is None or sample_weight.ndim > 1:
            return sample_weight
        column = sample_weight.reshape(-1, *([1] * len(self.steps)))
        return np.ascontiguousarray(np.broadcast_to(column, (len(sample_weight), *self.steps)), np.float32)


def sample_weights(
    value: Any,
    examples: int,
    loss: Loss,
    argument: str = "sample_weight",
    output_shape: Shape = (),
    weighted_metrics: bool = False,
) -> np.ndarray | None:
    """`value` as the graphs read it: float32 [examples], or for a model of one output with steps (`output_shape`,
    `weight_steps`) [examples, *steps] where it gives a weight per position ((N, T), or Keras' (N, T, 1)); for a
    model of several outputs [examples, outputs] (one array for every output, or a list / dict {output name:
    array} with one per output, as Keras takes them), one weight per example. `weighted_metrics` (whether compile
    has some) changes nothing: they take weights per example and per position alike (`_metric_base.weighted_sums`).

    Raises:
        InvalidArgumentError: not one finite weight >= 0 per example (or position).
        InvalidTypeError: not numeric, or for several outputs neither an array, a list nor a dict.
    """
    if value is None:
        return None
    if not isinstance(loss, OutputLosses):
        return _checked_weights(value, examples, argument, output_shape)
    if isinstance(value, Mapping | list | tuple):
        columns = [  # an output without a loss may go without weights (its column weighs nothing)
            np.ones(examples, np.float32) if each is None else _checked_weights(each, examples, f"{argument}[{name!r}]")
            for name, each in zip(loss.names, loss.targets(value, argument), strict=True)
        ]
        return np.stack(columns, axis=1)
    column = _checked_weights(value, examples, argument)
    return np.repeat(column[:, None], len(loss.outputs), axis=1)


def _checked_weights(value: Any, examples: int, argument: str, output_shape: Shape | None = None) -> np.ndarray:
    """One weight per example, float32 [examples]; for the one output of a model, of `output_shape`, with steps
    (`weight_steps`), or one per position, [examples, *steps]. `output_shape` None: one output of several, which
    takes one weight per example."""
    steps = () if output_shape is None else weight_steps(output_shape)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{argument} expects numeric weights. Received: dtype {array.dtype}")
    if array.ndim == 2 and array.shape[1] == 1:  # Keras takes (N, 1) as one weight per example too
        array = array[:, 0]
    elif steps and array.shape == (examples, *steps, 1):  # and (N, T, 1) as one per position (its squeeze)
        array = array[..., 0]
    if array.shape != (examples,) and not (steps and array.shape == (examples, *steps)):
        expected = f"an array of shape ({examples},)"
        if steps:
            expected += f", or one per position of the output (shape {output_shape}), shape {(examples, *steps)}"
        elif output_shape is None and array.ndim > 1:  # several outputs
            expected += " (per-position weights are taken for a model of one output)"
        raise InvalidArgumentError(
            f"{argument} expects one weight per example, {expected}. Received: {argument}.shape={np.shape(value)}"
        )
    array = array.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        i = int(bad[0])
        where = ", ".join(str(int(k)) for k in np.unravel_index(i, array.shape))
        raise InvalidArgumentError(
            f"{argument} expects finite weights >= 0. Received: {argument}[{where}]="
            f"{np.asarray(value).flat[i].item()!r} ({bad.size} such weights)"
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
    if len(output_shape) != 1:
        _refuse_positions(class_weight, loss, output_shape)
    if isinstance(loss, BinaryCrossentropy) and output_shape == (1,):
        classes, found = 2, np.round(labels[:, 0]).astype(np.int64)
    elif labels.ndim == 2:  # one-hot (categorical, or binary of several units: Keras takes the argmax)
        classes, found = output_shape[-1], labels.argmax(axis=1)
    else:
        classes, found = output_shape[-1], labels
    table = _class_table(class_weight, classes)
    return table[found]


def _refuse_positions(class_weight: Any, loss: Loss, output_shape: Shape) -> None:
    """Refuse `class_weight` for an output with a class per position, as Keras 3 does (it refuses targets of 3 or
    more dimensions, and reads (N, T) class indices as one class per example), naming the per-position
    sample_weight that weighs each position by its class."""
    binary = isinstance(loss, BinaryCrossentropy) and output_shape[-1] == 1
    table = _class_table(class_weight, 2 if binary else output_shape[-1])
    if binary:
        classes = "np.round(y[..., 0]).astype(int)"
    elif isinstance(loss, CategoricalCrossentropy | BinaryCrossentropy):
        classes = "y.argmax(-1)"
    else:
        classes = "y"
    steps = ", ".join(map(str, weight_steps(output_shape)))
    raise UnsupportedError(
        f"class_weight takes one class per example, as in Keras (Keras 3 refuses it for targets of 3 or more "
        f"dimensions); the model's output has shape {output_shape}, a class per position. Weigh each position by "
        f"its class with a per-position sample_weight of shape (N, {steps}) instead: "
        f"sample_weight=np.array({[float(w) for w in table]}, 'float32')[{classes}]."
    )


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
    """The weights of a fit given `sample_weight`, `class_weight` ([examples]) or both (their product, each
    example's class weight times each of its weights, per position or per output)."""
    if class_weights is None:
        return sample_weight
    if sample_weight is None:
        return class_weights
    return sample_weight * class_weights.reshape(-1, *([1] * (sample_weight.ndim - 1)))
