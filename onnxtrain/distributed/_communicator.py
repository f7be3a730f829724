"""The communicator interface a data-parallel fit needs (rank, size, in-place all-reduce sum, broadcast, abort),
and what is built on it alone: a bytes broadcast, the rows each process takes of a global batch, and a meeting that
says when a process has waited long for the others."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


@runtime_checkable
class Communicator(Protocol):
    """One process's handle on a world of `size` processes, numbered 0..size-1.

    Every call is collective: all processes of the world make it, in the same order, with buffers of the same
    shape and dtype. Implementations wrap an existing distributed engine (`MPICommunicator`,
    `TorchCommunicator`); onnxtrain has no sockets or protocols of its own.

    A communicator may also offer `ibarrier() -> Callable[[], bool]`, a non-blocking barrier (`MPICommunicator`
    does), whose callable says whether every process has reached it: `meet` then warns a process that waits long.
    """

    @property
    def rank(self) -> int:
        """This process's number; 0 prints and writes the files."""
        ...

    @property
    def size(self) -> int:
        """How many processes the world has."""
        ...

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        """Replace the C-contiguous `buffer` by its elementwise sum over all processes, in place."""
        ...

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        """Overwrite the C-contiguous `buffer` of every process with that of process `root`, in place."""
        ...

    def abort(self, code: int = 1) -> None:
        """End every process of the world now, with exit status `code` (what one process does when it fails
        alone, so that the others are not left waiting in a collective call)."""
        ...


def broadcast_bytes(communicator: Communicator, data: bytes | None, root: int = 0) -> bytes:
    """`data` of process `root` on every process (the others pass anything, None included): two broadcasts, the
    length and then the bytes."""
    length = np.array([len(data) if communicator.rank == root and data is not None else 0], np.int64)
    communicator.broadcast(length, root)
    buffer = np.empty(int(length[0]), np.uint8)
    if communicator.rank == root and data is not None:
        buffer[:] = np.frombuffer(data, np.uint8)
    communicator.broadcast(buffer, root)
    return buffer.tobytes()


def local_rows(start: int, stop: int, rank: int, size: int) -> slice:
    """Process `rank`'s share of the rows [start, stop) of a global batch: contiguous, the sizes differing by at
    most one, in rank order, so that the shares of all processes put together are the global batch.

    Raises:
        InvalidTypeError: an argument is not an int.
        InvalidArgumentError: not 0 <= start <= stop, or not 0 <= rank < size.
    """
    for name, value in (("start", start), ("stop", stop), ("rank", rank), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidTypeError(
                f"local_rows expects int arguments. Received: {name}={value!r} ({type(value).__name__})"
            )
    if not 0 <= start <= stop:
        raise InvalidArgumentError(
            f"local_rows expects the rows 0 <= start <= stop of a global batch. Received: start={start!r}, "
            f"stop={stop!r}"
        )
    if not 0 <= rank < size:
        raise InvalidArgumentError(
            f"local_rows expects a rank of a world of at least one process, 0 <= rank < size. Received: "
            f"rank={rank!r}, size={size!r}"
        )
    count = stop - start
    return slice(start + count * rank // size, start + count * (rank + 1) // size)


STALL_SECONDS = 60.0  # how long `meet` waits before it warns (Horovod's stall check waits as long)


def meet(communicator: Communicator, stalled: Callable[[float], None], after: float | None = None) -> None:
    """Wait until every process of the world has reached this call, and call `stalled(seconds waited)` once, in
    a process still waiting after `after` seconds (default `STALL_SECONDS`), then wait on: a process that will
    never come (only process 0 compiles a model) would otherwise leave this one blocked without a word. Polls the
    communicator's non-blocking barrier (`ibarrier`); without one (a communicator of your own), returns at once,
    and the next collective call waits as before."""
    start = getattr(communicator, "ibarrier", None)
    if start is None or communicator.size == 1:
        return
    done = start()
    began, warned = time.monotonic(), False
    patience = STALL_SECONDS if after is None else after
    pause = 1e-4
    while not done():
        waited = time.monotonic() - began
        if not warned and waited >= patience:
            stalled(waited)
            warned = True
        time.sleep(pause)
        pause = min(2 * pause, 0.05)  # at once where all are there, and a process waiting costs no core
