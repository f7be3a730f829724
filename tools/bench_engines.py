"""The tutorial job on both training engines in one process: s/epoch and test accuracy, portable vs ort-training.

Epochs alternate between the engines (ort-training epoch 1, portable epoch 1, ort-training epoch 2, ...), so both
see the same machine load. Then a step micro-benchmark: `engine.train_step` alone on the tutorial MLP
(784-300-100-10, batch 100), alternating blocks of steps, and the per-call overhead of one tiny step (what a
multi-step ONNX Loop could save at most). Without onnxruntime-training (e.g. on Python 3.13) only the portable
engine runs.

Usage:
    python tools/bench_engines.py [--epochs 10] [--threads 2] [--seed 12] [--optimizer adam]
        [--min-accuracy 0.88]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _tutorial import tutorial_data, tutorial_model

from onnxtrain import Sequential, losses, optimizers
from onnxtrain.errors import RuntimeSetupError
from onnxtrain.layers import Dense, Input
from onnxtrain.metrics import Metrics
from onnxtrain.portable import PortableEngine

SCE = losses.get("softmax_cross_entropy_with_logits")


def compile_model(model: Sequential, engine: str, optimizer: str, threads: int) -> None:
    model.compile(optimizer=optimizer, loss=SCE, metric=Metrics.ACCURACY, threads=threads, engine=engine)


def available_engines() -> list[str]:
    """Both engines where ONNX Runtime's training API is installed, else the portable one."""
    with Sequential([Input(4), Dense(2, activation="linear")], seed=0) as probe:
        try:
            probe.compile(optimizer="adam", loss="mse", engine="ort-training")
        except RuntimeSetupError:
            return ["portable"]
    return ["ort-training", "portable"]


def fit_benchmark(args: argparse.Namespace, engines: list[str]) -> dict[str, dict[str, Any]]:
    train, test = tutorial_data()
    models = {}
    for engine in engines:
        models[engine] = tutorial_model(args.seed, args.logits)
        compile_model(models[engine], engine, args.optimizer, args.threads)
    times: dict[str, list[float]] = {e: [] for e in engines}
    for epoch in range(1, args.epochs + 1):
        for engine, model in models.items():
            started = time.perf_counter()
            history = model.fit(train, epochs=1, batch_size=100, verbose=0, seed=args.seed + epoch)
            times[engine].append(time.perf_counter() - started)
            print(
                f"  epoch {epoch:2d} {engine:12s} {times[engine][-1]:6.2f} s  loss {history.history['loss'][0]:.4f}",
                flush=True,
            )
    results = {}
    for engine, model in models.items():
        accuracy = model.evaluate(test, batch_size=100).metrics[Metrics.ACCURACY]
        results[engine] = {
            "s_per_epoch": statistics.median(times[engine]),
            "min": min(times[engine]),
            "accuracy": float(accuracy),
        }
        model.close()
    return results


def step_benchmark(args: argparse.Namespace, engines: list[str]) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = rng.random((20, 100, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, (20, 100))
    models = {engine: tutorial_model(args.seed) for engine in engines}
    for engine, model in models.items():
        compile_model(model, engine, args.optimizer, args.threads)
    # Private: a compiled model's engine (its train_step) has no public handle (tools/README.md).
    runners: dict[str, Any] = {engine: model._trainer.engine for engine, model in models.items()}
    samples: dict[str, list[float]] = {e: [] for e in runners}
    for _ in range(args.step_blocks):
        for name, engine in runners.items():
            started = time.perf_counter()
            for i in range(50):
                engine.train_step(x[i % 20], y[i % 20])
            samples[name].append((time.perf_counter() - started) / 50 * 1e3)
    for model in models.values():
        model.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def call_overhead_ms(threads: int) -> float:
    """ms per train_step of a 4-3 linear model: almost all of it is per-call cost, not compute."""
    model = Sequential.of(Input(4), Dense(3, activation="linear"), seed=1)
    engine = PortableEngine(model.layers, losses.get("mse"), optimizers.SGD(), threads=threads)
    x, y = np.ones((100, 4), np.float32), np.ones((100, 3), np.float32)
    for _ in range(200):
        engine.train_step(x, y)
    started = time.perf_counter()
    for _ in range(2000):
        engine.train_step(x, y)
    return (time.perf_counter() - started) / 2000 * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--logits", default="linear", help="last layer's activation (the tutorial's is relu)")
    parser.add_argument("--step-blocks", type=int, default=10)
    parser.add_argument("--min-accuracy", type=float, default=None, help="exit 1 if the portable engine is below")
    parser.add_argument("--skip-fit", action="store_true", help="only the step micro-benchmark")
    args = parser.parse_args(argv)
    engines = available_engines()
    import onnxruntime

    print(
        f"Python {sys.version.split()[0]}, onnxruntime {onnxruntime.__version__}, engines {engines}, "
        f"threads {args.threads}, optimizer {args.optimizer}"
    )
    fits = {} if args.skip_fit else fit_benchmark(args, engines)
    steps = step_benchmark(args, engines)
    overhead = call_overhead_ms(args.threads)
    print("\n| engine | s/epoch (median) | s/epoch (min) | test accuracy | ms/step (train_step alone) |")
    print("|---|---|---|---|---|")
    for engine in engines:
        fit = fits.get(engine, {})
        cells = [f"{fit['s_per_epoch']:.2f}", f"{fit['min']:.2f}", f"{fit['accuracy']:.4f}"] if fit else ["-"] * 3
        print(f"| {engine} | {' | '.join(cells)} | {steps[engine]:.2f} |")
    print(f"\nper-call overhead of one portable step (tiny model): {overhead:.3f} ms")
    if args.min_accuracy is not None and fits and fits["portable"]["accuracy"] < args.min_accuracy:
        print(f"portable accuracy {fits['portable']['accuracy']:.4f} < {args.min_accuracy}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
