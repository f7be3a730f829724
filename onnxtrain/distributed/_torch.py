"""`TorchCommunicator`: the communicator over torch.distributed, for processes that torchrun or Ray Train
started (gloo on the CPU). The buffers stay numpy arrays: torch tensors are views of their memory."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from onnxtrain.distributed._mpi import _check_contiguous
from onnxtrain.errors import RuntimeSetupError


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


class TorchCommunicator:
    """The default torch.distributed process group, initialised here from the environment torchrun sets
    (MASTER_ADDR, RANK, WORLD_SIZE, ...) unless the launcher (Ray Train) has done it."""

    def __init__(self, backend: str = "gloo"):
        torch, dist = _dist()
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
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
            self._dist.all_reduce(self._torch.from_numpy(buffer), op=self._dist.ReduceOp.SUM)

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        _check_contiguous(buffer, "broadcast")
        if self.size > 1:
            self._dist.broadcast(self._torch.from_numpy(buffer), src=root)

    def abort(self, code: int = 1) -> None:
        # torch.distributed has no job-wide abort: this process ends, and the others' next collective fails
        # (gloo's timeout) unless the launcher (torchrun, Ray Train) ends them first, as both do.
        sys.stderr.flush()
        os._exit(code)
