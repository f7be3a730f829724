"""Profile one portable train step of the tutorial MLP inside ONNX Runtime: time per operator and per node.

`tools/profile_fit.py` shows where Python spends a fit; this shows what the single `run` call it reports is made
of. The train-step graph runs in a session with ONNX Runtime's profiler on (which adds a little time to every
node, so compare shares, not totals, with the unprofiled step time printed first). Nodes are grouped into the
forward, backward and optimizer update by their scope (`update.` for the update; `grad`/`loss` for the backward).

Usage: python tools/profile_step.py [--optimizer adam] [--steps 500] [--threads 2] [--top 15]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from onnxtrain import Sequential, losses, optimizers
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.portable import PortableEngine
from onnxtrain.portable._graphs import LEARNING_RATE, STEP


def part(node_name: str) -> str:
    if node_name.startswith("update."):
        return "optimizer update"
    if "grad" in node_name or node_name.startswith("loss."):
        return "loss and backward"
    return "forward"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10, activation="linear"), seed=12)
    loss = losses.get("softmax_cross_entropy_with_logits")
    engine = PortableEngine(model.layers, loss, optimizers.get(args.optimizer), threads=args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((100, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 100).astype(np.int64)
    for _ in range(100):
        engine.train_step(x, y)
    started = time.perf_counter()
    for _ in range(args.steps):
        engine.train_step(x, y)
    step_ms = (time.perf_counter() - started) / args.steps * 1e3
    print(f"engine.train_step (no profiler): {step_ms:.3f} ms/step over {args.steps} steps")

    feeds: dict[str, np.ndarray] = {**engine.get_weights(), **engine.carried_state()}
    feeds.update({STEP: np.array(engine.step, np.int64), LEARNING_RATE: np.array(1e-3, np.float32)})
    feeds.update(input=x, labels=y)
    with tempfile.TemporaryDirectory(prefix="onnxtrain-profile-") as tmp:
        options = onnxruntime.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "step")
        options.intra_op_num_threads = args.threads
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        session = onnxruntime.InferenceSession(
            engine.graph.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for _ in range(args.steps):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    engine.close()

    by_node: dict[tuple[str, str], float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_node[(event["args"]["op_name"], event["name"].removesuffix("_kernel_time"))] += event["dur"]
    per_step = {key: us / args.steps for key, us in by_node.items()}
    total = sum(per_step.values())
    print(f"profiled node time: {total:.0f} us/step over {len(per_step)} nodes\n")
    for title, key_of in (("part", lambda k: part(k[1])), ("operator", lambda k: k[0])):
        groups: dict[str, float] = collections.defaultdict(float)
        for key, us in per_step.items():
            groups[key_of(key)] += us
        print(f"| {title} | us/step | share |\n|---|---|---|")
        for name, us in sorted(groups.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {us:.0f} | {us / total:.0%} |")
        print()
    print(f"| top {args.top} nodes | operator | us/step |\n|---|---|---|")
    for (op, name), us in sorted(per_step.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"| {name} | {op} | {us:.1f} |")


if __name__ == "__main__":
    main()
