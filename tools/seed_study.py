"""How much the tutorial's test accuracy depends on the seed: the tutorial as written, `Dense(10)` with no
activation (linear logits under softmax cross-entropy), and optionally explicit last-layer activations.

Trains the tutorial MLP on the real Fashion-MNIST for each seed (10 epochs, batch 100, Adam(), softmax
cross-entropy) and prints a Markdown table of test accuracy with the median and minimum of each column.
Slow: about 15-30 s per seed and column on a 2-core machine.

Usage: python tools/seed_study.py [--seeds 0 10] [--epochs 10] [--also relu linear]
"""

from __future__ import annotations

import argparse
import statistics
import warnings

from _tutorial import tutorial_data, tutorial_model

from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam

AS_WRITTEN = "Dense(10) (as written)"


def accuracy(last_activation: str | None, seed: int, epochs: int, train: object, test: object) -> float:
    with tutorial_model(seed, last_activation) as model:
        model.compile(optimizer=Adam(), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, metric=Metrics.ACCURACY)
        model.fit(dataset=train, epochs=epochs, batch_size=100, verbose=0)
        return float(model.evaluate(dataset=test, batch_size=100).metrics[Metrics.ACCURACY])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 10), metavar=("FIRST", "STOP"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--also", nargs="*", default=[], metavar="ACTIVATION", help='explicit last-layer activations, e.g. "relu"'
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # explicit ReLU logits warn; that is what --also relu measures
    train, test = tutorial_data()
    columns = [AS_WRITTEN, *(f'Dense(10, activation="{a}")' for a in args.also)]
    print("| seed | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|", flush=True)
    results: list[list[float]] = []
    for seed in range(*args.seeds):
        lasts = [None, *args.also]  # None: Dense(10) as written
        results.append([accuracy(last, seed, args.epochs, train, test) for last in lasts])
        print(f"| {seed} | " + " | ".join(f"{a:.4f}" for a in results[-1]) + " |", flush=True)
    by_column = list(zip(*results, strict=True))
    for label, summarize in (("median", statistics.median), ("min", min)):
        print(f"| {label} | " + " | ".join(f"{summarize(c):.4f}" for c in by_column) + " |")


if __name__ == "__main__":
    main()
