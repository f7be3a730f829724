"""KotlinDL's "first neural network" tutorial, exactly as the README shows it, plus its timing.

Trains 10 epochs on Fashion-MNIST and saves to model/my_model/. Takes no options.
Usage: python tools/tutorial.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from onnxtrain import Sequential, WritingMode
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam

argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()

train, test = fashion_mnist()
model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10))
with model:
    model.compile(optimizer=Adam(), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, metric=Metrics.ACCURACY)
    model.print_summary()
    started = time.perf_counter()
    model.fit(dataset=train, epochs=10, batch_size=100)
    fit_seconds = time.perf_counter() - started
    accuracy = model.evaluate(dataset=test, batch_size=100).metrics[Metrics.ACCURACY]
    print(f"Accuracy: {accuracy}")  # KotlinDL prints 0.8821
    print(f"Fit time: {fit_seconds:.1f} s ({fit_seconds / 10:.2f} s/epoch)")
    model.save("model/my_model", writing_mode=WritingMode.OVERRIDE)
for path in sorted(Path("model/my_model").iterdir()):
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
