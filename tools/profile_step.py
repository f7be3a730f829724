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
import onnx
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from onnxtrain import Sequential, losses, optimizers
from onnxtrain._float_env import FlushToZero
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.portable import PortableEngine
from onnxtrain.portable._graphs import LEARNING_RATE, STEP, updated


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
        # Bound as the engine binds them: updates the graph proves safe written over their inputs, the rest to
        # buffers of their own. Unbound, the If would copy every updated tensor out of its branch.
        values = {name: onnxruntime.OrtValue.ortvalue_from_numpy(np.array(v, copy=True)) for name, v in feeds.items()}
        binding = session.io_binding()
        for name, value in values.items():
            binding.bind_ortvalue_input(name, value)
        for name in engine.graph.carried:
            target = values[name] if name in engine.in_place else onnxruntime.OrtValue.ortvalue_from_numpy(feeds[name])
            binding.bind_ortvalue_output(updated(name), target)
        for name in ("loss", "logits"):
            binding.bind_output(name)
        with FlushToZero().active():  # as the engine runs: the evolving state must not turn subnormal
            for _ in range(args.steps):
                session.run_with_iobinding(binding)
        events = json.loads(Path(session.end_profiling()).read_text())
    engine.close()

    by_node: dict[tuple[str, str], float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_node[(event["args"]["op_name"], event["name"].removesuffix("_kernel_time"))] += event["dur"]
    per_step = {key: us / args.steps for key, us in by_node.items()}
    # A control-flow node's time (the update's If) includes its branch's nodes, which are listed too. What is left
    # of it is mostly the profiler's own cost per branch node (~4 us each): unprofiled, the If costs 0-2% of a step
    # (docs/portable.md). So it is reported apart, not in the tables.
    for node in engine.graph.model.graph.node:
        inner = {n.name for a in node.attribute if a.type == onnx.AttributeProto.GRAPH for n in a.g.node}
        key = (node.op_type, node.name)
        if inner and key in per_step:
            own = per_step.pop(key) - sum(us for (_, name), us in per_step.items() if name in inner)
            print(f"{node.op_type} {node.name}: {own:.0f} us/step of its own around its {len(inner)} branch nodes")
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
