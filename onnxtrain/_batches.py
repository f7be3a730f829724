"""The data a `Trainer` steps through: one dataset argument checked and read into arrays (`Batches`), or, for a
generator or PyDataset, into a `BatchStream` that reads each batch so (`read_data`); each epoch's shuffled order,
the rows of a shuffled batch gathered into buffers reused from batch to batch, and how many batches an epoch takes
(Keras' `steps_per_epoch`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from onnxtrain._batch_stream import BatchStream, check_steps, is_streamed
from onnxtrain._sample_weights import class_sample_weights, combined_weights, sample_weights
from onnxtrain.arrays import InputArrays, InputSpec, as_array, prepare_inputs, sole_input
from onnxtrain.datasets import Dataset, as_dataset
from onnxtrain.distributed._communicator import Communicator
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.layers import Shape
from onnxtrain.losses import Loss
from onnxtrain.progress import prints_here


@dataclass(frozen=True)
class SeparateArrays:
    """x and y given as two arguments (`fit(x, y)`), not as one dataset argument: messages name them x and y."""

    x: Any
    y: Any


@dataclass
class Batches:
    """Validated arrays of one dataset argument, and what a `Dataset` says about them."""

    x: np.ndarray | InputArrays  # InputArrays for a model of several inputs
    y: np.ndarray
    class_names: tuple[str, ...] | None = None
    input_scale: float | None = None
    # The weights (`_sample_weights`: [examples], [examples, *steps] one per position of an output with steps, or
    # [examples, outputs]); None: unweighted
    w: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)


def read_batches(
    data: Any,
    argument: str,
    inputs: Sequence[InputSpec],
    several_outputs: bool,
    loss: Loss,
    output_shape: Shape,
    input_scale: float,
    sample_weight: Any = None,
    weighted_triples: bool = False,
    weighted_metrics: bool = False,
) -> Batches:
    """`data` (the argument named `argument`) as a model of `inputs` (`arrays.input_specs`) and `output_shape`
    reads it, its labels checked by `loss`. Weights (one per example, or per position of an output with steps)
    come as `sample_weight`, or with `weighted_triples` (validation data, as Keras' `validation_data`) as the third
    item of a tuple, (x, y, sample_weight), not both; `weighted_metrics`: compile has some, which take no weights
    per position (`_sample_weights.sample_weights`). Integers without a scale of their own take `input_scale`, for a
    Dataset as for an (x, y) pair, so both give the same numbers; float32 x is not copied. The token ids of the
    inputs that feed Embedding layers are checked once here, not per batch; each input's arrays take its dtype:
    integer inputs stay integers, unscaled.

    Raises:
        InvalidTypeError: a model of several inputs or outputs was given anything but an (x, y) pair.
        InvalidArgumentError: as many labels as examples were not given (and what `prepare_inputs` and the
            loss's `prepare_labels` raise).
    """
    x_name, y_name = f"{argument}.x", f"{argument}.y"
    item_names = None
    weight_name = "sample_weight"
    if weighted_triples and isinstance(data, tuple | list) and len(data) == 3 and not isinstance(data[0], Dataset):
        if sample_weight is not None:
            raise InvalidArgumentError(
                f"{argument} given as (x, y, sample_weight) takes no sample_weight=... as well. Received both."
            )
        data, sample_weight, weight_name = (data[0], data[1]), data[2], f"{argument}[2]"
    if isinstance(data, SeparateArrays):
        data, x_name, y_name = (data.x, data.y), "x", "y"
        item_names = (x_name, y_name)
    if len(inputs) > 1 or several_outputs:  # lists or dicts of arrays, not a Dataset's
        if not (isinstance(data, tuple | list) and len(data) == 2) or isinstance(data[0], Dataset):
            several = "inputs" if len(inputs) > 1 else "outputs"
            raise InvalidTypeError(
                f"{argument} for a model of several {several} expects an (x, y) tuple, or x and y, with x a list "
                f"of arrays or a dict {{input name: array}} ({[spec.name for spec in inputs]}) for several "
                f"inputs, y one array per output for several outputs. Received: {type(data).__name__}"
            )
        raw_x, raw_y, class_names, data_scale = data[0], data[1], None, None
    else:
        if isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], Dataset):
            # Keras' ([x], y) and ({name: x}, y); a DataFrame and a Series read once, as arrays
            data = (as_array(sole_input(data[0], inputs[0], x_name), x_name), labels_array(data[1], y_name))
        dataset = as_dataset(data, name=argument, item_names=item_names)
        raw_x, raw_y = dataset.x, dataset.y
        class_names = tuple(dataset.class_names) if dataset.class_names else None
        data_scale = dataset.input_scale
    x, _ = prepare_inputs(raw_x, inputs, input_scale, x_name)
    y = loss.prepare_labels(raw_y, output_shape, y_name)
    if len(y) != len(x):
        given = f"{x_name} and {y_name}" if item_names else argument
        raise InvalidArgumentError(
            f"{given} expects as many labels as examples. Received: {len(x)} examples, {len(y)} labels"
        )
    w = sample_weights(sample_weight, len(x), loss, weight_name, output_shape, weighted_metrics)
    return Batches(x, y, class_names, data_scale, w)


def read_data(
    data: Any,
    argument: str,
    inputs: Sequence[InputSpec],
    several_outputs: bool,
    loss: Loss,
    output_shape: Shape,
    input_scale: float,
    sample_weight: Any = None,
    weighted_triples: bool = False,
    weighted_metrics: bool = False,
    by_output_name: Callable[[Any, str], Any] | None = None,
) -> Batches | BatchStream:
    """`read_batches` (same arguments), or for a generator or PyDataset (`is_streamed`) the `BatchStream` that reads
    each of its batches as `read_batches` reads (x, y) or (x, y, sample_weight) arrays, the first one now.

    `by_output_name` (a model of one output): (a batch's y or sample weights, its argument's name) -> the array,
    where it came as Keras also takes it, {output name: array}; it raises for another key. The caller unwraps the
    arrays of `data` and `sample_weight` itself, as it does for `read_batches`.

    Raises:
        InvalidArgumentError: a generator or PyDataset given y=... or sample_weight=... too (as in Keras, its
            batches carry them). And what `read_batches` raises, for a stream's batch naming it.
    """
    given = data.x if isinstance(data, SeparateArrays) else data
    if not is_streamed(given):
        return read_batches(
            data,
            argument,
            inputs,
            several_outputs,
            loss,
            output_shape,
            input_scale,
            sample_weight,
            weighted_triples,
            weighted_metrics,
        )
    kind = "generator" if isinstance(given, Iterator) else type(given).__name__
    for name, value in (("y", data.y if isinstance(data, SeparateArrays) else None), ("sample_weight", sample_weight)):
        if value is not None:
            raise InvalidArgumentError(
                f"{argument} given as a {kind} takes no {name}=...: each batch carries its labels and weights, "
                f"(x, y) or (x, y, sample_weight), as in Keras. Received: {name} of type {type(value).__name__}"
            )

    def read(x: Any, y: Any, weights: Any, where: str) -> Batches:  # (`BatchStream` names the batch itself)
        if by_output_name is not None:
            y, weights = by_output_name(y, "y"), by_output_name(weights, "sample_weight")
        pair = SeparateArrays(x, y)
        return read_batches(
            pair, argument, inputs, several_outputs, loss, output_shape, input_scale, weights, False, weighted_metrics
        )

    return BatchStream(given, argument, read, epoch_order)


def with_class_weights(data: Batches | BatchStream, class_weight: Any, loss: Loss, output_shape: Shape) -> Any:
    """`data` (fit's training data) with each example's weight times its class's (Keras' `class_weight`): at once
    for arrays, batch by batch for a stream (checked on its first batch now)."""
    if class_weight is None:
        return data

    def weights_of(labels: np.ndarray) -> np.ndarray:
        return class_sample_weights(class_weight, labels, loss, output_shape)

    if isinstance(data, BatchStream):
        data.weigh_classes(weights_of)
        return data
    return replace(data, w=combined_weights(data.w, weights_of(data.y)))


def limit_batches(data: Any, steps: Any, batch_size: int, argument: str) -> Any:
    """`data` (Batches or a BatchStream) read `steps` batches at a time: Keras' `evaluate(steps=...)` and
    `fit(validation_steps=...)`. Arrays keep their first `steps` batches of `batch_size` (all where they have no
    more); a stream takes the next `steps` of its batches each pass.

    Raises:
        InvalidArgumentError: `steps` is not None or a positive int (named `argument`).
    """
    count = check_steps(steps, argument)
    if count is None:
        return data
    if isinstance(data, BatchStream):
        data.limit(count)
        return data
    rows = count * batch_size
    if rows >= len(data):
        return data
    return Batches(
        data.x[:rows], data.y[:rows], data.class_names, data.input_scale, None if data.w is None else data.w[:rows]
    )


def batch_count(data: Batches | BatchStream, batch_size: int) -> int | None:
    """The batches of one pass over `data` (None: a generator read to its end)."""
    return data.steps if isinstance(data, BatchStream) else math.ceil(len(data) / batch_size)


def examples(data: Batches | BatchStream) -> int:
    """The examples of arrays (0 for a stream, which `refuse_streams_in_world` keeps out of a data-parallel fit)."""
    return 0 if isinstance(data, BatchStream) else len(data)


def refuse_streams_in_world(communicator: Communicator | None, *data: Batches | BatchStream | None) -> None:
    """Refuse a generator or PyDataset in a data-parallel fit, whose processes each take their rows of every
    global batch of arrays.

    Raises:
        UnsupportedError: naming what to pass instead.
    """
    if communicator is not None and any(isinstance(each, BatchStream) for each in data):
        raise UnsupportedError(
            "A data-parallel fit (onnxtrain.distributed.init()) reads arrays or a Dataset, of which each process "
            "takes its rows of every batch. Received: a generator or PyDataset; pass arrays, or train alone."
        )


def labels_array(y: Any, argument: str) -> Any:
    """The labels of a model of one output as one array (`arrays.as_array`: a pandas Series too), with bool labels
    as 0/1 integers, as Keras takes them wherever 0/1 labels go (binary cross-entropy's targets, class indices). (A
    model of several outputs' losses read each output's labels themselves, bool ones too.)"""
    array = as_array(y, argument)
    if isinstance(array, np.ndarray) and array.dtype.kind == "b":
        return array.astype(np.int64)
    return array


def epoch_order(seed: int, epoch: int, examples: int) -> np.ndarray:
    """The shuffled order of `examples` rows in `epoch`: the same for the same (seed, epoch) in every process."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, epoch)))
    return rng.permutation(examples)


def empty_rows(x: Any, rows: int) -> Any:
    """An uninitialised buffer of `rows` rows laid out as `x` (an array, or the InputArrays of several inputs)."""
    if isinstance(x, InputArrays):
        return InputArrays([empty_rows(array, rows) for array in x.arrays])
    return np.empty((rows, *x.shape[1:]), x.dtype)


def gather(x: Any, index: np.ndarray, out: Any) -> Any:
    """Rows `index` of `x` (an array, or InputArrays) into the first len(index) rows of `out` (`empty_rows`).

    mode="clip": with the default "raise", np.take gathers into a scratch copy first (a second pass over the
    batch, docs/measurements.md). A permutation's indices are all in range.
    """
    if isinstance(x, InputArrays):
        return InputArrays([gather(a, index, o) for a, o in zip(x.arrays, out.arrays, strict=True)])
    return np.take(x, index, axis=0, out=out[: len(index)], mode="clip")


def batch_arrays(x: np.ndarray | InputArrays) -> list[np.ndarray]:
    """The arrays of a batch, one per model input (what an engine step and a session feed take)."""
    return list(x.arrays) if isinstance(x, InputArrays) else [x]


def check_steps_per_epoch(value: Any, available: int, examples: int, batch_size: int, shuffle: bool) -> int:
    """Keras' `steps_per_epoch` checked against the `available` batches of the data (`examples` rows, batches of
    `batch_size`): each epoch trains that many, the first of its order.

    Raises:
        InvalidArgumentError: not a positive int, or more batches than the data has.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidArgumentError(f"fit(steps_per_epoch=...) expects a positive int. Received: {value!r}")
    if value > available:
        raise InvalidArgumentError(
            f"fit(steps_per_epoch={value}) asks for more batches than the data has: {examples} examples make "
            f"{available} batch(es) of {batch_size}. Pass steps_per_epoch <= {available}, or leave it out (an epoch "
            "is then every batch); onnxtrain does not repeat the data within an epoch. Nothing was trained."
        )
    if not shuffle and value < available and prints_here():
        warnings.warn(
            f"fit(steps_per_epoch={value}, shuffle=False) trains the same first {value} of the {available} batches "
            "every epoch (each epoch takes the first batches of its order, which shuffle=False keeps fixed); the "
            "other examples are never trained on. Shuffle, or leave steps_per_epoch out.",
            UserWarning,
            stacklevel=4,  # the caller of fit: Model.fit -> Trainer.fit -> here
        )
    return int(value)
