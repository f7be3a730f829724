"""The portable engine's two update paths side by side, per optimizer: the update in the ONNX graph against the fused
kernel (onnxtrain/portable/_fused.py), in one process on the same shuffled batches.

Both engines train the tutorial MLP (784-300-100-10, batch 100, 2 threads) from the same seed. They alternate chunks
of --steps steps, so both see the same machine load; the first --warmup chunks are dropped. Prints each engine's
median µs per step and the median of the per-chunk speed-ups of the fused engine. Needs numba (onnxtrain[fast]).

Usage: python tools/bench_update.py [--optimizers sgd,momentum,rmsprop,adagrad,adam,adamax] [--chunks 24] [--steps 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _tutorial import tutorial_data, tutorial_model

from onnxtrain import losses, optimizers
from onnxtrain._float_env import FlushToZero
from onnxtrain.errors import OnnxtrainError
from onnxtrain.portable import PortableEngine


def data(rows: int = 60000) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        train, _ = tutorial_data()
        return train.x, train.y, "Fashion-MNIST"
    except OnnxtrainError as e:
        rng = np.random.default_rng(0)
        x = rng.random((rows // 10, 28, 28, 1), dtype=np.float32)
        return x, rng.integers(0, 10, len(x)).astype(np.int64), f"random data (no Fashion-MNIST: {e})"


def compare(name: str, x: np.ndarray, y: np.ndarray, chunks: int, steps: int, warmup: int) -> str:
    def engine(update: str) -> PortableEngine:
        model = tutorial_model(seed=12)
        loss = losses.get("softmax_cross_entropy_with_logits")
        return PortableEngine(model.layers, loss, optimizers.get(name), threads=2, update=update)

    engines = {"graph": engine("graph"), "fused": engine("fused")}
    order = np.random.default_rng(0).permutation(len(x))
    batches = len(x) // 100
    xb, yb = np.empty((100, *x.shape[1:]), x.dtype), np.empty(100, y.dtype)
    times: dict[str, list[float]] = {update: [] for update in engines}
    step = 0
    with FlushToZero().active():
        for _ in range(chunks):
            for update, e in engines.items():  # the same batches for both
                started = time.perf_counter()
                for s in range(step, step + steps):
                    rows = order[(s % batches) * 100 : (s % batches + 1) * 100]
                    np.take(x, rows, axis=0, out=xb, mode="clip")
                    np.take(y, rows, axis=0, out=yb, mode="clip")
                    e.train_step(xb, yb)
                times[update].append((time.perf_counter() - started) / steps * 1e6)
            step += steps
    graph, fused = np.array(times["graph"][warmup:]), np.array(times["fused"][warmup:])
    ratio = graph / fused
    for e in engines.values():
        e.close()
    return (
        f"| {name} | {np.median(graph):.0f} | {np.median(fused):.0f} | "
        f"{np.median(ratio):.2f}x ({ratio.min():.2f}-{ratio.max():.2f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", default="sgd,momentum,rmsprop,adagrad,adam,adamax")
    parser.add_argument("--chunks", type=int, default=24)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=2, help="chunks dropped from the start")
    args = parser.parse_args()
    if args.chunks <= args.warmup:
        raise SystemExit(f"--chunks must exceed --warmup ({args.warmup}). Received: {args.chunks}")
    x, y, source = data()
    print(f"{source}; {args.chunks - args.warmup} chunks of {args.steps} steps per engine\n")
    print("| optimizer | graph update µs/step | fused µs/step | fused speed-up per chunk, median (min-max) |")
    print("|---|---|---|---|")
    for name in (n.strip() for n in args.optimizers.split(",") if n.strip()):
        print(compare(name, x, y, args.chunks, args.steps, args.warmup), flush=True)


if __name__ == "__main__":
    main()
