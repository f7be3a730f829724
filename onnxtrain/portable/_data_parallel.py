"""The portable engine's data-parallel step (docs/scaling.md): the buffer of the step's one all-reduce, which the
gradient session writes (gradients and new layer state), the layer state and Dropout's first row that session
reads, and the step itself: this process's rows, the all-reduce, the averaged layer state written back.

The engine always runs the gradient model, unclipped, and between it and the update (the kernel, or the update
alone as a second ONNX model where the kernel cannot run) all-reduces the gradients with the loss sum and example
count (`GradientReduction`), which then clips. The new layer state (BatchNorm's moving statistics from this
process's rows) goes into the same all-reduce and comes back as the processes' mean, written over the layer state
the sessions read; so every process holds the same weights and the same layer state after each step. Dropout draws
each row's mask by its index in the global batch (the `first_row` of this process's rows), so the processes drop
the units one process would.

The engine keeps the update (the fused kernel, or the update model, whose bindings `update_bindings` makes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from onnxtrain.distributed._communicator import Communicator
from onnxtrain.distributed._reduce import GradientReduction
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable._batch_binding import ortvalue_views
from onnxtrain.portable._graphs import FIRST_ROW, GRADIENT, LEARNING_RATE, TrainStepGraph, gradient, updated


class DataParallel:
    """What the engine binds and calls for a data-parallel step over `communicator`.

    Args:
        ort: the onnxruntime module.
        communicator: the world.
        optimizer: the reduced gradients are clipped as it clips.
        graph: the train-step graph, for the names of the trainable parameters and the layer state.
        values: the starting values by name (process 0's, broadcast), for their shapes and the layer state.
        step_inputs: the gradient session's input names.

    Attributes:
        reduction: the all-reduce's buffer, its means and clipping (`GradientReduction`).
        outputs: the gradient session's outputs over the reduction's buffer: `gradient.<name>` of every trainable
            parameter, then `updated.<name>` of every layer state tensor (BatchNorm's moving statistics).
        layer_state: the layer state's OrtValues over one flat buffer that `train_step` writes the mean into,
            after the session has run; the engine's two sets of values share them.
        step_inputs: `{"first_row": where this process's rows start in the global batch}` where the gradient
            session reads it (Dropout: each row's mask goes by its index in the global batch, so the processes
            together drop the units that one process would on the whole batch), else empty.
    """

    def __init__(
        self,
        ort: Any,
        communicator: Communicator,
        optimizer: Optimizer,
        graph: TrainStepGraph,
        values: Mapping[str, np.ndarray],
        step_inputs: Collection[str],
    ):
        self.communicator = communicator
        trainable = {name: values[name].shape for name in graph.trainable}
        layer_state = {name: values[name].shape for name in graph.layer_state}
        self.reduction = GradientReduction.clipping_as(
            optimizer, communicator, _elements(trainable), _elements(layer_state)
        )
        self.outputs = {
            **ortvalue_views(ort, self.reduction.gradients, {gradient(n): shape for n, shape in trainable.items()}),
            **ortvalue_views(ort, self.reduction.layer_state, {updated(n): shape for n, shape in layer_state.items()}),
        }
        flat = np.concatenate([np.ravel(values[name]) for name in layer_state] or [np.empty(0)])
        self._layer_state = flat.astype(np.float32)
        self.layer_state = ortvalue_views(ort, self._layer_state, layer_state)
        self._first_row: np.ndarray | None = None
        self.step_inputs: dict[str, Any] = {}
        if FIRST_ROW in step_inputs:  # only Dropout (a layer drawing random numbers) reads it
            self._first_row = np.zeros((), np.int64)
            self.step_inputs[FIRST_ROW] = ort.OrtValue.ortvalue_from_numpy(self._first_row)

    @property
    def gradients(self) -> dict[str, Any]:
        """The `gradient.<name>` outputs: what the update reads once they are reduced."""
        return {name: value for name, value in self.outputs.items() if name.startswith(GRADIENT)}

    def update_bindings(self, session: Any, updates: Sequence[Mapping[str, Any]], learning_rate: Any) -> list[Any]:
        """Two IOBindings of the update session (`update_model`): binding k reads the values `updates[k]` (the
        trainable parameters, the optimizer state and the step), the reduced gradients and `learning_rate`, and
        writes `updates[1 - k]`."""
        bindings = []
        for k in range(2):
            binding = session.io_binding()
            for name, value in (*updates[k].items(), *self.gradients.items()):
                binding.bind_ortvalue_input(name, value)
            binding.bind_ortvalue_input(LEARNING_RATE, learning_rate)
            for name, value in updates[1 - k].items():
                binding.bind_ortvalue_output(updated(name), value)
            bindings.append(binding)
        return bindings

    def train_step(
        self,
        run: Callable[[], tuple[float, np.ndarray]],
        examples: int,
        first_row: int,
        output_shape: tuple[int, ...],
    ) -> tuple[float, np.ndarray]:
        """`run` the gradient session on this process's `examples` rows (when there are any), which start at row
        `first_row` of the global batch, all-reduce, and write the layer state's mean back when the mean loss is
        finite.

        Returns the mean loss of all processes' rows and this process's outputs. When that loss is finite, the
        reduction holds the clipped mean gradient and the caller updates; when it is not, every process skips.
        """
        if examples:
            if self._first_row is not None:
                self._first_row[...] = first_row
            loss, outputs = run()
        else:  # an uneven last batch left this process no rows: it only takes part in the all-reduce
            loss, outputs = 0.0, np.empty((0, *output_shape), np.float32)
        loss = self.reduction.reduce(loss, examples)
        if math.isfinite(loss) and self._layer_state.size:  # the session has run: nothing reads these buffers now
            self._layer_state[...] = self.reduction.layer_state
        return loss, outputs


def _elements(shapes: Mapping[str, tuple[int, ...]]) -> int:
    return sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
