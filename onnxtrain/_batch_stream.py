"""Data given batch by batch, as Keras takes it: a Python generator (any iterator) or a `keras.utils.PyDataset`
(duck-typed: `__len__`, `__getitem__(index) -> batch`, optional `on_epoch_begin()` / `on_epoch_end()`). Which
arguments are such data (`is_streamed`), and `BatchStream`: each batch read with the array checks of
`_batches.read_batches` as it comes, and the batches of each epoch as Keras 3's `EpochIterator` walks them. No
more than one batch is held at a time: the data is never gathered whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from onnxtrain.arrays import InputSpec, is_array_like, prepare_inputs
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, OnnxtrainError
from onnxtrain.progress import prints_here

# (x, y, sample_weight or None, where the batch came from: for messages) -> the batch read as fit reads arrays
BatchReader = Callable[[Any, Any, Any, str], Any]

# Keras' EpochIterator warning, word for word, so that a search for it finds both
RAN_OUT = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or generator can generate at "
    "least `steps_per_epoch * epochs` batches."
)


def is_generator(data: Any) -> bool:
    """Whether `data` is a Python generator or another iterator (Keras takes generators): read once, batch by
    batch."""
    return isinstance(data, Iterator) and not is_array_like(data)


def is_py_dataset(data: Any) -> bool:
    """Whether `data` is a `keras.utils.PyDataset` or anything shaped like one: `len(data)` batches, `data[i]` the
    i-th. Arrays, array-likes, tuples, lists, dicts and onnxtrain Datasets hold examples, not batches."""
    if isinstance(data, tuple | list | dict | str | bytes | np.ndarray | Dataset) or is_array_like(data):
        return False
    kind = type(data)
    return hasattr(kind, "__len__") and hasattr(kind, "__getitem__")


def is_streamed(data: Any) -> bool:
    """Whether `data` (fit's, evaluate's or predict's x) gives its batches one by one: a generator or a
    PyDataset."""
    return is_generator(data) or is_py_dataset(data)


def check_steps(value: Any, argument: str) -> int | None:
    """Keras' `steps`, `steps_per_epoch` and `validation_steps`: None or a positive int.

    Raises:
        InvalidArgumentError: naming `argument` (as "fit(steps_per_epoch=...)") and the value.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidArgumentError(f"{argument} expects a positive int or None. Received: {value!r}")
    return int(value)


class BatchStream:
    """The batches of a generator or a PyDataset, read and checked one at a time by `read`.

    A generator is read once, across epochs and validations: each pass (`batches`) takes the next `steps` batches
    (all that is left where `steps` is None). A PyDataset is read by index: a pass takes the next `steps` of its
    `len(data)` batches, in order, or in a shuffled order for training with `shuffle` (a new order, from the seed
    and the epoch, each time the batches run out: Keras' order of batches, not of examples); `on_epoch_begin` and
    `on_epoch_end` are called around each pass, as Keras does.

    The first batch is read when the stream is made, so that fit refuses bad data before any step; every later
    batch must be structured as it is ((x, y), or (x, y, sample_weight)).

    Args:
        data: the generator or PyDataset.
        argument: its argument's name in messages ("dataset", "validation").
        read: reads one batch: (x, y, sample_weight or None, where) -> a `_batches.Batches`, raising what
            `read_batches` raises for arrays; `where` names the batch in its messages.
        order: (seed, epoch, count) -> a permutation of `count`: the shuffled order of an epoch
            (`_batches.epoch_order`, which orders the examples of arrays so).

    Raises:
        InvalidArgumentError: a PyDataset of no batches, or a generator that yields none.
        (And what reading the first batch raises, naming it.)
    """

    class_names: tuple[str, ...] | None = None  # what a Dataset tells fit; batches tell nothing
    input_scale: float | None = None

    def __init__(self, data: Any, argument: str, read: BatchReader, order: Callable[[int, int, int], np.ndarray]):
        self.data = data
        self.argument = argument
        self._read = read
        self._order_of = order
        self.generator = is_generator(data)
        self.kind = "generator" if self.generator else type(data).__name__
        self._length = None if self.generator else _length(data, argument)
        self.steps: int | None = self._length  # batches per pass (None: until a generator ends)
        self._shuffle, self._seed = False, 0
        self._weigh_classes: Callable[[np.ndarray], np.ndarray] | None = None
        self._order: list[int] = []  # a PyDataset's batch indices left in the current pass
        self._taken = 0  # batches a generator has given (its batches' numbers in messages)
        self._ended = False  # a generator has no batches left
        self._held: Any = None  # a generator's batch read ahead (the first, or one peeked at an epoch's start)
        self._warned = False
        self._item_weighted: bool | None = None  # whether the first batch came with sample weights
        first = self._next(0)
        if first is None:
            raise InvalidArgumentError(f"{argument} expects batches. Received: a generator that yields none")
        self.first = first
        self._held = first  # a generator's next, or a PyDataset's batch 0: read once, used by the first pass

    @property
    def w(self) -> np.ndarray | None:
        """The first batch's weights (class weights included): what tells fit that its steps are weighted."""
        return self.first.w

    # --- fit's settings --------------------------------------------------------------------------------------
    def start_fit(self, steps_per_epoch: Any, shuffle: bool, seed: int) -> int | None:
        """Take fit's `steps_per_epoch`, `shuffle` and `seed` (a PyDataset's batch order); returns the batches of
        an epoch (None: a generator without steps_per_epoch, read to its end in the first epoch).

        Raises:
            InvalidArgumentError: steps_per_epoch is not a positive int, or more than a PyDataset's batches.
        """
        steps = check_steps(steps_per_epoch, "fit(steps_per_epoch=...)")
        if steps is not None and self._length is not None and steps > self._length:
            raise InvalidArgumentError(
                f"fit(steps_per_epoch={steps}) asks for more batches than the {self.kind} has: len() = "
                f"{self._length}. Pass steps_per_epoch <= {self._length}, or leave it out (an epoch is then every "
                "batch). Nothing was trained."
            )
        # shuffle does not apply to a generator, which orders its own batches (Keras ignores it there too)
        self._shuffle, self._seed = bool(shuffle) and not self.generator, seed
        self.limit(steps)
        return self.steps

    def limit(self, steps: int | None) -> None:
        """Each pass takes `steps` batches (None: every batch of a PyDataset; a generator's until it ends); more
        than a PyDataset has (evaluate's `steps`, `validation_steps`) take each batch once, with Keras' warning."""
        if steps is not None and self._length is not None and steps > self._length:
            self._warn(f"{self.argument} has {self._length} batches, fewer than the {steps} steps asked", stacklevel=4)
            steps = self._length
        self.steps = steps if steps is not None or self._length is None else self._length

    def weigh_classes(self, weights_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """Weigh each batch's examples by `weights_of(labels)` too (fit's class_weight), checked on the first
        batch now."""
        self.first.w = _product(self.first.w, weights_of(self.first.y))  # (a generator's first is held: its next)
        self._weigh_classes = weights_of

    # --- passes --------------------------------------------------------------------------------------------
    def has_batches(self, epoch: int) -> bool:
        """Whether fit's `epoch` gets any batch (a generator's next is read ahead to know); where not (a generator
        that ended), warn once, as Keras does."""
        if not self.generator:
            return True
        if self._held is None and not self._ended:
            self._held = self._next(self._taken)
        if self._held is not None:
            return True
        self._warn(f"{self.argument} (a generator) has no batches left for epoch {epoch}", stacklevel=5)
        return False

    def batches(self, epoch: int = 1) -> Iterator[Any]:
        """The batches of one pass (fit's `epoch`: its shuffled order), each read and checked; a PyDataset's
        `on_epoch_begin` before them and `on_epoch_end` after the last."""
        if self.generator:
            if self._ended and self._held is None:
                self._refuse_read_out()
            yield from self._generator_pass(epoch)
            return
        begin = getattr(self.data, "on_epoch_begin", None)
        if callable(begin):
            begin()
        for _ in range(self.steps or 0):
            if not self._order:
                self._order = self._pass_order(epoch)
            index = self._order.pop(0)
            batch, self._held = (
                (self._held, None) if index == 0 and self._held is not None else (self._next(index), None)
            )
            assert batch is not None  # a PyDataset's batch is there
            yield batch
        end = getattr(self.data, "on_epoch_end", None)
        if callable(end):
            end()

    def _generator_pass(self, epoch: int) -> Iterator[Any]:
        given = 0
        while self.steps is None or given < self.steps:
            batch, self._held = self._held, None
            if batch is None:
                batch = self._next(self._taken)
            if batch is None:
                if self.steps is not None:  # Keras warns where steps were asked for; else the end is the epoch's
                    self._warn(
                        f"{self.argument} (a generator) gave {given} of the {self.steps} batches of epoch {epoch}",
                        stacklevel=7,  # _generator_pass <- batches <- the epoch loop <- Trainer.fit <- Model.fit
                    )
                return
            given += 1
            yield batch

    def _pass_order(self, epoch: int) -> list[int]:
        length = self._length or 0
        if not self._shuffle:
            return list(range(length))
        return [int(i) for i in self._order_of(self._seed, epoch, length)]

    def _refuse_read_out(self) -> None:
        raise InvalidArgumentError(
            f"{self.argument} is a generator, which is read once, and an earlier pass read it to its end (it gave "
            f"{self._taken} batches); it has none left for this one. Pass validation_steps=N (steps=N) with a "
            "generator that yields N batches each time (loop it: while True: ...), or a PyDataset, which each pass "
            "reads anew."
        )

    def _warn(self, what: str, stacklevel: int) -> None:
        if not self._warned and prints_here():
            warnings.warn(f"{RAN_OUT} ({what}.)", UserWarning, stacklevel=stacklevel)
        self._warned = True

    # --- one batch -----------------------------------------------------------------------------------------
    def _next(self, index: int) -> Any:
        """The batch `index` of a PyDataset, or a generator's next (None once it ends), read and checked."""
        if self.generator:
            if self._ended:
                return None
            try:
                item = next(self.data)
            except StopIteration:
                self._ended = True
                return None
            self._taken += 1
            where = f"{self.argument} batch {self._taken} (from the generator)"
        else:
            item = self.data[index]
            where = f"{self.argument}[{index}]"
        return self._read_item(item, where)

    def _read_item(self, item: Any, where: str) -> Any:
        if isinstance(item, list):  # Keras' PyDataset takes a list as the tuple
            item = tuple(item)
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            received = f"a tuple of {len(item)}" if isinstance(item, tuple) else type(item).__name__
            raise InvalidTypeError(
                f"{where} expects an (x, y) or (x, y, sample_weight) tuple: fit and evaluate read each batch's "
                f"labels with its inputs (y=... is not taken with a {self.kind}). Received: {received}"
            )
        weighted = len(item) == 3 and item[2] is not None
        if self._item_weighted is None:
            self._item_weighted = weighted
        elif weighted != self._item_weighted:
            structures = ("(x, y)", "(x, y, sample_weight)")
            raise InvalidArgumentError(
                f"{where} expects the structure of the first batch, {structures[self._item_weighted]}: every batch "
                f"has sample weights or none. Received: {structures[weighted]}"
            )
        try:
            batch = self._read(item[0], item[1], item[2] if weighted else None, where)
        except OnnxtrainError as error:
            raise type(error)(f"{where}: {error}") from error
        if self._weigh_classes is not None:
            batch.w = _product(batch.w, self._weigh_classes(batch.y))
        return batch


def _product(sample_weight: np.ndarray | None, class_weights: np.ndarray) -> np.ndarray:
    return class_weights if sample_weight is None else sample_weight * class_weights


def _length(data: Any, argument: str) -> int:
    length = len(data)
    if length < 1:
        raise InvalidArgumentError(
            f"{argument} expects a {type(data).__name__} of at least one batch. Received: len({argument}) = {length}"
        )
    return int(length)


def batch_inputs(item: Any) -> Any:
    """The inputs of a batch predict reads, as Keras takes them: the first item of a tuple or list ((x,), (x, y),
    (x, y, sample_weight)), else the batch itself (an array, a dict {input name: array})."""
    if isinstance(item, tuple | list) and 1 <= len(item) <= 3:
        return item[0]
    return item


def predicted_batches(data: Any, steps: int | None, argument: str = "x") -> Iterator[tuple[Any, str]]:
    """The inputs of each batch predict reads from the generator or PyDataset `data` (at most `steps` batches,
    all where None), with where each came from for messages; a PyDataset's on_epoch_begin/on_epoch_end around
    them."""
    if is_generator(data):
        for number, item in enumerate(data, start=1):
            yield batch_inputs(item), f"{argument} batch {number} (from the generator)"
            if steps is not None and number >= steps:
                return
        return
    length = _length(data, argument)
    begin = getattr(data, "on_epoch_begin", None)
    if callable(begin):
        begin()
    for index in range(length if steps is None else min(steps, length)):
        yield batch_inputs(data[index]), f"{argument}[{index}]"
    end = getattr(data, "on_epoch_end", None)
    if callable(end):
        end()


def predict_stream(
    data: Any,
    steps: int | None,
    inputs: Sequence[InputSpec],
    input_scale: float,
    run: Callable[[Any], list[np.ndarray]],
) -> list[np.ndarray]:
    """Each output of the model over the batches of the generator or PyDataset `data` (at most `steps`), one
    batch at a time: its inputs checked as predict checks arrays (`prepare_inputs`), then `run` (prepared inputs
    -> the model's outputs); the outputs of every batch joined.

    Raises:
        InvalidArgumentError: a generator that yields no batch. (And what `prepare_inputs` raises, naming the
            batch.)
    """
    parts = []
    for x, where in predicted_batches(data, steps):
        try:
            prepared, _ = prepare_inputs(x, inputs, input_scale, "x")
        except OnnxtrainError as error:
            raise type(error)(f"{where}: {error}") from error
        parts.append(run(prepared))
    if not parts:
        raise InvalidArgumentError("x expects batches to predict. Received: a generator that yields none")
    return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]
