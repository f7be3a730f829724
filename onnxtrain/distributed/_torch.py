"""`TorchCommunicator`: the communicator over torch.distributed, for processes that torchrun or Ray Train
started (gloo on the CPU). The buffers stay numpy arrays: torch tensors are views of their memory."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from onnxtrain.distributed._mpi import _check_contiguous
from onnxtrain.errors import InvalidArgumentError, PeerProcessError, RuntimeSetupError


def _dist() -> Any:
    try:
        import torch
        import torch.distributed as dist
    except ImportError as e:
        raise RuntimeSetupError(
            "backend='torch' needs torch (`pip install onnxtrain[ray]` brings it with Ray Train); MPI needs none: "
            "`pip install onnxtrain[distributed]`."
        ) from e
    return torch, dist


# What torch.distributed's env:// rendezvous reads, which torchrun and Ray Train set in each process they start.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class TorchCommunicator:
    """The default torch.distributed process group, initialised here from the environment torchrun sets
    (MASTER_ADDR, RANK, WORLD_SIZE, ...) unless the launcher (Ray Train) has done it."""

    def __init__(self, backend: str = "gloo"):
        torch, dist = _dist()
        if not dist.is_initialized():
            missing = [name for name in LAUNCHER_VARIABLES if not os.environ.get(name)]
            if missing:
                raise InvalidArgumentError(
                    "init(backend='torch') expects a process that torchrun or Ray Train started, which sets "
                    f"{', '.join(LAUNCHER_VARIABLES)}. Received: no {missing[0]} in the environment. Launch with "
                    "`torchrun --nproc-per-node N script.py` or Ray Train (`onnxtrain.distributed.ray_train`), or "
                    "use MPI: `mpiexec -n N python -m mpi4py script.py` with init()."
                )
            try:
                dist.init_process_group(backend=backend)
            except (RuntimeError, ValueError) as e:  # the rendezvous failed or timed out
                raise PeerProcessError(
                    f"init(backend='torch') could not join the torch.distributed group (rank {os.environ['RANK']} "
                    f"of {os.environ['WORLD_SIZE']}, at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}): "
                    "the other processes were not reached."
                ) from e
        self._torch, self._dist = torch, dist

    @property
    def rank(self) -> int:
        return int(self._dist.get_rank())

    @property
    def size(self) -> int:
        return int(self._dist.get_world_size())

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        _check_contiguous(buffer, "all_reduce_sum")
        if self.size > 1:
            try:
                self._dist.all_reduce(self._torch.from_numpy(buffer), op=self._dist.ReduceOp.SUM)
            except RuntimeError as e:  # gloo: "Connection closed by peer", a time-out...
                raise self._peer_failed("all_reduce_sum") from e

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        _check_contiguous(buffer, "broadcast")
        if self.size > 1:
            try:
                self._dist.broadcast(self._torch.from_numpy(buffer), src=root)
            except RuntimeError as e:
                raise self._peer_failed("broadcast") from e

    def _peer_failed(self, call: str) -> PeerProcessError:
        return PeerProcessError(
            f"A peer process of the torch.distributed world failed or left during {call} (this is process "
            f"{self.rank} of {self.size}): its own error, in its output or the launcher's, says why. Resume from "
            "the last save (torchrun --max-restarts, Ray Train's FailureConfig)."
        )

    def abort(self, code: int = 1) -> None:
        # torch.distributed has no job-wide abort: this process ends, and the others' next collective fails
        # (gloo's timeout) unless the launcher (torchrun, Ray Train) ends them first, as both do.
        sys.stderr.flush()
        os._exit(code)
