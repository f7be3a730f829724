"""What a data-parallel step sends through the communicator: one packed all-reduce of the gradients, the new layer
state (BatchNormalization's moving statistics), the loss sum and the example count, then the means and the
optimizer's clipping (`GradientReduction`); and the sums of an epoch's figures (`all_reduce_sums`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from onnxtrain.distributed._communicator import Communicator
from onnxtrain.optimizers import Optimizer
from onnxtrain.optimizers._base import clip_flat_gradients


class GradientReduction:
    """The buffer a data-parallel step all-reduces: `gradients` (every trainable parameter's, flat, in an order that
    all processes share), `layer_state` (the new values of the layer state the step updates, flat), then the loss
    sum and the example count.

    An engine writes this process's mean gradient over its rows into `gradients`, the layer state its rows give
    into `layer_state`, and calls `reduce`: `gradients` becomes the mean gradient over the rows of every process,
    exactly what one process would compute on the whole global batch (to float32 rounding), however unevenly the
    rows were split; then `clip_value` and `clip_norm` apply to it, as they do to one process's gradient. The
    clipping must follow the all-reduce: clipping each process's share first would clip a different vector.

    `layer_state` becomes the mean of the processes' values, each weighted by its rows: the plain mean (Keras'
    `MirroredStrategy`, whose BatchNormalization statistics are variables aggregated by MEAN) wherever the shares
    are equal, and a process without rows (an uneven last batch) counts for nothing. So every process holds the
    same moving statistics after each step. They are not those of one process on the whole batch: each process
    normalised with its own rows' statistics (no SyncBatchNorm), and a mean of per-share variances misses the
    variance between the shares' means.

    Args:
        communicator: the world.
        parameters: how many gradient elements (all trainable parameters together).
        clip_value / clip_norm: as `Optimizer` defines them (None: no clipping; an engine whose optimizer step
            clips by itself passes None).
        layer_state: how many layer state elements (0: the model has none).
    """

    def __init__(
        self,
        communicator: Communicator,
        parameters: int,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        layer_state: int = 0,
    ):
        self.communicator = communicator
        self.buffer = np.zeros(parameters + layer_state + 2, np.float32)
        self.gradients = self.buffer[:parameters]
        self.layer_state = self.buffer[parameters : parameters + layer_state]
        self._means = self.buffer[: parameters + layer_state]  # what is weighted by rows, summed and divided
        self.clip_value = clip_value
        self.clip_norm = clip_norm

    @classmethod
    def clipping_as(
        cls, optimizer: Optimizer, communicator: Communicator, parameters: int, layer_state: int = 0
    ) -> GradientReduction:
        """A reduction that clips as `optimizer` does."""
        return cls(communicator, parameters, optimizer.clip_value, optimizer.clip_norm, layer_state)

    def reduce(self, loss: float, examples: int) -> float:
        """All-reduce this process's mean `loss` over its `examples` rows, its mean gradient (in `gradients`) and
        its layer state (in `layer_state`); the last two are ignored, and zeroed, when `examples` is 0.

        Returns the mean loss over every process's rows. When it is finite, `gradients` then holds the global mean
        gradient, clipped, and `layer_state` the processes' mean; when it is not (a NaN or infinite loss on any
        process makes the sum so), every process gets the same non-finite loss and must skip the update.
        """
        means = self._means
        if examples == 0:
            means.fill(0.0)  # whatever the last step left, NaN included, must not enter the sum
            loss = 0.0
        elif examples != 1:
            means *= np.float32(examples)
        self.buffer[-2] = loss * examples
        self.buffer[-1] = examples
        self.communicator.all_reduce_sum(self.buffer)
        total = float(self.buffer[-1])
        mean_loss = float(self.buffer[-2]) / total
        if not math.isfinite(mean_loss):
            return mean_loss
        means *= np.float32(1.0 / total)
        clip_flat_gradients(self.gradients, self.clip_value, self.clip_norm)
        return mean_loss


def all_reduce_sums(communicator: Communicator, values: Sequence[float]) -> list[float]:
    """The elementwise sums of `values` over all processes (float64: an epoch's sums of per-example figures)."""
    buffer = np.array(values, np.float64)
    communicator.all_reduce_sum(buffer)
    return [float(v) for v in buffer]
