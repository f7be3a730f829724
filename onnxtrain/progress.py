"""What `fit` prints: nothing (verbose=0), or one line per epoch with its figures and duration."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping


class Progress:
    def __init__(self, verbose: int, steps: int, epochs: int):
        self.verbose = verbose
        self.steps = steps
        self.epochs = epochs
        self.wants_batches = False
        self._started = 0.0

    def epoch_begin(self, epoch: int) -> None:
        self._started = time.perf_counter()

    def batch_end(self, step: int, logs: Mapping[str, float]) -> None:
        pass

    def epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        if self.verbose:
            figures = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            elapsed = time.perf_counter() - self._started
            print(f"Epoch {epoch} - {self.steps} batches - {elapsed:.2f}s - {figures}", file=sys.stdout, flush=True)

    def close(self) -> None:
        pass
