"""The world of this process: which communicator `init()` set, which every following compile and fit use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from onnxtrain.distributed._communicator import Communicator
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

BACKENDS = ("mpi", "torch")

# The one piece of process-wide state: a process belongs to one world, as with MPI_Init or
# torch.distributed.init_process_group, and the models it compiles after joining train in it.
_world: list[Communicator] = []


def init(backend: str = "mpi", communicator: Communicator | None = None) -> Communicator:
    """Join the world of processes that the launcher started (mpiexec, srun, torchrun, Ray Train): every model
    compiled after this call trains data-parallel over it.

    Args:
        backend: "mpi" (mpi4py's COMM_WORLD) or "torch" (torch.distributed's default group, gloo).
        communicator: a communicator of your own (any `Communicator`) instead of `backend`'s.

    Returns:
        The communicator: `.rank` and `.size` say where this process stands.

    Raises:
        InvalidArgumentError: an unknown backend; or "mpi" finds a world of one process where the launcher says it
            started several (torchrun's WORLD_SIZE, PMI_SIZE, OMPI_COMM_WORLD_SIZE, SLURM_STEP_NUM_TASKS), which
            would train N separate runs, each as process 0.

    Example:
        ```python
        import onnxtrain.distributed as dist

        world = dist.init()  # mpiexec -n 4 python -m mpi4py train.py
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=5, batch_size=256)  # each process takes 64 rows of each batch of 256
        if world.rank == 0:
            model.save("model")
        ```
    """
    if communicator is None:
        if backend not in BACKENDS:
            raise InvalidArgumentError(f"init(backend=...) expects one of {list(BACKENDS)}. Received: {backend!r}")
        if backend == "mpi":
            from onnxtrain.distributed._mpi import MPICommunicator, check_launched_size

            communicator = MPICommunicator()
            check_launched_size(communicator.size, os.environ)  # mpi4py alone, under torchrun or another MPI
        else:
            from onnxtrain.distributed._torch import TorchCommunicator

            communicator = TorchCommunicator()
    elif not isinstance(communicator, Communicator):
        raise InvalidTypeError(
            "init(communicator=...) expects a Communicator (rank, size, all_reduce_sum, broadcast, abort). "
            f"Received: {type(communicator).__name__}"
        )
    _world[:] = [communicator]
    return communicator


def world() -> Communicator | None:
    """The communicator `init()` set, or None (this process trains alone)."""
    return _world[0] if _world else None


def rank() -> int:
    """This process's rank in the world (0 before `init()`)."""
    return _world[0].rank if _world else 0


def size() -> int:
    """The number of processes in the world (1 before `init()`)."""
    return _world[0].size if _world else 1


def leave() -> None:
    """Train alone again: models compiled after this call are not data-parallel (the communicator itself is not
    closed; MPI finalises at exit). `alone()` does so for a block, and joins the world again after it."""
    _world.clear()


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """A block in which this process trains alone, as after `leave()`, and after which it is in its world again:
    for a model that only some processes load or compile (compile, and `load_model`, which compiles, are
    collective in a world: the others would never come, and this process would wait for them forever).

    Models compiled in the block stay this process's alone: they evaluate, predict and save with no other process,
    in the block and after it (fit them in the block: after it, fit says they were compiled alone). A model
    compiled in the world needs no block for evaluate, predict or save, which are local.

    Example:
        ```python
        world = dist.init()
        model.fit(x, y, epochs=5, batch_size=256, callbacks=[ModelCheckpoint("best", save_best_only=True)])
        if world.rank == 0:
            with dist.alone():
                best = onnxtrain.load_model("best")
            print(best.evaluate(x_test, y_test))
        ```
    """
    joined = list(_world)
    _world.clear()
    try:
        yield
    finally:
        _world[:] = joined
