"""The engine interface: what a training engine does for the trainer (`Engine`), and what it is opened from
(`EngineRequest`).

The engines themselves are the portable engine (`onnxtrain.portable`) and ONNX Runtime training's
(`onnxtrain._ort_training_session`); `onnxtrain.engines` finds them by name. This module imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from onnxtrain._runtime import Device
from onnxtrain.distributed._communicator import Communicator
from onnxtrain.emit import ModelGraph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET
from onnxtrain.losses import Loss
from onnxtrain.optimizers import Optimizer

Batch = np.ndarray | Sequence[np.ndarray]
"""A step's examples: one array, or one per input of a model of several (in the model's input order)."""


@dataclass(frozen=True)
class EngineRequest:
    """Everything an engine is opened from.

    Attributes:
        layers: the model's graph (a Functional), or a Sequential's built layers, Input first; their current
            parameters are the starting weights.
        loss / optimizer: as compiled.
        device: where the engine runs and keeps the weights.
        threads: ONNX Runtime intra-op threads (None: the engine's default).
        resume: bytes of this engine's own checkpoint format (`Engine.checkpoint_bytes`) to continue from: the
            weights, and the optimizer state and step when they were saved. None starts from `layers`.
        artifacts_dir: where to keep the graphs the engine generates (None: the engine keeps none of them).
        opset / ir_version: of the generated graphs.
        communicator: the world of a data-parallel fit (`onnxtrain.distributed`), or None to train alone. With
            one, the engine starts from process 0's weights and optimizer state (`resume` or `layers` of that
            process), and every train step all-reduces the gradients before clipping and the update
            (`onnxtrain.distributed.GradientReduction`); a process may then get an empty batch (an uneven last
            batch split over more processes than it has rows), which contributes nothing to the step.
    """

    layers: ModelGraph
    loss: Loss
    optimizer: Optimizer
    device: Device
    threads: int | None = None
    resume: bytes | None = None
    artifacts_dir: Path | None = None
    opset: int = DEFAULT_OPSET
    ir_version: int = DEFAULT_IR_VERSION
    communicator: Communicator | None = None


class Engine(Protocol):
    """A training engine: train and eval steps over numpy batches, with the weights and the optimizer state kept
    by the engine between them. The trainer uses this interface only; it never asks which engine it holds."""

    def train_step(self, x: Batch, labels: np.ndarray, first_row: int = 0) -> tuple[float, np.ndarray]:
        """Forward, backward and, when the loss is finite, one optimizer update.

        Returns (loss, outputs) of the batch before the update. A non-finite loss makes no update, so the weights
        stay those of the last good step; the caller decides what to do about it. In a data-parallel fit (a
        `communicator`), `x` is this process's rows of the global batch (maybe none), `first_row` the index of
        its first row in the global batch (Dropout draws each row's mask by that index, so the processes drop
        the units one process would), the loss is the mean over every process's rows (the same in all of them,
        so all skip a non-finite one) and the outputs are this process's.
        """
        ...

    def eval_step(self, x: Batch, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """(loss, outputs) of the batch, changing nothing."""
        ...

    def reset_gradients(self) -> None:
        """Drop what a train step cut short (KeyboardInterrupt) may have left for the next one."""
        ...

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate; set between steps (as schedulers do)."""
        ...

    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of the current parameters by graph name (`dense_1.kernel`)."""
        ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Replace the parameters named in `weights` (any subset); the optimizer state is kept."""
        ...

    def checkpoint_bytes(self, include_optimizer_state: bool = False) -> bytes:
        """The weights, and with `include_optimizer_state` the optimizer state and step, in the engine's own
        checkpoint format: what `EngineRequest.resume` takes back."""
        ...

    def close(self) -> None:
        """Release the sessions, device buffers and temporary files. The engine is not used after."""
        ...


EngineFactory = Callable[[EngineRequest], Engine]
"""Opens an engine: `onnxtrain.engines.ENGINES` maps each engine's name to one."""
