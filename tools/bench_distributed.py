"""All-reduce and data-parallel step timings (issue 22, docs/scaling.md), under MPI:

    mpiexec -n N python -m mpi4py tools/bench_distributed.py [--model mlp|cnn] [--batch 100] [--steps 200]

Process 0 prints, as JSON lines: the packed all-reduce of the model's gradients (+ loss sum and count) and of
1/10/100 MB buffers (median and min over --repeats calls, ms); then the portable engine's train step on a global
batch of --batch random images split over the N processes (median ms over --steps steps after 20 warm-up steps), and
the part of it spent in the all-reduce; with N=1 also the step of the same engine without any world (today's
single-process path) and on half the batch (for the compute model of docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _tutorial import cnn_layers, tutorial_layers

import onnxtrain.distributed as dist
from onnxtrain import Sequential
from onnxtrain.optimizers import Adam


class Timed:
    """A communicator that times its all-reduces (the packed gradient one of each step)."""

    def __init__(self, inner: dist.Communicator):
        self.inner = inner
        self.seconds: list[float] = []

    @property
    def rank(self) -> int:
        return self.inner.rank

    @property
    def size(self) -> int:
        return self.inner.size

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        start = time.perf_counter()
        self.inner.all_reduce_sum(buffer)
        self.seconds.append(time.perf_counter() - start)

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        self.inner.broadcast(buffer, root)

    def abort(self, code: int = 1) -> None:
        self.inner.abort(code)


def all_reduce_ms(world: dist.Communicator, elements: int, repeats: int) -> tuple[float, float]:
    buffer = np.ones(elements, np.float32)
    times = []
    for _ in range(repeats):
        world.all_reduce_sum(np.zeros(1, np.float32))  # line the processes up
        start = time.perf_counter()
        world.all_reduce_sum(buffer)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3), float(np.min(times) * 1e3)


def step_ms(model_name: str, batch: int, steps: int, world: Timed | None) -> dict[str, Any]:
    layers = tutorial_layers() if model_name == "mlp" else cnn_layers(dropout=0.0)
    model = Sequential.of(*layers, seed=1)
    if world is not None:
        dist.init(communicator=world)
    threads = max(1, (os.cpu_count() or 1) // (world.size if world is not None else 1))  # a core each, no more
    model.compile(optimizer=Adam(1e-3), loss="sparse_categorical_crossentropy", threads=threads)
    engine = model._trainer.engine  # type: ignore[attr-defined]
    rank, size = (world.rank, world.size) if world is not None else (0, 1)
    rows = dist.local_rows(0, batch, rank, size)
    rng = np.random.default_rng(rank)
    x = rng.random((rows.stop - rows.start, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    times = []
    for step in range(20 + steps):
        start = time.perf_counter()
        engine.train_step(x, y)
        if step >= 20:
            times.append(time.perf_counter() - start)
    reduce = world.seconds[-steps:] if world is not None else []
    parameters = sum(int(np.prod(w.shape)) for w in model.get_weights().values())
    model.close()
    dist.leave()
    return {
        "step_ms": float(np.median(times) * 1e3),
        "all_reduce_in_step_ms": float(np.median(reduce) * 1e3) if reduce else 0.0,
        "rows": len(x),
        "parameters": parameters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    world = dist.MPICommunicator()
    report = print if world.rank == 0 else (lambda *a, **k: None)
    common = {"model": args.model, "processes": world.size, "cpus": os.cpu_count(), "batch": args.batch}
    layered = step_ms(args.model, args.batch, args.steps, Timed(world))
    elements = layered["parameters"] + 2
    for label, count in [("gradients", elements), ("1 MB", 250_000), ("10 MB", 2_500_000), ("100 MB", 25_000_000)]:
        median, low = all_reduce_ms(world, count, args.repeats if count < 10_000_000 else 10)
        report(json.dumps({**common, "all_reduce": label, "bytes": 4 * count, "median_ms": median, "min_ms": low}))
    report(json.dumps({**common, "path": "distributed", **layered}))
    if world.size == 1:
        report(json.dumps({**common, "path": "alone", **step_ms(args.model, args.batch, args.steps, None)}))
        half = step_ms(args.model, args.batch // 2, args.steps, None)
        report(json.dumps({**common, "batch": args.batch // 2, "path": "alone", **half}))


if __name__ == "__main__":
    main()
