"""The ONNX graphs of a model: forward + loss (what training engines differentiate) and the clean inference export.

Both are emitted from the same graph of layers (a `Functional`, or a Sequential's layer list: `functional.as_graph`)
through one GraphBuilder, so parameter names (`dense_1.kernel`) are the same in the training artifacts, the checkpoint
and the exported model. A model of one input reads graph input `input`; one of several reads one graph input per
`Input`, named as the Input layer is (`input_names`). Which output layers the graphs emit without their activation,
for a loss on logits, is `_logits_rule.py`'s (`graph_layers`, `logits_graph`, `logits_substitutes`, ...), re-exported
here: every graph emits `logits_graph(graph, loss)` with its `logits_substitutes`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from onnxtrain import losses
from onnxtrain._logits_rule import default_activation_emits_logits as default_activation_emits_logits
from onnxtrain._logits_rule import graph_layers as graph_layers
from onnxtrain._logits_rule import logits_chain as logits_chain
from onnxtrain._logits_rule import logits_chains as logits_chains
from onnxtrain._logits_rule import logits_graph as logits_graph
from onnxtrain._logits_rule import logits_path as logits_path
from onnxtrain._logits_rule import logits_substitutes as logits_substitutes
from onnxtrain._logits_rule import output_losses as output_losses
from onnxtrain._loss_base import weight_rows
from onnxtrain.errors import InvalidArgumentError, PortableEngineOnlyError, UnsupportedError
from onnxtrain.functional import Functional, as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, GraphBuilder
from onnxtrain.layers import Layer, Shape
from onnxtrain.losses import Loss, Losses
from onnxtrain.multi_output import OutputLosses, pack_outputs, packed_width

INPUT_NAME = "input"
LABELS_NAME = "labels"
LOSS_NAME = "loss"
LOGITS_NAME = "logits"
PROBABILITIES_NAME = "probabilities"
SAMPLE_WEIGHT_NAME = "sample_weight"  # the training graphs' per-example weights, where a fit or evaluate gives them
MASKED_LOSS = "onnxtrain.masked_loss"  # metadata of a graph whose loss averages over a mask (`has_masked_loss`)
RESERVED_NAMES = frozenset({INPUT_NAME, LABELS_NAME, LOSS_NAME, LOGITS_NAME, PROBABILITIES_NAME, SAMPLE_WEIGHT_NAME})

ModelGraph = Sequence[Layer] | Functional
"""What the graphs are emitted from: a Functional, or a Sequential's built layer list (Input first)."""


def input_names(graph: Functional) -> list[str]:
    """The graph input names of `graph`'s inputs: `input` for one, the Input layers' names for several."""
    return [INPUT_NAME] if len(graph.inputs) == 1 else [str(x.name) for x in graph.inputs]


def output_shape(graph: Functional) -> Shape:
    """The per-example shape of the training graphs' `logits`: the one output's, or for several outputs the
    packed [width] of every output and its loss (`multi_output.pack_outputs`)."""
    if len(graph.outputs) != 1:
        return (packed_width([y.shape for y in graph.outputs]),)
    return graph.outputs[0].shape


def output_names(graph: Functional, loss: Loss | None = None) -> list[str]:
    """The export's output names: for one output, `probabilities` where it holds them (a loss that reads
    probabilities, such as binary cross-entropy not from logits: `Loss.reads_probabilities`), else `logits` (what
    a loss on logits reads, which `probabilities` then follows, or the raw values of any other loss); for several,
    the model's `output_names` (`Functional.output_names`: the output layers' names, a repeated one numbered)."""
    if len(graph.outputs) != 1:
        return graph.output_names()
    return [PROBABILITIES_NAME if loss is not None and loss.reads_probabilities else LOGITS_NAME]


def forward_and_loss(
    builder: GraphBuilder,
    graph: Functional,
    xs: Sequence[str],
    labels: str,
    loss: Loss,
    sample_weights: str | None = None,
) -> tuple[str, str]:
    """Emit the forward and the loss (with the weight penalties) reading `xs` and `labels`; returns (loss,
    logits): the one output, or for several outputs their packed values and losses (`output_shape`).

    With `sample_weights` (the `sample_weight` input: [batch, *steps] for one output, one weight per position of
    an output with steps (`_loss_base.weight_steps`), else [batch]; [batch, outputs] for several), each example's
    or position's loss is weighed by it as Keras weighs it, sum(w l) / elements (`Loss.emit_weighted`); the weight
    penalties are added unweighted, as Keras adds them. An output that carries a mask (Embedding(mask_zero=True) or
    Masking, through layers that pass it on) weighs its loss by it, as Keras 3 does (`masked_loss`)."""
    emitted = logits_graph(graph, loss)
    outputs, masks = emitted.emit_with_masks(builder, list(xs), logits_substitutes(emitted, loss))
    with builder.scope("loss"):
        column = None
        if sample_weights is not None and not isinstance(loss, OutputLosses):
            column = weight_rows(builder, sample_weights)  # [batch, 1], or [batch, steps]
        if isinstance(loss, OutputLosses):
            _refuse_masked_outputs(graph, masks)
            total, per_output = loss.emit_outputs(builder, outputs, labels, sample_weights)
        elif masks[0] is not None:
            total, per_output = masked_loss(builder, loss, outputs[0], labels, masks[0], column), []
        elif column is not None:
            total, per_output = loss.emit_weighted(builder, outputs[0], labels, column), []
        else:
            total, per_output = loss.emit(builder, outputs[0], labels), []
        value = builder.with_added_losses(total)  # weight penalties (regularizers)
    if not per_output:
        return value, outputs[0]
    with builder.scope("outputs"):
        return value, pack_outputs(builder, outputs, per_output)


def masked_loss(builder: GraphBuilder, loss: Loss, output: str, labels: str, mask: str, weights: str | None) -> str:
    """Keras 3's loss of an output that carries a mask [batch, *steps] (losses/loss.py, `apply_mask` with
    "sum_over_batch_size"): each unmasked step's loss weighs total / valid (the mask's size over its True count), a
    masked one 0, so the mean is the mean over the unmasked steps (0 where none is); times `weights` where given
    (`weight_rows`: [batch, 1] each example's, [batch, steps] each step's), as Keras multiplies sample weights in.

    Raises:
        UnsupportedError: `loss` gives no per-step values (`Loss.elements`) to weigh.
    """
    if type(loss).elements is Loss.elements:
        raise UnsupportedError(
            f"Loss {loss.name!r} ({type(loss).__name__}) gives no per-step values (`Loss.elements`), which a mask on "
            "the model's output weighs (Keras 3 leaves the masked steps out of the loss). Define elements(), or drop "
            "the mask before the output."
        )
    builder.set_metadata(MASKED_LOSS, "true")  # see `has_masked_loss`
    flags = builder.node("Cast", [mask], hint="mask_weight", to=onnx.TensorProto.FLOAT)
    size = builder.node("Cast", [builder.node("Size", [mask])], hint="mask_size", to=onnx.TensorProto.FLOAT)
    valid = builder.node("Max", [builder.reduce("ReduceSum", flags, None, keepdims=False), builder.constant(1.0)])
    step_weights = builder.node("Mul", [flags, builder.node("Div", [size, valid], hint="total_over_valid")])
    rows = builder.node("Flatten", [step_weights], hint="step_weights", axis=1)  # [batch, steps]
    if weights is not None:
        rows = builder.node("Mul", [rows, weights], hint="weighted_steps")
    columns = builder.node("Unsqueeze", [rows, builder.ints([2], "axes")])  # one per step's values (or step)
    elements = loss.elements(builder, output, labels)  # [batch, *steps], or [batch, *steps, features]
    steps = builder.node("Slice", [builder.node("Shape", [rows]), builder.ints([1]), builder.ints([2])], hint="steps")
    shape = builder.node("Concat", [builder.ints([0]), steps, builder.ints([-1])], hint="per_step_shape", axis=0)
    per_step = builder.node("Reshape", [elements, shape], hint="per_step")
    return builder.node("ReduceMean", [builder.node("Mul", [per_step, columns])], hint="loss", keepdims=0)


def has_masked_loss(model: onnx.ModelProto, distributed: bool = False) -> bool:
    """Whether `model`'s loss is a masked output's (`masked_loss`): the mean over the batch's unmasked steps, which
    no weighting of the means of parts of the batch by their rows gives, so the engine does not split its step.

    Raises:
        UnsupportedError: a masked loss in a data-parallel step (`distributed`), which combines processes' rows so.
    """
    masked = any(entry.key == MASKED_LOSS for entry in model.metadata_props)
    if masked and distributed:
        raise UnsupportedError(
            "The model's output carries a mask (Embedding(mask_zero=True) or Masking), so its loss is the mean over "
            "the batch's unmasked steps, which a data-parallel step cannot combine from each process's rows. Train "
            "it in one process, or drop the mask before the output."
        )
    return masked


def _refuse_masked_outputs(graph: Functional, masks: Sequence[str | None]) -> None:
    for output, mask in zip(graph.outputs, masks, strict=True):
        if mask is not None:
            raise UnsupportedError(
                f"The output of layer {output.layer.name!r} carries a mask (Embedding(mask_zero=True) or Masking), "
                "which weighs the loss in Keras 3; a model of several outputs with a masked output is not supported. "
                "Drop the mask before that output (e.g. a recurrent layer without return_sequences, a pooling), or "
                "train a model of one output."
            )


def add_graph_inputs(builder: GraphBuilder, graph: Functional) -> list[str]:
    """Declare the graph's inputs ([batch, ...] of each Input's dtype, float32 unless it holds integer ids; named
    by `input_names`); returns their value names."""
    names = input_names(graph)
    return [builder.add_input(name, x.dtype, (None, *x.shape)) for name, x in zip(names, graph.inputs, strict=True)]


def emit_forward(
    builder: GraphBuilder,
    layers: ModelGraph,
    x: str | Sequence[str],
    substitutes: Mapping[int, Layer] | None = None,
) -> str:
    """Emit every layer call after the Inputs, each inside its own name scope, reading `x` (one value per input);
    returns the output's value name, in Keras' channels-last order (see `layers/_layout.py`)."""
    graph = as_graph(layers)
    if len(graph.outputs) != 1:
        raise UnsupportedError(f"emit_forward emits a graph of one output. Received: {len(graph.outputs)} outputs")
    return graph.emit(builder, [x] if isinstance(x, str) else list(x), substitutes)[0]


def loss_model(
    layers: ModelGraph,
    loss: Loss | Losses | str,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    training: bool = False,
) -> onnx.ModelProto:
    """Forward pass + loss. Inputs: `input` (or one per Input, `input_names`), `labels`. Outputs: `loss` (first:
    where backpropagation starts), `logits`.

    `loss` is what `compile` takes: a Loss, a `Losses` member or a name. Parameters are initializers; a training
    engine decides which of them are trainable. `training=True` emits the layers' training graph (a generic
    training engine's forward).

    Raises:
        UnsupportedError: with `training`, a layer updates state in each step (BatchNormalization's moving
            statistics), which this graph has no output for, or draws per-step random numbers (Dropout), for
            which it has no step counter.
    """
    loss = loss if isinstance(loss, Loss) else losses.get(loss)
    graph = as_graph(layers)
    if len(graph.outputs) > 1 and not isinstance(loss, OutputLosses):
        raise InvalidArgumentError(
            f"emit.loss_model: a model of several outputs {graph.output_names()} takes one loss per output, packed "
            "as compile packs them (multi_output.resolve(names, shapes, {name: loss, ...}, None, None)), or cut it "
            f"to one output first (from_onnx(path, outputs=[name])). Received: loss={loss.name!r}"
        )
    shape = output_shape(graph)
    builder = GraphBuilder(opset, ir_version, training=training)
    xs = add_graph_inputs(builder, graph)
    label_dtype, label_shape = loss.label_spec(shape)
    labels = builder.add_input(LABELS_NAME, label_dtype, label_shape)
    value, output = forward_and_loss(builder, graph, xs, labels, loss)
    if builder.state_updates:
        raise PortableEngineOnlyError(
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
    Input, named by `input_names`), output `logits`, plus `probabilities` when the loss trains on logits (softmax
    for softmax cross-entropy, see `graph_layers`; sigmoid for binary cross-entropy from logits:
    `Loss.probability_op`), or `probabilities` alone where the output holds them (binary cross-entropy on a
    sigmoid: `output_names`); a model of several outputs has one output per model output (a tensor listed twice,
    twice), named by `output_names`, each followed by `<name>_probabilities` where its loss has such an op. Default
    ONNX domain only, checked with the full ONNX checker. `model_files.exported_model` adds the descriptive metadata
    (what `Sequential.inference_model` returns and `export` writes).
    """
    graph = as_graph(layers)
    builder = GraphBuilder(opset, ir_version)
    xs = add_graph_inputs(builder, graph)
    emitted = logits_graph(graph, loss)
    outputs = emitted.emit(builder, xs, logits_substitutes(emitted, loss))
    names = output_names(graph, loss)
    for output, name, own, y in zip(outputs, names, output_losses(graph, loss), graph.outputs, strict=True):
        builder.add_output(output, name, np.float32, (None, *y.shape))
        op = own.probability_op if own is not None else None
        if op is not None:
            probabilities = builder.node(op, [name], hint=op.lower(), **({"axis": -1} if op == "Softmax" else {}))
            companion = PROBABILITIES_NAME if len(names) == 1 else f"{name}_{PROBABILITIES_NAME}"
            builder.add_output(probabilities, companion, np.float32, (None, *y.shape))
    for key, value in (metadata or {}).items():
        builder.set_metadata(key, value)
    if class_names is not None:
        builder.set_metadata("class_names", json.dumps(list(class_names)))
    return builder.build("onnxtrain_inference")
