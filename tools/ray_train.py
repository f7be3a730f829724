"""Ray Train fault run (issue 22): a data-parallel fit in 2 Ray Train workers, once uninterrupted and once with
worker 1 killed (SIGKILL) in the middle of an epoch; Ray's FailureConfig restarts the group from the last epoch's
checkpoint and the run goes on. Prints both runs' metrics and how far the final weights are apart.

Needs Ray Train and torch beside onnxtrain (not CI: torch is 750 MB):

    /work/venv-torch/bin/pip install "ray[train]" -e ".[cpu]"
    /work/venv-torch/bin/python tools/ray_train.py [--epochs 4] [--kill-epoch 3] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain import Sequential, load_model
from onnxtrain.callbacks import Callback
from onnxtrain.distributed import rank
from onnxtrain.distributed.ray_train import ray_fit
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import Adam


def build_model() -> Sequential:
    model = Sequential.of(Input(20), Dense(64, activation="relu"), Dense(32, activation="relu"), Dense(4), seed=5)
    model.compile(optimizer=Adam(1e-4, clip_norm=1.0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, size=(4, 20))
    y = rng.integers(0, 4, 40_000)  # epochs of ~1 s: Ray registers each reported checkpoint before the kill
    return (centers[y] + rng.normal(size=(40_000, 20))).astype(np.float32), y


class KillOnce(Callback):
    """Kills the worker of rank `victim` at batch `batch` of epoch `epoch`, the first time only (a marker file
    says it happened: the restarted worker must go on), `wait` seconds after that batch. Ray's controller learns
    of reported checkpoints by polling the workers: killed within a second of the last epoch's report, the group
    restarts from the checkpoint before it (as exactly, one epoch more to redo)."""

    def __init__(self, marker: str, epoch: int, batch: int = 10, victim: int = 1, wait: float = 5.0):
        super().__init__()
        self.marker, self.kill_epoch, self.batch, self.victim, self.wait = marker, epoch, batch, victim, wait
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch, rank()) == (self.kill_epoch, self.batch, self.victim) and not os.path.exists(
            self.marker
        ):
            time.sleep(self.wait)
            Path(self.marker).write_text(f"killed pid {os.getpid()} at epoch {self.epoch}, batch {batch}\n")
            print(f"[fault] SIGKILL to worker {rank()} (pid {os.getpid()}) at epoch {self.epoch}, batch {batch}")
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--kill-epoch", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="storage folder for Ray's runs (default: a temporary one)")
    args = parser.parse_args()
    storage = Path(args.out or tempfile.mkdtemp(prefix="onnxtrain-ray-"))
    marker = str(storage / "killed.txt")
    results = {}
    for run, callbacks in [("uninterrupted", []), ("killed", [KillOnce(marker, args.kill_epoch)])]:
        start = time.perf_counter()
        result = ray_fit(
            build_model,
            data,
            epochs=args.epochs,
            batch_size=100,
            workers=args.workers,
            max_failures=1,
            storage_path=storage,
            name=run,
            fit_options={"callbacks": callbacks},
        )
        results[run] = result
        print(
            f"[{run}] {time.perf_counter() - start:.1f} s, final metrics {result.metrics}, "
            f"checkpoint {result.checkpoint}"
        )
    print(f"[fault] marker: {Path(marker).read_text().strip() if Path(marker).exists() else 'no kill happened'}")
    weights = {run: load_model(r.checkpoint / "model", compile=False).get_weights() for run, r in results.items()}
    difference = max(float(np.abs(weights["killed"][k] - weights["uninterrupted"][k]).max()) for k in weights["killed"])
    equal = all(np.array_equal(weights["killed"][k], weights["uninterrupted"][k]) for k in weights["killed"])
    print(f"final weights: max |killed - uninterrupted| = {difference:.3g}; bitwise equal: {equal}")


if __name__ == "__main__":
    main()
