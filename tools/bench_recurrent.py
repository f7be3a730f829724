"""Time training an LSTM on the portable engine with the recurrent op differentiated two ways: unrolled over the time
steps (`autodiff/_recurrent.py`) and kept as the op with a Scan backward (`autodiff/_recurrent_scan.py`).

For each sequence length, the two ways alternate in one process (unroll, scan, per length and --repeats round): the
wall-clock time of `model.compile` (building the train step and ONNX Runtime's sessions) and the median ms per train
step of `fit` over --batches batches after a warm-up epoch. The model is Input(T, features), LSTM(units), Dense(1),
MSE, Adam, batch 32. Prints a markdown table.

    .venv/bin/python tools/bench_recurrent.py --lengths 50,200,400 --units 32 --features 64
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np

from onnxtrain import Sequential
from onnxtrain.autodiff import _backward
from onnxtrain.layers import LSTM, Dense, Input

BATCH = 32


@contextmanager
def differentiated(way: str) -> Iterator[None]:
    """ "unroll": every recurrent node on the path to the loss unrolled, as before the Scan rule; "scan": as
    `autodiff.backward` chooses."""
    if way == "unroll":
        with mock.patch.object(_backward, "unrolled_for_gradient", lambda node, facts: True):
            yield
    else:
        yield


def measure(way: str, steps: int, units: int, features: int, batches: int, threads: int) -> tuple[float, float]:
    """(compile seconds, median ms per train step)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * batches, steps, features)).astype(np.float32)
    y = rng.normal(size=(BATCH * batches, 1)).astype(np.float32)
    model = Sequential.of(Input(steps, features), LSTM(units), Dense(1))
    with differentiated(way):
        start = time.perf_counter()
        model.compile(optimizer="adam", loss="mse", engine="portable", threads=threads)
        compile_s = time.perf_counter() - start
    model.fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)  # warm-up
    per_step = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        per_step.append((time.perf_counter() - start) / batches * 1e3)
    model.close()
    return compile_s, statistics.median(per_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="50,200,400", help="sequence lengths, comma-separated")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--batches", type=int, default=10, help="train steps per timed epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ways", default="unroll,scan", help="unroll and/or scan, in the order they alternate")
    args = parser.parse_args()
    ways = args.ways.split(",")
    results: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for steps in (int(v) for v in args.lengths.split(",")):
        for _ in range(args.repeats):
            for way in ways:
                result = measure(way, steps, args.units, args.features, args.batches, args.threads)
                results.setdefault((steps, way), []).append(result)
                print(f"T={steps} {way}: compile {result[0]:.2f} s, {result[1]:.1f} ms/step", flush=True)
    print(f"\nLSTM({args.units}) on {args.features} features, batch {BATCH}, {args.threads} threads")
    print("| T | way | compile (s) | ms / train step |")
    print("|---|---|---|---|")
    for (steps, way), runs in results.items():
        compile_s = statistics.median(r[0] for r in runs)
        step_ms = statistics.median(r[1] for r in runs)
        print(f"| {steps} | {way} | {compile_s:.2f} | {step_ms:.1f} |")


if __name__ == "__main__":
    main()
