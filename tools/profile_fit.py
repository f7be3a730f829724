"""Profile `fit` on the tutorial model (cProfile, sorted by own time) to see where an epoch goes.

Usage: python tools/profile_fit.py [--epochs 2] [--top 15] [--engine auto|ort-training|portable]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from onnxtrain import Sequential
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam
from onnxtrain.training import ENGINES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--engine", default="auto", choices=ENGINES)
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
