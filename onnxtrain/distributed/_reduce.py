"""What a data-parallel step sends through the communicator: one packed all-reduce of the gradients, the loss sum
and the example count, then the mean and the optimizer's clipping (`GradientReduction`); and the sums of an epoch's
figures (`all_reduce_sums`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from onnxtrain.distributed._communicator import Communicator
from onnxtrain.optimizers import Optimizer
from onnxtrain.optimizers._base import CLIP_NORM_EPSILON


class GradientReduction:
    """The buffer a data-parallel step all-reduces: `gradients` (every trainable parameter's, flat, in an order that
    all processes share), then the loss sum and the example count.

    An engine writes this process's mean gradient over its rows into `gradients` and calls `reduce`: the result is
    the mean gradient over the rows of every process, exactly what one process would compute on the whole global
    batch (to float32 rounding), however unevenly the rows were split; then `clip_value` and `clip_norm` apply to
    it, as they do to one process's gradient. The clipping must follow the all-reduce: clipping each process's
    share first would clip a different vector.

    Args:
        communicator: the world.
        parameters: how many gradient elements (all trainable parameters together).
        clip_value / clip_norm: as `Optimizer` defines them (None: no clipping; an engine whose optimizer step
            clips by itself passes None).
    """

    def __init__(
        self,
        communicator: Communicator,
        parameters: int,
        clip_value: float | None = None,
        clip_norm: float | None = None,
    ):
        self.communicator = communicator
        self.buffer = np.zeros(parameters + 2, np.float32)
        self.gradients = self.buffer[:parameters]
        self.clip_value = clip_value
        self.clip_norm = clip_norm

    @classmethod
    def clipping_as(cls, optimizer: Optimizer, communicator: Communicator, parameters: int) -> GradientReduction:
        """A reduction that clips as `optimizer` does."""
        return cls(communicator, parameters, optimizer.clip_value, optimizer.clip_norm)

    def reduce(self, loss: float, examples: int) -> float:
        """All-reduce this process's mean `loss` over its `examples` rows and its mean gradient (in `gradients`;
        ignored, and zeroed, when `examples` is 0).

        Returns the mean loss over every process's rows. When it is finite, `gradients` then holds the global mean
        gradient, clipped; when it is not (a NaN or infinite loss on any process makes the sum so), every process
        gets the same non-finite loss and must skip the update.
        """
        gradients = self.gradients
        if examples == 0:
            gradients.fill(0.0)  # whatever the last step left, NaN included, must not enter the sum
            loss = 0.0
        elif examples != 1:
            gradients *= np.float32(examples)
        self.buffer[-2] = loss * examples
        self.buffer[-1] = examples
        self.communicator.all_reduce_sum(self.buffer)
        total = float(self.buffer[-1])
        mean_loss = float(self.buffer[-2]) / total
        if not math.isfinite(mean_loss):
            return mean_loss
        gradients *= np.float32(1.0 / total)
        if self.clip_value is not None:
            np.clip(gradients, -self.clip_value, self.clip_value, out=gradients)
        if self.clip_norm is not None:
            norm = math.sqrt(float(np.dot(gradients, gradients)))
            factor = self.clip_norm / (norm + CLIP_NORM_EPSILON)
            if factor < 1.0:
                gradients *= np.float32(factor)
        return mean_loss


def all_reduce_sums(communicator: Communicator, values: Sequence[float]) -> list[float]:
    """The elementwise sums of `values` over all processes (float64: an epoch's sums of per-example figures)."""
    buffer = np.array(values, np.float64)
    communicator.all_reduce_sum(buffer)
    return [float(v) for v in buffer]
