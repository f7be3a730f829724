"""Profile `fit` on the tutorial model to see where an epoch goes: cProfile by own time, or plain timers.

cProfile hooks every Python call, which inflates the Python side and shifts even the time it reports for ONNX
Runtime; `--timers` runs the fit without it and splits each step into the engine's `train_step` and the trainer's
own Python around it (batch gather, metrics, bookkeeping), and, for the portable engine, `train_step` into the ONNX
Runtime run and the engine's Python around it.

Usage: python tools/profile_fit.py [--epochs 2] [--top 15] [--engine auto|ort-training|portable] [--timers]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

from onnxtrain import Sequential
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam
from onnxtrain.training import ENGINES


class _TimedSession:
    """Stands in for the portable engine's train session and adds up the time of its runs."""

    def __init__(self, session: Any, totals: dict[str, float]):
        self._session, self._totals = session, totals

    def run_with_iobinding(self, binding: Any) -> None:
        started = time.perf_counter()
        self._session.run_with_iobinding(binding)
        self._totals["ort run"] += time.perf_counter() - started


def timed_fit(model: Sequential, train: Any, epochs: int) -> None:
    """Print per-epoch seconds and per-step microseconds of each part of the training loop."""
    engine = model._trainer.engine  # type: ignore[union-attr]
    totals = {"train_step": 0.0, "ort run": 0.0}
    train_step = engine.train_step

    def timed_train_step(x: Any, labels: Any) -> Any:
        started = time.perf_counter()
        result = train_step(x, labels)
        totals["train_step"] += time.perf_counter() - started
        return result

    engine.train_step = timed_train_step
    portable = hasattr(engine, "_train_session")
    if portable:
        engine._train_session = _TimedSession(engine._train_session, totals)
    steps = -(-len(train) // 100)
    print(f"| epoch | s | {'ORT run | engine Python | ' if portable else 'engine train_step | '}trainer Python |")
    print(f"|---|---|{'---|---|' if portable else '---|'}---|")
    for epoch in range(1, epochs + 1):
        totals.update(dict.fromkeys(totals, 0.0))
        started = time.perf_counter()
        model.fit(dataset=train, epochs=1, batch_size=100, verbose=0)
        elapsed = time.perf_counter() - started
        per_step = {name: 1e6 * value / steps for name, value in totals.items()}
        trainer = 1e6 * elapsed / steps - per_step["train_step"]
        if portable:
            parts = f"{per_step['ort run']:.0f} | {per_step['train_step'] - per_step['ort run']:.0f} | "
        else:
            parts = f"{per_step['train_step']:.0f} | "
        print(f"| {epoch} | {elapsed:.3f} | {parts}{trainer:.0f} |")
    print("(microseconds per step; a fit call per epoch, so each epoch includes fit's one-time input checks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--engine", default="auto", choices=ENGINES)
    parser.add_argument("--timers", action="store_true", help="time the loop's parts instead of running cProfile")
    args = parser.parse_args()
    train, _ = fashion_mnist()
    layers = [Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10, activation="linear")]  # as bench.py
    with Sequential.of(*layers, seed=12) as model:
        model.compile(
            optimizer=Adam(),
            loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS,
            metric=Metrics.ACCURACY,
            engine=args.engine,
        )
        if args.timers:
            print(f"fit ({model._trainer.engine.__class__.__name__}), timed per part:")  # type: ignore[union-attr]
            timed_fit(model, train, args.epochs)
            return
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        model.fit(dataset=train, epochs=args.epochs, batch_size=100, verbose=0)
        profiler.disable()
        elapsed = time.perf_counter() - started
    print(f"fit ({args.engine}): {elapsed / args.epochs:.3f} s/epoch over {args.epochs} epochs (under cProfile)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
