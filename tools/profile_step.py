"""Profile one train step of the tutorial MLP (or the fashion-cnn) inside ONNX Runtime: time per operator and node.

`tools/profile_fit.py` shows where Python spends a fit; this shows what ONNX Runtime's runs are made of. The step
runs in a session with ONNX Runtime's profiler on (which adds a few microseconds to every node, so compare shares,
not totals, with the unprofiled step time printed first). Nodes are grouped into the forward, the loss and
backward, and the optimizer update by their names (`update.` for the portable update; `grad`, `accumulator` and
`loss.` for the backward).

- `--engine portable` (default): the one train-step graph, bound as the engine binds it. With the fused update
  (numba installed, Adam; `--update graph` turns it off) ONNX Runtime runs the step without its update
  (`gradient_model`), and the table adds the kernel's time per step, measured around its calls without the
  profiler.
- `--engine ort-training`: the training session of the generated artifacts (forward, backward, gradient
  accumulation). Its optimizer step is a session of its own, outside the profile: the unprofiled step time covers
  it, and `tools/profile_fit.py --engine ort-training --timers` times it alone. `--keep-relugrad` profiles the
  artifacts with ONNX Runtime's ReluGrad kernel instead of onnxtrain's rewrite (`_ort_rewrites.replace_relu_gradients`).

`--model cnn` profiles the fashion-cnn of tools/bench.py (`_tutorial.cnn_layers`, Dropout `--dropout`) instead of
the tutorial MLP.

Usage: python tools/profile_step.py [--engine portable|ort-training] [--update auto|graph|fused] [--keep-relugrad]
       [--optimizer adam] [--steps 500] [--threads 2] [--top 15] [--model mlp|cnn] [--dropout 0.5]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _tutorial import cnn_layers, tutorial_data, tutorial_model

from onnxtrain import Sequential, losses, optimizers
from onnxtrain._float_env import FlushToZero
from onnxtrain.errors import OnnxtrainError
from onnxtrain.portable import PortableEngine
from onnxtrain.portable._graphs import LEARNING_RATE, STEP, gradient_model, updated

FUSED = "fused update (numba kernel, unprofiled)"


def part(node_name: str) -> str:
    if node_name.startswith(("update.", "clip.")) or node_name == FUSED:
        return "optimizer update"
    lowered = node_name.lower()
    if "grad" in lowered or "accumulator" in lowered or node_name.startswith("loss."):
        return "loss and backward"
    return "forward"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="portable", choices=("portable", "ort-training"))
    parser.add_argument("--keep-relugrad", action="store_true", help="ort-training: ONNX Runtime's ReluGrad kernel")
    parser.add_argument("--update", default="auto", choices=("auto", "graph", "fused"), help="portable: the update")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--model", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument("--dropout", type=float, default=0.5, help="the CNN's dropout rate (--model cnn)")
    args = parser.parse_args()

    model = Sequential(cnn_layers(args.dropout), seed=12) if args.model == "cnn" else tutorial_model(seed=12)
    profile = profile_ort_training if args.engine == "ort-training" else profile_portable
    with tempfile.TemporaryDirectory(prefix="onnxtrain-profile-") as tmp:
        per_step = profile(args, model, Batches(), Path(tmp))
    report(per_step, args.top)


class Batches:
    """Shuffled Fashion-MNIST batches (random ones where the data is missing), taken in turn into one pair of
    buffers, as the trainer gathers them.

    The data matters: ONNX Runtime's ReluGrad kernel branches on the ReLU mask, and took 161 µs per step on
    Fashion-MNIST batches, 75 µs on uniform random ones and 65 µs on one reused batch.
    """

    def __init__(self, count: int = 32, seed: int = 0):
        rng = np.random.default_rng(seed)
        try:
            train, _ = tutorial_data()
            rows = rng.permutation(len(train))[: count * 100].reshape(count, 100)
            self._x, self._y = train.x[rows], train.y[rows]
            print(f"data: {count} shuffled Fashion-MNIST batches")
        except OnnxtrainError as e:
            self._x = rng.random((count, 100, 28, 28, 1), dtype=np.float32)
            self._y = rng.integers(0, 10, (count, 100)).astype(np.int64)
            print(f"data: {count} uniform random batches (no Fashion-MNIST: {e})")
        self.x, self.y = np.empty_like(self._x[0]), np.empty_like(self._y[0])

    def load(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        self.x[:], self.y[:] = self._x[step % len(self._x)], self._y[step % len(self._y)]
        return self.x, self.y


def timed_steps(engine: Any, batches: Batches, steps: int) -> None:
    for step in range(100):
        engine.train_step(*batches.load(step))
    seconds = 0.0
    for step in range(steps):
        x, y = batches.load(step)
        started = time.perf_counter()
        engine.train_step(x, y)
        seconds += time.perf_counter() - started
    print(f"engine.train_step (no profiler): {seconds / steps * 1e3:.3f} ms/step over {steps} steps")


def profiling_options(args: argparse.Namespace, prefix: Path) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    options.intra_op_num_threads = args.threads
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return options


def node_times(events: list[dict], steps: int) -> dict[tuple[str, str], float]:
    """Microseconds per step by (operator, node name)."""
    by_node: dict[tuple[str, str], float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_node[(event["args"]["op_name"], event["name"].removesuffix("_kernel_time"))] += event["dur"]
    return {key: us / steps for key, us in by_node.items()}


def profile_portable(
    args: argparse.Namespace, model: Sequential, batches: Batches, tmp: Path
) -> dict[tuple[str, str], float]:
    loss, optimizer = losses.get("softmax_cross_entropy_with_logits"), optimizers.get(args.optimizer)
    engine = PortableEngine(model.layers, loss, optimizer, threads=args.threads, update=args.update)
    timed_steps(engine, batches, args.steps)
    if engine.fused:
        session = onnxruntime.InferenceSession(
            gradient_model(model.layers, loss, optimizer).SerializeToString(),
            profiling_options(args, tmp / "step"),
            providers=["CPUExecutionProvider"],
        )
        return profile_fused(args, engine, session, batches)
    feeds: dict[str, np.ndarray] = {**engine.get_weights(), **engine.carried_state()}
    feeds.update({STEP: np.array(engine.step, np.int64), LEARNING_RATE: np.array(1e-3, np.float32)})
    session = onnxruntime.InferenceSession(
        engine.graph.model.SerializeToString(),
        profiling_options(args, tmp / "step"),
        providers=["CPUExecutionProvider"],
    )
    # Bound as the engine binds them: updates the graph proves safe written over their inputs, the rest to
    # buffers of their own. Unbound, the If would copy every updated tensor out of its branch.
    values = {name: onnxruntime.OrtValue.ortvalue_from_numpy(np.array(v, copy=True)) for name, v in feeds.items()}
    binding = session.io_binding()
    for name, value in values.items():
        binding.bind_ortvalue_input(name, value)
    binding.bind_cpu_input("input", batches.x)  # read at each run: `load` refills the buffers
    binding.bind_cpu_input("labels", batches.y)
    for name in engine.graph.carried:
        target = values[name] if name in engine.in_place else onnxruntime.OrtValue.ortvalue_from_numpy(feeds[name])
        binding.bind_ortvalue_output(updated(name), target)
    for name in ("loss", "logits"):
        binding.bind_output(name)
    with FlushToZero().active():  # as the engine runs: the evolving state must not turn subnormal
        for step in range(args.steps):
            batches.load(step)
            session.run_with_iobinding(binding)
    per_step = node_times(json.loads(Path(session.end_profiling()).read_text()), args.steps)
    engine.close()
    # A control-flow node's time (the update's If) includes its branch's nodes, which are listed too. What is left
    # of it is mostly the profiler's own cost per branch node (~4 us each): unprofiled, the If costs 0-2% of a step
    # (docs/portable.md). So it is reported apart, not in the tables.
    for node in engine.graph.model.graph.node:
        inner = {n.name for a in node.attribute if a.type == onnx.AttributeProto.GRAPH for n in a.g.node}
        key = (node.op_type, node.name)
        if inner and key in per_step:
            own = per_step.pop(key) - sum(us for (_, name), us in per_step.items() if name in inner)
            print(f"{node.op_type} {node.name}: {own:.0f} us/step of its own around its {len(inner)} branch nodes")
    return per_step


def profile_fused(
    args: argparse.Namespace, engine: Any, session: Any, batches: Batches
) -> dict[tuple[str, str], float]:
    """The gradient session bound to the engine's own buffers, each run followed by the engine's kernel, timed."""
    binding = session.io_binding()
    inputs = {i.name for i in session.get_inputs()}
    for name, value in {**engine._sets[0], **engine._fixed}.items():
        if name in inputs:
            binding.bind_ortvalue_input(name, value)
    binding.bind_cpu_input("input", batches.x)  # read at each run: `load` refills the buffers
    binding.bind_cpu_input("labels", batches.y)
    for name, value in engine._gradients.items():
        binding.bind_ortvalue_output(name, value)
    for name in ("loss", "logits"):
        binding.bind_output(name)
    kernel_seconds, t = 0.0, engine.step
    with FlushToZero().active():
        for step in range(args.steps):
            batches.load(step)
            session.run_with_iobinding(binding)
            t += 1
            started = time.perf_counter()
            engine._update(engine._flat_weights, engine._flat_grads, engine._flat_state, t, engine.learning_rate)
            kernel_seconds += time.perf_counter() - started
    per_step = node_times(json.loads(Path(session.end_profiling()).read_text()), args.steps)
    per_step[("FusedAdam", FUSED)] = kernel_seconds / args.steps * 1e6
    engine.close()
    return per_step


def profile_ort_training(
    args: argparse.Namespace, model: Sequential, batches: Batches, tmp: Path
) -> dict[tuple[str, str], float]:
    from onnxtrain import _ort_training, _ort_training_session

    loss, optimizer = losses.get("softmax_cross_entropy_with_logits"), optimizers.get(args.optimizer)
    artifacts = _ort_training.write_artifacts(
        model.layers, loss, optimizer, tmp / "artifacts", for_cpu=not args.keep_relugrad
    )
    engine = _ort_training_session.OrtTrainingEngine(artifacts, optimizer, threads=args.threads)
    timed_steps(engine, batches, args.steps)
    weights = engine.get_weights()
    engine.close()
    # The training graph in a plain session of the training build, fed as the training API feeds it. The API's
    # Module would profile its train and eval sessions into one file name (their start second), and the session
    # destroyed last would win. The weights stay those after the timed steps: ReLU masks still change per batch.
    session = onnxruntime.InferenceSession(
        str(artifacts.training_model), profiling_options(args, tmp / "step"), providers=["CPUExecutionProvider"]
    )
    feeds: dict[str, np.ndarray] = {"lazy_reset_grad": np.array([True])}
    for name, value in weights.items():
        feeds[name] = value
        feeds[f"{name}_grad.accumulation.buffer"] = np.zeros_like(value)
    with FlushToZero().active():
        for step in range(args.steps):
            x, y = batches.load(step)
            session.run(None, {**feeds, "input": x, "labels": y})
    print("(the optimizer step runs in a session of its own: in the unprofiled time above, not in the tables)")
    return node_times(json.loads(Path(session.end_profiling()).read_text()), args.steps)


def report(per_step: dict[tuple[str, str], float], top: int) -> None:
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
    print(f"| top {top} nodes | operator | us/step |\n|---|---|---|")
    for (op, name), us in sorted(per_step.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| {name} | {op} | {us:.1f} |")


if __name__ == "__main__":
    main()
