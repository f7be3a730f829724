"""The optimizer update alone as an ONNX model, for a data-parallel fit where the fused kernel cannot run (no numba,
a registered rule of your own): the gradients come in as inputs, already all-reduced and clipped.

Inputs: the trainable parameters, the optimizer state, `step`, `learning_rate` and `gradient.<parameter>`; outputs
`updated.<name>` for each of the first three, as the train-step model's (`train_step_model`) update branch gives
them, from the same `UpdateRule`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from onnxtrain.emit import ModelGraph
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable._graphs import (
    LEARNING_RATE,
    STEP,
    ParameterInputBuilder,
    TrainStepGraph,
    gradient,
    model_parameters,
    updated,
)
from onnxtrain.portable._optimizers import update_rule


def update_model(
    step_graph: TrainStepGraph, layers: ModelGraph, optimizer: Optimizer, opset: int, ir_version: int
) -> onnx.ModelProto:
    """The update of `step_graph`'s trainable parameters and optimizer state (its names) by `optimizer`'s rule."""
    parameters = model_parameters(layers)
    trainable = step_graph.trainable
    rule = update_rule(optimizer)
    b = ParameterInputBuilder({name: parameters[name] for name in trainable}, opset, ir_version, training=True)
    for tensor in step_graph.state:
        b.add_input(tensor.name, np.float32, parameters[tensor.parameter].shape)
    step = b.training_step()
    lr = b.add_input(LEARNING_RATE, np.float32, ())
    grads = {name: b.add_input(gradient(name), np.float32, parameters[name].shape) for name in trainable}
    with b.scope("update"):
        next_step = b.node("Add", [step, b.constant(np.int64(1), "one", np.int64)], hint="next_step")
        t = b.node("Cast", [next_step], hint="t", to=TensorProto.FLOAT)
        shared = rule.prepare(b, optimizer, lr, t)
        new_values = {STEP: next_step}
        for name in trainable:
            slots = {s.slot: s.name for s in step_graph.state if s.parameter == name}
            new_values[name], new_slots = rule.update(b, optimizer, name, grads[name], slots, shared)
            new_values.update({slots[slot]: value for slot, value in new_slots.items()})
    inputs = {*trainable, *(s.name for s in step_graph.state), STEP}
    for name in (*trainable, *(s.name for s in step_graph.state), STEP):
        value = new_values.get(name, name)
        if value in inputs:  # a rule that leaves a value as it was: an output of its own
            value = b.node("Identity", [value], hint="unchanged")
        shape = () if name == STEP else parameters[_parameter_of(step_graph, name)].shape
        b.add_output(value, updated(name), np.int64 if name == STEP else np.float32, shape)
    return b.build("onnxtrain_update")


def _parameter_of(step_graph: TrainStepGraph, name: str) -> str:
    """The parameter that `name` (a parameter or a state tensor) has the shape of."""
    for tensor in step_graph.state:
        if tensor.name == name:
            return tensor.parameter
    return name
