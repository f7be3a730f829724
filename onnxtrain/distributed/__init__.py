"""Data-parallel training over processes and machines, on an existing distributed engine (MPI, or
torch.distributed under torchrun or Ray Train): `init()` joins the world, and every model compiled after it trains
over it. See docs/scaling.md.

```python
import onnxtrain.distributed as dist

world = dist.init()  # mpiexec -n 4 python -m mpi4py train.py
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=5, batch_size=256)  # the weights of one process on batches of 256, to float32 rounding
if world.rank == 0:
    model.save("model")
```
"""

from onnxtrain.distributed._communicator import Communicator, broadcast_bytes, local_rows
from onnxtrain.distributed._mpi import MPICommunicator
from onnxtrain.distributed._reduce import GradientReduction, all_reduce_sums
from onnxtrain.distributed._torch import TorchCommunicator
from onnxtrain.distributed._world import alone, init, leave, rank, size, world

__all__ = [
    "Communicator",
    "GradientReduction",
    "MPICommunicator",
    "TorchCommunicator",
    "all_reduce_sums",
    "alone",
    "broadcast_bytes",
    "init",
    "leave",
    "local_rows",
    "rank",
    "size",
    "world",
]
