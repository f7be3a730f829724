"""What a data-parallel fit adds to `Trainer.fit`: the checks that every process trains alike, the seed and flags
that all processes agree on, and the callbacks of processes other than 0, which write no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxtrain.callbacks import Callback, CSVLogger, ModelCheckpoint
from onnxtrain.distributed._communicator import Communicator
from onnxtrain.distributed._reduce import all_reduce_sums
from onnxtrain.distributed._world import world
from onnxtrain.errors import InvalidArgumentError, ModelStateError


def check_world(communicator: Communicator | None, examples: int, batch_size: int) -> Communicator | None:
    """The world a fit trains over (`communicator`, the engine's), after checking, on every process alike, that
    all processes hold the same number of training examples and that a global batch has a row for each.

    Raises:
        ModelStateError: `onnxtrain.distributed.init()` or `leave()` was called after compile.
        InvalidArgumentError: the processes hold different numbers of examples, or a batch is smaller than the
            world.
    """
    if world() is not communicator:
        raise ModelStateError(
            "onnxtrain.distributed.init() or leave() was called after compile(): the compiled engine still "
            f"trains {'alone' if communicator is None else 'over the world it was compiled in'}. Call "
            "init() first, then compile() (or load_model)."
        )
    if communicator is None:
        return None
    count, squares = all_reduce_sums(communicator, [examples, examples * examples])
    if count * count != communicator.size * squares:  # equal iff every process holds the same count
        raise InvalidArgumentError(
            f"A data-parallel fit expects every process to hold the same training data. Received: {examples} "
            f"examples in process {communicator.rank}, {count / communicator.size:g} on average over "
            f"{communicator.size} processes"
        )
    if min(batch_size, examples) < communicator.size:
        raise InvalidArgumentError(
            f"A data-parallel fit over {communicator.size} processes expects batch_size >= {communicator.size} "
            f"(a row of each batch for each process). Received: batch_size={batch_size} on {examples} examples"
        )
    return communicator


def shared_seed(communicator: Communicator, seed: int) -> int:
    """Process 0's `seed`, on every process: one shuffle for all of them (a collective call)."""
    buffer = np.array([seed], np.int64)
    communicator.broadcast(buffer)
    return int(buffer[0])


def any_process(communicator: Communicator, flag: bool) -> bool:
    """Whether `flag` is set in any process (a collective call: every process makes it)."""
    return all_reduce_sums(communicator, [float(flag)])[0] > 0


def not_writing(callbacks: Any) -> Any:
    """`callbacks` less those that write files (CSVLogger, ModelCheckpoint): what processes other than 0 run."""
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if callbacks is None or not isinstance(callbacks, Sequence | set):
        return callbacks  # CallbackList says what is wrong with it
    return [c for c in callbacks if not isinstance(c, CSVLogger | ModelCheckpoint)]
