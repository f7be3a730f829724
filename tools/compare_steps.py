"""Time the gradient graphs of two or more onnxtrain checkouts side by side: same session options, same weights,
the same real Fashion-MNIST batches, configurations alternating round by round in one process.

Each checkout's `gradient_model` of the fashion-cnn (tools/_tutorial.cnn_layers, Dropout 0.5) or the tutorial MLP
is built by that checkout (a child process with PYTHONPATH set to it), then every graph runs in this process. A
gradient graph is the portable engine's step without its fused update, so this isolates what a rule or rewrite
changes. Prints, per configuration, the median milliseconds per step over rounds of 16 steps and every round's
figure: on the 2-core machine, two-thread timings have slow phases lasting minutes (docs/measurements.md), so compare
rounds that ran side by side, not single numbers. Also prints the largest gradient difference against the first
configuration, on the first batch.

Usage: python tools/compare_steps.py CHECKOUT[:nchwc-off] CHECKOUT... [--threads 2] [--rounds 16] [--model cnn|mlp]

e.g. `git worktree add /tmp/base HEAD~1`, then `python tools/compare_steps.py /tmp/base . --threads 1`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from _tutorial import tutorial_data

STEPS_PER_ROUND = 16
_DUMP = """
import sys
sys.path.insert(0, sys.argv[3])
import onnx
from _tutorial import cnn_layers, tutorial_layers
from onnxtrain import Sequential, losses, optimizers
from onnxtrain.portable._graphs import gradient_model
layers = cnn_layers(0.5) if sys.argv[2] == "cnn" else tutorial_layers()
model = Sequential(layers, seed=1)
loss = losses.get("softmax_cross_entropy_with_logits")
onnx.save(gradient_model(model.layers, loss, optimizers.get("adam")), sys.argv[1])
"""


def gradient_graph(checkout: Path, model: str, folder: Path, index: int) -> onnx.ModelProto:
    """The gradient model that `checkout`'s onnxtrain builds (private: `portable._graphs.gradient_model`)."""
    path = folder / f"step{index}.onnx"
    environment = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    tools = str(Path(__file__).resolve().parent)
    subprocess.run(  # in the checkout: the working folder comes first on sys.path
        [sys.executable, "-c", _DUMP, str(path), model, tools], check=True, env=environment, cwd=checkout
    )
    return onnx.load(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", help="folders of onnxtrain checkouts; ':nchwc-off' disables NCHWc")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    args = parser.parse_args()

    train, _ = tutorial_data()
    count = STEPS_PER_ROUND * 100
    images, labels = np.asarray(train.x[:count], np.float32), np.asarray(train.y[:count]).astype(np.int64)
    sessions, graphs = [], []
    with tempfile.TemporaryDirectory() as folder:
        for index, spec in enumerate(args.checkouts):
            checkout, _, flag = spec.partition(":")
            graph = gradient_graph(Path(checkout), args.model, Path(folder), index)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
            options.add_session_config_entry("session.set_denormal_as_zero", "1")
            off = ["NchwcTransformer"] if flag == "nchwc-off" else []
            sessions.append(
                onnxruntime.InferenceSession(
                    graph.SerializeToString(), options, providers=["CPUExecutionProvider"], disabled_optimizers=off
                )
            )
            graphs.append(graph)
    rng = np.random.default_rng(0)
    weights = {}
    for value in graphs[0].graph.input:
        if value.name not in ("input", "labels"):
            shape = [d.dim_value or 100 for d in value.type.tensor_type.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
            drawn = rng.standard_normal(shape) * 0.05 if dtype.kind == "f" else np.zeros(shape)  # the step: 0
            weights[value.name] = np.asarray(drawn, dtype)

    def feeds(k: int) -> dict[str, np.ndarray]:
        rows = slice(k * 100, (k + 1) * 100)
        return {**weights, "input": images[rows].reshape(100, 28, 28, 1), "labels": labels[rows]}

    names = [o.name for o in sessions[0].get_outputs()]
    first = sessions[0].run(names, feeds(0))
    for spec, session in zip(args.checkouts[1:], sessions[1:], strict=True):
        other = session.run(names, feeds(0))
        worst = max(float(np.abs(a - b).max()) for a, b in zip(first, other, strict=True) if a.dtype.kind == "f")
        print(f"{spec}: largest output difference against {args.checkouts[0]}: {worst:.2e}")
    rounds: list[list[float]] = [[] for _ in sessions]
    for r in range(args.rounds):
        order = range(len(sessions)) if r % 2 == 0 else reversed(range(len(sessions)))
        for j in order:
            started = time.perf_counter()
            for k in range(STEPS_PER_ROUND):
                sessions[j].run(names, feeds(k))
            rounds[j].append((time.perf_counter() - started) / STEPS_PER_ROUND * 1e3)
    for spec, figures in zip(args.checkouts, rounds, strict=True):
        print(f"{spec}: median {statistics.median(figures):.1f} ms/step; rounds {[round(f, 1) for f in figures]}")


if __name__ == "__main__":
    main()
