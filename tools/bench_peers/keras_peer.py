"""tools/bench.py's Keras 3 worker, on the JAX backend: the benchmark's model as a Keras user writes it.

`model.fit(x, y, batch_size=100, epochs=..., shuffle=True, verbose=0)` with Keras' defaults (jit_compile "auto",
which is XLA on JAX); a callback times each epoch, and the fit's total time, Keras' tracing and compiling in its first
epoch included, is what the table reports (a user's first fit pays it). Runs on --threads CPUs (see
_harness.limit_cpus). Starts from _harness's initial weights, as the other peers do.

Runs in a venv with jax[cpu], keras and numpy (`--jax-python`); prints one JSON line (see _harness.report).
Usage: python tools/bench_peers/keras_peer.py --data DIR --epochs 10 --seed 12 [--model mlp|cnn] [--dropout 0.5]
"""

from __future__ import annotations

import os
import platform
import time

import _harness
import numpy as np

ARGS = _harness.parse_args(__doc__.splitlines()[0])
_harness.limit_cpus(ARGS.threads)  # before jax starts its thread pool
os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402


def build(model: str, dropout: float, seed: int) -> keras.Sequential:
    if model == "mlp":
        body = [layers.Flatten(), layers.Dense(300, activation="relu"), layers.Dense(100, activation="relu")]
    else:
        body = [
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="valid", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            *([layers.Dropout(dropout)] if dropout else []),
        ]
    network = keras.Sequential([keras.Input((28, 28, 1)), *body, layers.Dense(10)])  # linear logits
    network.set_weights(
        [array for _, kernel, bias in _harness.initial_weights(model, seed) for array in (kernel, bias)]
    )
    return network


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.started)


def main(args=ARGS) -> None:
    keras.utils.set_random_seed(args.seed)  # shuffling and dropout
    x, y, xt, yt = _harness.load_data(args.data)
    model = build(args.model, args.dropout, args.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    timer = EpochTimer()
    started = time.perf_counter()
    model.fit(x, y, batch_size=_harness.BATCH, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[timer])
    fit_s = time.perf_counter() - started

    predict_times = []
    for _ in range(4):  # the first traces and compiles predict for both chunk shapes, and gives the accuracy
        started = time.perf_counter()
        predicted = model.predict(xt, batch_size=1024, verbose=0).argmax(1)
        predict_times.append(time.perf_counter() - started)
    accuracy = float(np.mean(predicted == yt))
    xb, yb = x[: _harness.BATCH].copy(), y[: _harness.BATCH].copy()

    _harness.report(
        {
            "epoch_times": timer.times,
            "fit_s": fit_s,
            "accuracy": accuracy,
            "predict_s": min(predict_times[1:]),
            "bare_step_s": _harness.bare_step_s(lambda: model.train_on_batch(xb, yb)),
            "peak_rss_mib": _harness.peak_rss_mib(),
            "runtime": f"keras {keras.__version__} (jax {jax.__version__}), Python {platform.python_version()}",
        }
    )


if __name__ == "__main__":
    main()
