"""The values a portable engine starts from: a model's parameters, fresh optimizer state and step 0, or a
checkpoint's, checked against the model (`check_names_and_shapes`, which `set_weights` uses too); in a data-parallel
fit, process 0's."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from onnxtrain.distributed._communicator import Communicator
from onnxtrain.emit import ModelGraph
from onnxtrain.errors import InvalidArgumentError, ModelFileError, OnnxtrainError
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable._checkpoint import read_checkpoint
from onnxtrain.portable._graphs import STEP, TrainStepGraph, model_parameters


def starting_values(
    graph: TrainStepGraph,
    layers: ModelGraph,
    optimizer: Optimizer,
    resume: bytes | None,
    communicator: Communicator | None = None,
) -> dict[str, np.ndarray]:
    """Every value the train step `graph` of `layers` carries or reads, by name: the parameters, the optimizer
    state (its initial value, as the graph carries it) and `step` 0; or, with `resume` (`checkpoint_bytes`), the
    checkpoint's weights and, where it saved them, its optimizer state and step. With a `communicator`, those of
    process 0, whatever the other processes were given.

    Raises:
        ModelFileError: the checkpoint does not belong to this model, or was damaged.
        InvalidArgumentError: it holds optimizer state of another optimizer than `optimizer`.
    """
    values = _own_values(graph, layers, optimizer, resume)
    if communicator is not None:  # every process starts from process 0's weights, state and step
        for name in sorted(values):
            values[name] = np.array(values[name], order="C")  # a 0-d step stays 0-d
            communicator.broadcast(values[name])
    return values


def _own_values(
    graph: TrainStepGraph, layers: ModelGraph, optimizer: Optimizer, resume: bytes | None
) -> dict[str, np.ndarray]:
    values = {name: np.asarray(v, np.float32) for name, v in model_parameters(layers).items()}
    for tensor in graph.state:
        values[tensor.name] = np.full(values[tensor.parameter].shape, tensor.initial * tensor.scale, np.float32)
    values[STEP] = np.array(0, np.int64)
    if resume is None:
        return values
    checkpoint = read_checkpoint(resume)
    check_names_and_shapes("checkpoint weights", checkpoint.weights, values, require_all=False, error=ModelFileError)
    values.update(checkpoint.weights)
    if checkpoint.state:
        if checkpoint.optimizer != optimizer.name:
            raise InvalidArgumentError(
                f"The checkpoint holds optimizer state of {checkpoint.optimizer!r}; the model is "
                f"compiled with {optimizer.name!r}. Compile with {checkpoint.optimizer!r}, or load "
                "without optimizer state."
            )
        expected = {t.name: values[t.name] for t in graph.state}
        check_names_and_shapes(
            "checkpoint optimizer state", checkpoint.state, expected, require_all=True, error=ModelFileError
        )
        if checkpoint.version == 1:  # unscaled state: scale it as the graph carries it
            scales = {t.name: np.float32(t.scale) for t in graph.state}
            checkpoint.state = {name: value * scales[name] for name, value in checkpoint.state.items()}
        values.update(checkpoint.state)
    if checkpoint.step is not None:
        values[STEP] = np.array(checkpoint.step, np.int64)
    return values


def check_names_and_shapes(
    what: str,
    given: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    require_all: bool,
    error: type[OnnxtrainError] = InvalidArgumentError,
) -> None:
    """Raise `error` unless `given` has names (all of them, with `require_all`) and shapes of `expected`: a
    ModelFileError for a checkpoint, which does not belong to this model or was damaged."""
    unknown = sorted(set(given) - set(expected))
    missing = sorted(set(expected) - set(given)) if require_all else []
    if unknown or missing:
        raise error(
            f"{what}: names do not match the model. Unknown: {unknown}; missing: {missing}. "
            f"Expected: {sorted(expected)}"
        )
    for name, value in given.items():
        if np.shape(value) != np.shape(expected[name]):
            raise error(f"{what}: {name} expects shape {np.shape(expected[name])}. Received: {np.shape(value)}")
