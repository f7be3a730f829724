"""Where the portable engine's carried values (weights, optimizer state, step, layer state) live on each update
path, and what each train binding reads and writes: two sets of OrtValues that the steps alternate between (the
graph's update, sharing the values it updates in place; or a data-parallel update session's), or the fused update's
flat buffers (`_fused.py`: the weights, each state slot and the gradients, which one kernel call updates) with an
OrtValue view per tensor for the gradient session."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable import _fused
from onnxtrain.portable._batch_binding import ortvalue_views
from onnxtrain.portable._data_parallel import DataParallel
from onnxtrain.portable._graphs import STEP, TrainStepGraph, gradient, updated

# What each train binding reads (by name) and writes (by output name), one entry per value set it runs on.
BindingValues = list[tuple[dict[str, Any], dict[str, Any]]]


def double_buffered(
    carried: Sequence[str],
    in_place: Collection[str],
    values: Mapping[str, np.ndarray],
    fixed: Mapping[str, Any],
    ortvalue: Callable[[np.ndarray], Any],
) -> tuple[list[dict[str, Any]], BindingValues]:
    """The graph update's two sets of the `carried` values (OrtValues made by `ortvalue`), which share the OrtValues
    of `in_place`, and its train bindings' values: binding k reads set k and `fixed`, and writes set 1 - k."""
    first = {name: ortvalue(values[name]) for name in carried}
    second = {name: value if name in in_place else ortvalue(values[name]) for name, value in first.items()}
    sets = [first, second]
    return sets, [
        ({**sets[k], **fixed}, {updated(name): value for name, value in sets[1 - k].items()}) for k in range(2)
    ]


def reduced_graph_sets(
    graph: TrainStepGraph,
    values: Mapping[str, np.ndarray],
    fixed: Mapping[str, Any],
    parallel: DataParallel,
    ortvalue: Callable[[np.ndarray], Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], BindingValues]:
    """A data-parallel graph update's values: the update session's two sets (trainable parameters, optimizer state
    and step), the two value sets (those and the reduction's layer state), and the gradient session's train
    bindings' values: binding k reads set k and writes into the reduction's buffer."""
    carried = (*graph.trainable, *(t.name for t in graph.state), STEP)
    updates = [{name: ortvalue(values[name]) for name in carried} for _ in range(2)]
    sets = [{**updates[k], **parallel.layer_state} for k in range(2)]
    return updates, sets, [({**sets[k], **fixed, **parallel.step_inputs}, parallel.outputs) for k in range(2)]


@dataclass
class FusedBuffers:
    """The flat buffers of a fused update and the OrtValues over them.

    Attributes:
        weights / state / grads: the flat buffers of the trainable parameters, of each of the update's state slots
            (in `update.slots`' order) and of the gradients (a data-parallel step's: the all-reduce's buffer).
        gradients: the `gradient.<name>` outputs the gradient session writes into `grads` (data-parallel: with the
            new layer state).
        step: the step counter, which the session reads and the engine advances.
        carried: the values every step reads: views of `weights` and `state`, the layer state of a data-parallel
            step, and `step`.
        step_inputs: the data-parallel step's extra inputs (`DataParallel.step_inputs`), else empty.
        shapes: the trainable parameters' shapes, in the graph's order.
        update: the kernel.
    """

    weights: np.ndarray
    state: tuple[np.ndarray, ...]
    grads: np.ndarray
    gradients: dict[str, Any]
    step: np.ndarray
    carried: dict[str, Any]
    step_inputs: dict[str, Any]
    shapes: list[tuple[int, ...]]
    update: _fused.FusedUpdate


def fused_buffers(
    ort: Any,
    graph: TrainStepGraph,
    optimizer: Optimizer,
    values: dict[str, np.ndarray],
    data_parallel: Callable[[Mapping[str, np.ndarray]], DataParallel] | None,
) -> FusedBuffers:
    """The buffers of `optimizer`'s fused update, filled from the starting `values`. The optimizer state's entries
    leave `values` once copied, so that a large model's state is not held twice. With `data_parallel` (which makes
    the engine's DataParallel of `values`), the gradient session writes into the all-reduce's buffer instead.

    Raises:
        InvalidArgumentError: the buffers do not fit in memory (`_fused.out_of_memory`).
    """
    trainable = graph.trainable
    shapes = [values[name].shape for name in trainable]
    update = _fused.fused_update(optimizer)

    def flat(names: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
        try:
            buffer = _fused.flat_buffer(names, shapes, values)
        except MemoryError as error:
            count = sum(math.prod(shape) for shape in shapes)
            raise InvalidArgumentError(_fused.out_of_memory(optimizer, count, 2 + len(update.slots))) from error
        return buffer, ortvalue_views(ort, buffer, dict(zip(names, shapes, strict=True)))

    weights, carried = flat(trainable)
    state = []
    for slot in update.slots:  # the rule's slots, one per trainable parameter, in the same order
        names = [t.name for t in graph.state if t.slot == slot]
        assert len(names) == len(trainable), f"the kernel's slot {slot!r} is one of the update rule's"
        buffer, views = flat(names)
        for name in names:  # copied: free the starting value before the next slot's buffer is made
            del values[name]
        state.append(buffer)
        carried.update(views)
    step_inputs: dict[str, Any] = {}
    if data_parallel is None:
        grads, gradients = flat([gradient(name) for name in trainable])
    else:  # ORT writes the gradients and the new layer state straight into the buffer that is all-reduced
        parallel = data_parallel(values)
        grads, gradients = parallel.reduction.gradients, parallel.outputs
        carried.update(parallel.layer_state)
        step_inputs = parallel.step_inputs
    step = np.array(values[STEP], np.int64)
    carried[STEP] = ort.OrtValue.ortvalue_from_numpy(step)
    return FusedBuffers(weights, tuple(state), grads, gradients, step, carried, step_inputs, shapes, update)
