"""Time the gradient graph that onnxtrain.autodiff makes of a LeNet-style CNN (the loss graph of
tests/test_autodiff_nn_rules.py: Conv 32 same, MaxPool, Conv 64 valid, MaxPool, Dense 128, Dense 10, softmax
cross-entropy) on a batch of 28x28x1 images, next to its forward alone.

Two figures per graph, the runs of both graphs interleaved: the median CPU time of a run on 1 thread (steady on a
shared machine) and the fastest wall-clock run on `--threads` threads (what a train step waits for).

    .venv/bin/python tools/bench_autodiff_lenet.py --batch 100 --runs 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the LeNet builder lives with its test

from test_autodiff_nn_rules import lenet

from onnxtrain import autodiff


def session(model: onnx.ModelProto, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no spinning in the CPU time
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model, feeds, params = lenet(batch=args.batch, size=28)
    graphs = {"forward": model, "forward + gradients": autodiff.gradients(model, params)}
    single = {name: session(m, 1) for name, m in graphs.items()}
    multi = {name: session(m, args.threads) for name, m in graphs.items()}
    cpu: dict[str, list[float]] = {name: [] for name in graphs}
    wall: dict[str, list[float]] = {name: [] for name in graphs}
    for s in [*single.values(), *multi.values()]:
        s.run(None, feeds)
    for _ in range(args.runs):
        for name in graphs:
            start = time.process_time()
            single[name].run(None, feeds)
            cpu[name].append(time.process_time() - start)
            start = time.perf_counter()
            multi[name].run(None, feeds)
            wall[name].append(time.perf_counter() - start)
    for name, m in graphs.items():
        print(
            f"{name:20s} {len(m.graph.node):4d} nodes  CPU on 1 thread (median) {np.median(cpu[name]) * 1e3:7.1f} ms  "
            f"wall on {args.threads} threads (fastest) {min(wall[name]) * 1e3:7.1f} ms"
        )


if __name__ == "__main__":
    main()
