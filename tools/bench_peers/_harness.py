"""What every peer worker of tools/bench.py shares: its arguments, the data, the initial weights, the result line.

Peers run in their own virtual environment (torch, or jax with optax and keras), so this module needs numpy only and
never imports onnxtrain. Initial weights are drawn here with numpy, so that torch, JAX and Keras start a round from
the same weights: KotlinDL's defaults, He-normal (truncated at two standard deviations) kernels and He-uniform biases,
in one layout (dense kernels (in, out); convolution kernels (height, width, in, out), channels last).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

MODELS = ("mlp", "cnn")
BATCH = 100
# (kind, kernel shape) per trainable layer; the CNN's dense input is 6 x 6 x 64 after two valid/same convolutions
# and two 2x2 max-pools: 28 -> 28 (same) -> 14 -> 12 (valid) -> 6.
LAYERS = {
    "mlp": (("dense", (784, 300)), ("dense", (300, 100)), ("dense", (100, 10))),
    "cnn": (
        ("conv", (3, 3, 1, 32)),
        ("conv", (3, 3, 32, 64)),
        ("dense", (6 * 6 * 64, 128)),
        ("dense", (128, 10)),
    ),
}
# He-normal truncated at 2 sigma keeps the variance of sqrt(2 / fan_in) only after this correction (Keras' constant).
TRUNCATION_STD = 0.87962566103423978


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="folder with x_train.npy, y_train.npy, x_test.npy...")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--model", choices=MODELS, default="mlp")
    parser.add_argument("--dropout", type=float, default=0.0, help="the CNN's dropout rate before its last layer")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def load_data(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train (N, 28, 28, 1) float32 in [0, 1], y_train int64, x_test, y_test: what bench.py exported."""
    return tuple(np.load(folder / f"{name}.npy") for name in ("x_train", "y_train", "x_test", "y_test"))  # type: ignore[return-value]


def initial_weights(model: str, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, kernel, bias) per trainable layer of `model`, float32, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    weights = []
    for kind, shape in LAYERS[model]:
        fan_in = math.prod(shape[:-1])
        std = math.sqrt(2.0 / fan_in) / TRUNCATION_STD
        kernel = rng.standard_normal(shape)
        while (outside := np.abs(kernel) > 2).any():  # redraw outside +-2 sigma, as truncated_normal does
            kernel[outside] = rng.standard_normal(int(outside.sum()))
        limit = math.sqrt(6.0 / fan_in)
        bias = rng.uniform(-limit, limit, shape[-1])
        weights.append((kind, (kernel * std).astype(np.float32), bias.astype(np.float32)))
    return weights


def limit_cpus(threads: int) -> None:
    """Run this process on `threads` CPUs. XLA has no thread-count setting of its own: it sizes its pool by the CPUs
    the process may use, so this is how a JAX worker gets the same threads as the others. Call before importing jax.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > threads:
        os.sched_setaffinity(0, cpus[:threads])


def bare_step_s(step: Callable[[], object], sync: Callable[[], object] = lambda: None) -> float:
    """Seconds per call of `step()`: one train step on one reused batch (no gather, metrics or progress), 300 calls
    after 50 of warm-up; `sync()` waits for work a framework dispatched asynchronously.
    """
    for _ in range(50):
        step()
    sync()
    started = time.perf_counter()
    for _ in range(300):
        step()
    sync()
    return (time.perf_counter() - started) / 300


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(result: dict) -> None:
    """The worker's answer: one JSON line, the last on stdout (bench.py parses it)."""
    print(json.dumps(result), flush=True)
