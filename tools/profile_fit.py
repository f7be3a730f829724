"""Profile `fit` on the tutorial model to see where an epoch goes: cProfile by own time, or plain timers.

cProfile hooks every Python call, which inflates the Python side and shifts even the time it reports for ONNX
Runtime; `--timers` runs the fit without it and splits each step into ONNX Runtime's runs (portable: the one train
step; ort-training: the training session's forward and backward, then the optimizer session's step), the engine's
Python around them, and the trainer's own Python (batch gather, metrics, bookkeeping). With the fused update
(numba installed; ONNXTRAIN_FUSED_UPDATE=0 turns it off) the portable step is ORT's run and then the update's kernel.

Usage: python tools/profile_fit.py [--epochs 2] [--top 15] [--engine auto|ort-training|portable] [--timers]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

from _tutorial import tutorial_data, tutorial_model

from onnxtrain import Sequential, engines
from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam


class _Timed:
    """Stands in for an object (ONNX Runtime's, or the fused update) and adds the time of calls to its `method`
    (None: calls of the object itself) to `totals[key]`.
    """

    def __init__(self, target: Any, method: str | None, totals: dict[str, float], key: str):
        self._target, self._method, self._totals, self._key = target, method, totals, key

    def __call__(self, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._target(*args)
        finally:
            self._totals[self._key] += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute

        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args)
            finally:
                self._totals[self._key] += time.perf_counter() - started

        return timed


def timed_fit(model: Sequential, train: Any, epochs: int) -> None:
    """Print per-epoch seconds and per-step microseconds of each part of the training loop."""
    engine = model._trainer.engine  # type: ignore[union-attr]
    totals = {"train_step": 0.0}
    if getattr(engine, "fused", False):  # portable, fused: ORT's forward and backward, then the kernel
        engine._train_session = _Timed(engine._train_session, "run_with_iobinding", totals, "ORT run")
        engine._update = _Timed(engine._update, None, totals, "fused update")
        runs = ["ORT run", "fused update"]
    elif hasattr(engine, "_train_session"):  # portable, update in the graph: one run per step
        engine._train_session = _Timed(engine._train_session, "run_with_iobinding", totals, "ORT run")
        runs = ["ORT run"]
    else:  # ort-training: the training session's run, then the optimizer session's
        engine._module._model = _Timed(engine._module._model, "train_step", totals, "train run")
        engine._optimizer._optimizer = _Timed(engine._optimizer._optimizer, "optimizer_step", totals, "optimizer step")
        runs = ["train run", "optimizer step"]
    totals.update(dict.fromkeys(runs, 0.0))
    train_step = engine.train_step

    def timed_train_step(x: Any, labels: Any) -> Any:
        started = time.perf_counter()
        result = train_step(x, labels)
        totals["train_step"] += time.perf_counter() - started
        return result

    engine.train_step = timed_train_step
    steps = -(-len(train) // 100)
    columns = [*runs, "engine Python", "trainer Python"]
    print(f"| epoch | s | {' | '.join(columns)} |")
    print(f"|---|---|{'---|' * len(columns)}")
    for epoch in range(1, epochs + 1):
        totals.update(dict.fromkeys(totals, 0.0))
        started = time.perf_counter()
        model.fit(dataset=train, epochs=1, batch_size=100, verbose=0)
        elapsed = time.perf_counter() - started
        per_step = {name: 1e6 * value / steps for name, value in totals.items()}
        engine_python = per_step["train_step"] - sum(per_step[run] for run in runs)
        trainer = 1e6 * elapsed / steps - per_step["train_step"]
        values = [per_step[run] for run in runs] + [engine_python, trainer]
        print(f"| {epoch} | {elapsed:.3f} | {' | '.join(f'{v:.0f}' for v in values)} |")
    print("(microseconds per step; a fit call per epoch, so each epoch includes fit's one-time input checks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--engine", default="auto", choices=engines.names())
    parser.add_argument("--timers", action="store_true", help="time the loop's parts instead of running cProfile")
    args = parser.parse_args()
    train, _ = tutorial_data()
    with tutorial_model(seed=12) as model:  # as bench.py
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
