"""The ONNX graphs of a model: forward + loss (what training engines differentiate) and the clean inference export.

Both are emitted from the same graph of layers (a `Functional`, or a Sequential's layer list: `functional.as_graph`)
through one GraphBuilder, so parameter names (`dense_1.kernel`) are the same in the training artifacts, the checkpoint
and the exported model. A model of one input reads graph input `input`; one of several reads one graph input per
`Input`, named as the Input layer is (`input_names`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import TypeGuard

import numpy as np
import onnx

from onnxtrain import activations
from onnxtrain.errors import UnsupportedError
from onnxtrain.functional import Functional, as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, GraphBuilder
from onnxtrain.layers import Dense, Layer, Shape
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.losses import Loss, SoftmaxCrossEntropyWithLogits

INPUT_NAME = "input"
LABELS_NAME = "labels"
LOSS_NAME = "loss"
LOGITS_NAME = "logits"
PROBABILITIES_NAME = "probabilities"
RESERVED_NAMES = frozenset({INPUT_NAME, LABELS_NAME, LOSS_NAME, LOGITS_NAME, PROBABILITIES_NAME})

ModelGraph = Sequence[Layer] | Functional
"""What the graphs are emitted from: a Functional, or a Sequential's built layer list (Input first)."""


def input_names(graph: Functional) -> list[str]:
    """The graph input names of `graph`'s inputs: `input` for one, the Input layers' names for several."""
    return [INPUT_NAME] if len(graph.inputs) == 1 else [str(x.name) for x in graph.inputs]


def output_shape(graph: Functional) -> Shape:
    """The shape of the graph's one output (a model's graphs have one: `loss` and `logits` are computed from it)."""
    if len(graph.outputs) != 1:
        raise UnsupportedError(f"A model with several outputs is not supported yet. Received: {len(graph.outputs)}")
    return graph.outputs[0].shape


def logits_substitutes(graph: Functional, loss: Loss | None) -> dict[SymbolicTensor, Layer]:
    """What `Functional.emit` computes instead for `loss`: the output's Dense without its activation where
    `graph_layers` would emit it so (same rule, same reasons); nothing otherwise."""
    output = graph.outputs[0]
    return {output: _linear_copy(output.layer)} if _emits_its_logits(output.layer, loss) else {}


def add_graph_inputs(builder: GraphBuilder, graph: Functional) -> list[str]:
    """Declare the graph's inputs ([batch, ...] float32, named by `input_names`); returns their value names."""
    names = input_names(graph)
    return [builder.add_input(name, np.float32, (None, *x.shape)) for name, x in zip(names, graph.inputs, strict=True)]


def graph_layers(layers: Sequence[Layer], loss: Loss | None) -> list[Layer]:
    """The layers as the graphs emit them for `loss`.

    Softmax cross-entropy applies the softmax itself, to logits, so a last Dense (with Dense's own forward) is
    emitted without its activation when that is
      * a softmax (Keras' usual `Dense(10, activation="softmax")` with "sparse_categorical_crossentropy"), as
        Keras does: training sees the logits, the `logits` output is the logits, and the exported
        `probabilities` output is the layer's own softmax, not a softmax of it; or
      * not given (`Dense(10)`, as KotlinDL's tutorial writes it): Dense's ReLU default would apply to the
        logits, and a class whose unit starts inactive would never learn. An explicit `activation="relu"` stays.
    Every graph of a model (each engine's training and eval graphs, and the export) goes through here, so they
    all compute the same function. The layer itself is not changed.
    """
    layers = list(layers)
    last = layers[-1]
    if _emits_its_logits(last, loss):
        layers[-1] = _linear_copy(last)
    return layers


def _linear_copy(layer: Dense) -> Dense:
    """`layer` without its activation: a copy that shares the layer's name and weights."""
    logits = copy.copy(layer)
    logits.activation = activations.Linear()
    return logits


def default_activation_emits_logits(layer: Layer, loss: Loss | None) -> bool:
    """Whether `layer`, last in a model, is emitted linear for `loss` because its activation was not given."""
    return _emits_its_logits(layer, loss) and not getattr(layer, "activation_given", True)


def _emits_its_logits(last: Layer, loss: Loss | None) -> TypeGuard[Dense]:
    return (
        isinstance(loss, SoftmaxCrossEntropyWithLogits)
        and isinstance(last, Dense)
        and type(last).emit is Dense.emit  # its forward is Dense's: the linear part, then the activation
        and (isinstance(last.activation, activations.Softmax) or not getattr(last, "activation_given", True))
    )


def emit_forward(
    builder: GraphBuilder,
    layers: ModelGraph,
    x: str | Sequence[str],
    substitutes: Mapping[SymbolicTensor, Layer] | None = None,
) -> str:
    """Emit every layer call after the Inputs, each inside its own name scope, reading `x` (one value per input);
    returns the output's value name, in Keras' channels-last order (see `layers/_layout.py`)."""
    graph = as_graph(layers)
    output_shape(graph)  # one output
    return graph.emit(builder, [x] if isinstance(x, str) else list(x), substitutes)[0]


def loss_model(
    layers: ModelGraph,
    loss: Loss,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    training: bool = False,
) -> onnx.ModelProto:
    """Forward pass + loss. Inputs: `input` (or one per Input, `input_names`), `labels`. Outputs: `loss` (first:
    where backpropagation starts), `logits`.

    Parameters are initializers; a training engine decides which of them are trainable. `training=True` emits the
    layers' training graph (a generic training engine's forward).

    Raises:
        UnsupportedError: with `training`, a layer updates state in each step (BatchNormalization's moving
            statistics), which this graph has no output for, or draws per-step random numbers (Dropout), for
            which it has no step counter.
    """
    graph = as_graph(layers)
    shape = output_shape(graph)
    builder = GraphBuilder(opset, ir_version, training=training)
    xs = add_graph_inputs(builder, graph)
    label_dtype, label_shape = loss.label_spec(shape)
    labels = builder.add_input(LABELS_NAME, label_dtype, label_shape)
    output = emit_forward(builder, graph, xs, logits_substitutes(graph, loss))
    with builder.scope("loss"):
        value = builder.with_added_losses(loss.emit(builder, output, labels))  # weight penalties (regularizers)
    if builder.state_updates:
        raise UnsupportedError(
            f"the layer state {sorted(builder.state_updates)} takes a new value in each training step, which a "
            "forward-and-loss graph has no output for"
        )
    builder.add_output(value, LOSS_NAME, np.float32, ())
    builder.add_output(output, LOGITS_NAME, np.float32, (None, *shape))
    return builder.build("onnxtrain_training")


def inference_graph(
    layers: ModelGraph,
    loss: Loss | None = None,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    metadata: Mapping[str, str] | None = None,
    class_names: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """The inference graph of `layers`, their parameters as initializers: input `input` [batch, ...] (or one per
    Input, named by `input_names`), output
    `logits`, plus `probabilities` (softmax) when the loss is softmax cross-entropy (see `graph_layers`). Default
    ONNX domain only, checked with the full ONNX checker. `model_files.exported_model` adds the descriptive metadata
    (what `Sequential.inference_model` returns and `export` writes).
    """
    graph = as_graph(layers)
    shape = output_shape(graph)
    builder = GraphBuilder(opset, ir_version)
    xs = add_graph_inputs(builder, graph)
    output = emit_forward(builder, graph, xs, logits_substitutes(graph, loss))
    builder.add_output(output, LOGITS_NAME, np.float32, (None, *shape))
    if isinstance(loss, SoftmaxCrossEntropyWithLogits):
        probabilities = builder.node("Softmax", [LOGITS_NAME], hint="softmax", axis=-1)
        builder.add_output(probabilities, PROBABILITIES_NAME, np.float32, (None, *shape))
    for key, value in (metadata or {}).items():
        builder.set_metadata(key, value)
    if class_names is not None:
        builder.set_metadata("class_names", json.dumps(list(class_names)))
    return builder.build("onnxtrain_inference")
