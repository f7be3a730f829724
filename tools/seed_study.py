"""How much the tutorial's accuracy depends on the seed, with ReLU logits (KotlinDL's default) and linear logits.

Trains the tutorial MLP on the real Fashion-MNIST for each seed and both last-layer activations (10 epochs,
batch 100, Adam) and prints test accuracy. Slow: about 2 x 15 s per seed on a 2-core machine.

Usage: python tools/seed_study.py [--seeds 0 5]
"""

from __future__ import annotations

import argparse
import warnings

from onnxtrain import Sequential
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Flatten, Input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 5), metavar=("FIRST", "STOP"))
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # the ReLU-logits warning is what this study measures
    train, test = fashion_mnist()
    print("| seed | ReLU logits (tutorial) | linear logits |\n|---|---|---|")
    for seed in range(*args.seeds):
        row = []
        for activation in ("relu", "linear"):
            layers = [Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10, activation=activation)]
            with Sequential(layers, seed=seed) as model:
                model.compile(optimizer="adam", metric="accuracy")
                model.fit(train, epochs=args.epochs, batch_size=100, verbose=0)
                row.append(model.evaluate(test, batch_size=100).metrics["accuracy"])
        print(f"| {seed} | {row[0]:.4f} | {row[1]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
