"""The portable engine's graphs, emitted from the layer list through one GraphBuilder, default ONNX domain only.

Train step: inputs are the parameters, the optimizer state, `step` (int64, updates made so far), `learning_rate` and a
batch (`input`, `labels`); outputs are `loss`, `logits`, then `updated.<parameter>`, `updated.<state>` and
`updated.step`. Eval: parameters and a batch in, `loss` and `logits` out. A graph built `weighted` also takes
`sample_weight` (float32 [batch, *steps]: one weight per position of an output with steps, `_loss_base.weight_steps`,
else [batch]; [batch, outputs] for several outputs) and weighs each example's (or position's) loss by it;
the unweighted graphs are what every fit without weights runs. Parameters keep their hierarchical names
(`dense_1.kernel`), as in the inference export and the ort-training engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from onnxtrain import autodiff, emit
from onnxtrain._loss_base import weight_steps
from onnxtrain.autodiff._rewrites import mask_pooled_relu_gradients, pool_convolutions_by_phase
from onnxtrain.errors import ShapeError
from onnxtrain.functional import Functional, as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, GraphBuilder
from onnxtrain.losses import Loss
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable._in_place import in_place_updates
from onnxtrain.portable._optimizers import clip_gradients, update_rule

STEP = "step"
LEARNING_RATE = "learning_rate"
FIRST_ROW = "first_row"  # a split step's share: the batch index of its first row (`_split_step.py`)
UPDATED = "updated."
GRADIENT = "gradient."


def updated(name: str) -> str:
    """The train-step output that carries the new value of input `name`."""
    return UPDATED + name


def gradient(name: str) -> str:
    """The gradient model's output that carries the (clipped) gradient of parameter `name`."""
    return GRADIENT + name


@dataclass(frozen=True)
class StateTensor:
    """One optimizer state tensor: graph input `name`, slot `slot` of parameter `parameter`.

    The graph carries the slot's value times `scale` (see `Slot`); `initial` is unscaled.
    """

    name: str
    parameter: str
    slot: str
    initial: float
    scale: float = 1.0


@dataclass(frozen=True)
class TrainStepGraph:
    """The train-step model and the names the engine binds."""

    model: onnx.ModelProto
    trainable: tuple[str, ...]
    frozen: tuple[str, ...]
    state: tuple[StateTensor, ...]
    # Non-trainable parameters the step gives new values (BatchNormalization's moving statistics).
    layer_state: tuple[str, ...] = ()

    @property
    def carried(self) -> tuple[str, ...]:
        """Inputs whose new value comes back as `updated.<name>`: trainable parameters, layer state, optimizer
        state, step."""
        return (*self.trainable, *self.layer_state, *(s.name for s in self.state), STEP)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Every parameter of the model: trainable, layer state and frozen."""
        return (*self.trainable, *self.layer_state, *self.frozen)

    @property
    def in_place(self) -> frozenset[str]:
        """Carried inputs whose `updated.<name>` output may be written into the input's own buffer."""
        return in_place_updates(self.model.graph, self.carried, UPDATED)


class ParameterInputBuilder(GraphBuilder):
    """A GraphBuilder whose parameters are graph inputs: a layer's `emit_params` gets the input, not a copy.

    So every layer's own `emit` builds the forward of the train and eval graphs unchanged.
    """

    def __init__(
        self,
        parameters: Mapping[str, np.ndarray],
        opset: int,
        ir_version: int,
        training: bool = False,
        shares: bool = False,
    ):
        super().__init__(opset, ir_version, training=training)
        self._shares = shares  # the graph runs on a share of the batch: Dropout asks for the `first_row` input
        self._parameter_shapes = {name: tuple(value.shape) for name, value in parameters.items()}
        for name, shape in self._parameter_shapes.items():
            self.add_input(name, np.float32, shape)

    def training_step(self) -> str:
        """The `step` input (int64 scalar, updates made so far), added the first time it is asked for."""
        if self.training and STEP not in self._names:
            self.add_input(STEP, np.int64, ())
        if STEP not in self._names:
            return super().training_step()
        return STEP

    def first_row(self) -> str | None:
        """The `first_row` input (int64 scalar), added the first time it is asked for, in a graph that runs on a
        share of the batch; None otherwise."""
        if self._shares and FIRST_ROW not in self._names:
            self.add_input(FIRST_ROW, np.int64, ())
        return FIRST_ROW if self._shares else None

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        qualified = self._qualified(name)
        expected = self._parameter_shapes.get(qualified)
        if expected is None:
            return super().add_initializer(name, array)
        if tuple(np.shape(array)) != expected:
            raise ShapeError(f"Parameter {qualified} has shape {np.shape(array)}; the graph declared {expected}.")
        return qualified


def model_parameters(layers: emit.ModelGraph) -> dict[str, np.ndarray]:
    """Every parameter by graph name (a nested model's under its name), in layer order."""
    return as_graph(layers).params_by_name()


def trainable_parameters(layers: emit.ModelGraph) -> tuple[str, ...]:
    """The graph names of the parameters the optimizer updates, in layer order."""
    return tuple(as_graph(layers).trainable_params_by_name())


def train_step_model(
    layers: emit.ModelGraph,
    loss: Loss,
    optimizer: Optimizer,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    weighted: bool = False,
) -> TrainStepGraph:
    """Forward, loss, backward, clipping and the optimizer update as one ONNX model; `weighted`: the loss weighs
    each example by the `sample_weight` input.

    Raises:
        UnsupportedError: an op of the model has no gradient rule (`onnxtrain.autodiff`), or the optimizer no
            update rule.
    """
    graph = as_graph(layers)
    rule = update_rule(optimizer)
    parameters, trainable = model_parameters(graph), trainable_parameters(graph)
    b = ParameterInputBuilder(parameters, opset, ir_version, training=True)
    state = tuple(
        StateTensor(f"optimizer.{slot.name}.{name}", name, slot.name, slot.initial, slot.scale)
        for name in trainable
        for slot in rule.slots(optimizer)
    )
    for tensor in state:
        b.add_input(tensor.name, np.float32, parameters[tensor.parameter].shape)
    step = b.training_step()
    lr = b.add_input(LEARNING_RATE, np.float32, ())
    loss_value, _, grads = _forward_backward(b, graph, loss, trainable, weighted)
    layer_updates = b.state_updates
    layer_state = tuple(name for name in parameters if name in layer_updates and name not in trainable)
    frozen = tuple(n for n in parameters if n not in trainable and n not in layer_state)
    carried: dict[str, tuple[type, tuple[int, ...]]] = {
        name: (np.float32, parameters[name].shape) for name in (*trainable, *layer_state)
    }
    carried.update({t.name: (np.float32, parameters[t.parameter].shape) for t in state})
    carried[STEP] = (np.int64, ())
    with b.scope("update"):
        with b.subgraph() as apply_nodes:
            clipped = clip_gradients(b, optimizer, [grads[name] for name in trainable])
            one = b.constant(np.int64(1), "one", np.int64)
            next_step = b.node("Add", [step, one], hint="next_step")
            t = b.node("Cast", [next_step], hint="t", to=TensorProto.FLOAT)
            shared = rule.prepare(b, optimizer, lr, t)
            new_values = {STEP: next_step, **{name: layer_updates[name] for name in layer_state}}
            for name, g in zip(trainable, clipped, strict=True):
                slots = {s.slot: s.name for s in state if s.parameter == name}
                new_values[name], new_slots = rule.update(b, optimizer, name, g, slots, shared)
                new_values.update({slots[slot]: value for slot, value in new_slots.items()})
            # A branch's outputs must be its own, one value each: pass through what a rule left unchanged.
            produced: set[str] = {out for node in apply_nodes for out in node.output}
            for name in carried:
                if new_values[name] not in produced:
                    new_values[name] = b.node("Identity", [new_values[name]], hint="unchanged")
                produced.discard(new_values[name])
        results = _update_if_finite(b, loss_value, apply_nodes, {n: new_values[n] for n in carried}, carried)
    for (name, (dtype, shape)), result in zip(carried.items(), results, strict=True):
        b.add_output(result, updated(name), dtype, shape)
    model = b.build("onnxtrain_train_step")
    return TrainStepGraph(model, trainable, frozen, state, layer_state)


def gradient_model(
    layers: emit.ModelGraph,
    loss: Loss,
    optimizer: Optimizer,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    shares: bool = False,
    weighted: bool = False,
) -> onnx.ModelProto:
    """The train step without its update: forward, loss, backward and the optimizer's gradient clipping.

    With `shares`, the graph runs on a share of each batch (`_split_step.py`): a model with Dropout then reads
    the `first_row` input, the index of the share's first row in the batch, so that every row draws its own mask.

    Inputs are the parameters and a batch; outputs are `loss`, `logits`, `gradient.<parameter>` for every
    trainable parameter, clipped as `optimizer` clips, then `updated.<name>` for every layer state tensor (its new
    value from this batch, whatever the loss: a data-parallel engine averages it over the processes first). The
    engine applies the update with a fused kernel (`_fused.py`) where one exists; `train_step_model` is the same
    step with the update in the graph.
    """
    graph = as_graph(layers)
    parameters, trainable = model_parameters(graph), trainable_parameters(graph)
    b = ParameterInputBuilder(parameters, opset, ir_version, training=True, shares=shares)
    _, _, grads = _forward_backward(b, graph, loss, trainable, weighted)
    with b.scope("clip"):
        clipped = clip_gradients(b, optimizer, [grads[name] for name in trainable])
    for name, g in zip(trainable, clipped, strict=True):
        b.add_output(g, gradient(name), np.float32, parameters[name].shape)
    layer_updates = b.state_updates
    for name in (n for n in parameters if n in layer_updates and n not in trainable):
        value = layer_updates[name]
        if value == name:  # a graph output must not be an input
            value = b.node("Identity", [value], hint="unchanged")
        b.add_output(value, updated(name), np.float32, parameters[name].shape)
    model = b.build("onnxtrain_gradients")
    return model


def _forward_backward(
    b: GraphBuilder, graph: Functional, loss: Loss, trainable: Sequence[str], weighted: bool
) -> tuple[str, str, dict[str, str]]:
    """Emit the batch inputs, forward, loss and backward; add the `loss` and `logits` outputs.

    The layers emit their forward only; `autodiff.backward` differentiates it op by op, and the exact rewrites of
    `autodiff._rewrites` make that backward cheaper.

    Returns (loss, logits, gradient by trainable parameter name).
    """
    xs, labels, weights, output_shape = _batch_inputs(b, graph, loss, weighted)
    loss_value, value = emit.forward_and_loss(b, graph, xs, labels, loss, weights)
    pool_convolutions_by_phase(b, trainable)  # the same values; a cheaper backward
    with b.scope("backward"):
        grads = autodiff.backward(b, loss_value, trainable)
        mask_pooled_relu_gradients(b)  # exact: ReLU masks over pooled maps, not the full ones
    b.add_output(loss_value, emit.LOSS_NAME, np.float32, ())
    b.add_output(value, emit.LOGITS_NAME, np.float32, (None, *output_shape))
    return loss_value, value, grads


def _update_if_finite(
    b: GraphBuilder,
    loss: str,
    apply_nodes: list[onnx.NodeProto],
    new_values: Mapping[str, str],
    specs: Mapping[str, tuple[type, tuple[int, ...]]],
) -> list[str]:
    """An `If` on a finite loss: its then branch (`apply_nodes`) computes `new_values`, its else branch passes each
    carried input through. So a step whose loss is NaN or infinite changes no weight, state or step, in the graph
    itself, which is also what lets the engine write the updates over their inputs (see `_in_place.py`).
    """
    is_finite = b.node("Equal", [b.node("Sub", [loss, loss], hint="loss_minus_loss"), b.constant(0.0, "zero")])
    with b.subgraph() as keep_nodes:
        kept = [b.node("Identity", [name], hint="kept") for name in new_values]

    def branch(name: str, nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> onnx.GraphProto:
        infos = [b.value_info(value, *specs[carried]) for carried, value in zip(new_values, outputs, strict=True)]
        return onnx.helper.make_graph(nodes, name, [], infos)

    return b.multi_output_node(
        "If",
        [is_finite],
        len(new_values),
        hint="apply_if_finite",
        then_branch=branch("apply_update", apply_nodes, list(new_values.values())),
        else_branch=branch("keep_values", keep_nodes, kept),
    )


def eval_model(
    layers: emit.ModelGraph,
    loss: Loss,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    weighted: bool = False,
) -> onnx.ModelProto:
    """Forward + loss with the parameters as inputs: `loss`, `logits` of a batch for the current weights;
    `weighted`: the loss weighs each example by the `sample_weight` input."""
    graph = as_graph(layers)
    b = ParameterInputBuilder(model_parameters(graph), opset, ir_version)
    xs, labels, weights, output_shape = _batch_inputs(b, graph, loss, weighted)
    value, output = emit.forward_and_loss(b, graph, xs, labels, loss, weights)
    b.add_output(value, emit.LOSS_NAME, np.float32, ())
    b.add_output(output, emit.LOGITS_NAME, np.float32, (None, *output_shape))
    return b.build("onnxtrain_eval")


def _batch_inputs(
    b: GraphBuilder, graph: Functional, loss: Loss, weighted: bool
) -> tuple[list[str], str, str | None, tuple[int, ...]]:
    output_shape = emit.output_shape(graph)
    xs = emit.add_graph_inputs(b, graph)
    label_dtype, label_shape = loss.label_spec(output_shape)
    labels = b.add_input(emit.LABELS_NAME, label_dtype, label_shape)
    weights = None
    if weighted:
        # one weight per example, or per position of an output with steps ((N, T) for a tagger), as Keras takes them
        shape: tuple[int | None, ...] = (
            (None, *weight_steps(output_shape)) if len(graph.outputs) == 1 else (None, len(graph.outputs))
        )
        weights = b.add_input(emit.SAMPLE_WEIGHT_NAME, np.float32, shape)
    return xs, labels, weights, output_shape
