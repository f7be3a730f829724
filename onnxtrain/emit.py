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

import numpy as np
import onnx

from onnxtrain import activations, losses
from onnxtrain._loss_base import weight_rows
from onnxtrain.errors import InvalidArgumentError, PortableEngineOnlyError, UnsupportedError
from onnxtrain.functional import Functional, as_graph
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, GraphBuilder
from onnxtrain.layers import (
    Activation,
    Conv1D,
    Conv2DTranspose,
    Dense,
    DepthwiseConv2D,
    Layer,
    SeparableConv2D,
    Shape,
    TimeDistributed,
)
from onnxtrain.layers import Softmax as SoftmaxLayer
from onnxtrain.losses import Loss, Losses, SoftmaxCrossEntropyWithLogits
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

# The forwards that end in the layer's `activation` argument applied to a linear map (Dense; every convolution:
# Conv1D/2D/3D share one, the transposed ones another), so that a copy with a linear activation gives that map,
# the logits. Read off `type(layer).emit`: a subclass with its own forward may do anything after it.
_LINEAR_THEN_ACTIVATION = frozenset(
    {Dense.emit, Conv1D.emit, Conv2DTranspose.emit, DepthwiseConv2D.emit, SeparableConv2D.emit}
)


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


def output_losses(graph: Functional, loss: Loss | None) -> list[Loss | None]:
    """Each output's loss: `loss` itself for one output, the per-output losses of an `OutputLosses`."""
    if isinstance(loss, OutputLosses):
        return [spec.loss for spec in loss.outputs]
    if len(graph.outputs) != 1 and loss is not None:
        raise UnsupportedError(
            f"A model of several outputs takes one loss per output (compile builds them). Received: {loss.name!r}"
        )
    return [loss] * len(graph.outputs)


def logits_substitutes(graph: Functional, loss: Loss | None) -> dict[int, Layer]:
    """What `Functional.emit` computes instead for `loss`, by output position: an output's layer without its softmax
    (or its default activation) where `graph_layers` would emit it so (same rule, same reasons) for that output's
    own loss; nothing otherwise. By position, as one tensor may be listed twice, trained on logits at one position
    and on its values at another, as Keras' `Model(x, [y, y])` with a loss each."""
    substitutes = {}
    for position, (output, own) in enumerate(zip(graph.outputs, output_losses(graph, loss), strict=True)):
        logits = _logits_layer(output.layer, own)
        if logits is not None:
            substitutes[position] = logits
    return substitutes


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
    outputs, masks = graph.emit_with_masks(builder, list(xs), logits_substitutes(graph, loss))
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


def graph_layers(layers: Sequence[Layer], loss: Loss | None) -> list[Layer]:
    """The layers as the graphs emit them for `loss`.

    A loss that reads logits (`Loss.trains_on_logits`: the softmax cross-entropies, and binary cross-entropy with
    `from_logits=True`) gets them: the last layer is emitted without its activation when that is
      * a Dense's activation not given (`Dense(10)`, as KotlinDL's tutorial writes it, or the TF RNN tutorial's
        `Dense(1)` under `BinaryCrossentropy(from_logits=True)`): Dense's ReLU default would clamp the logits at
        0, so that a class whose unit starts inactive never learns (a sigmoid's unit never goes below 0.5). An
        explicit `activation="relu"` stays; or
      * under softmax cross-entropy, a softmax: Keras' usual `Dense(10, activation="softmax")`, a convolution's
        (Keras' segmentation head `Conv2D(n, 1, activation="softmax")`: every layer whose forward is its activation
        of a linear map, `_LINEAR_THEN_ACTIVATION`), or a last `Softmax()` or `Activation("softmax")` layer, with
        "sparse_categorical_crossentropy". As in Keras,
        training sees the logits (the softmax is applied once), the `logits` output is the logits, and the
        exported `probabilities` output is the layer's own softmax, not a softmax of it.
    The rule reaches the layer whose values the last layer's are (`logits_path`): the layer a last
    `TimeDistributed` applies to each step (Keras' tagger head `TimeDistributed(Dense(n))`), and the last layer of
    a nested model of one output that is the last layer, at any depth; no other wrapper or merge.
    Every graph of a model (each engine's training and eval graphs, and the export) goes through here, so they
    all compute the same function. The layer itself is not changed.
    """
    layers = list(layers)
    logits = _logits_layer(layers[-1], loss)
    if logits is not None:
        layers[-1] = logits
    return layers


def default_activation_emits_logits(layer: Layer, loss: Loss | None) -> bool:
    """Whether `layer`, last in a model, is emitted linear for `loss` because the activation of the Dense it ends in
    (itself, or through TimeDistributed or a nested model: `logits_path`) was not given (`activation_given`, which
    only Dense records: a convolution's default ReLU stays)."""
    return _logits_layer(layer, loss) is not None and not getattr(logits_path(layer)[-1], "activation_given", True)


def logits_path(last: Layer) -> list[Layer]:
    """`last` and the layers the logits rule (`graph_layers`) reaches through it, outermost first: the layer a
    TimeDistributed wraps, the output layer of a nested model of one output, and so on; the last one is the layer
    whose activation the rule reads. `[last]` for any other layer."""
    path = [last]
    while True:
        inner = _reached(path[-1])
        if inner is None:
            return path
        path.append(inner)


def _reached(layer: Layer) -> Layer | None:
    """The layer whose values `layer`'s are (per step): a TimeDistributed's, a nested model's one output layer."""
    if isinstance(layer, TimeDistributed):
        return layer.layer
    if isinstance(layer, Functional) and len(layer.outputs) == 1:
        return layer.outputs[0].layer
    return None


def _logits_layer(last: Layer, loss: Loss | None) -> Layer | None:
    """What the graphs emit in place of a model's last layer `last` under `loss` (`graph_layers`): a copy that
    shares the layer's name and weights (a Dense or a convolution: `_LINEAR_THEN_ACTIVATION`), with a linear
    activation (or a linear Activation layer for a Softmax layer; for a TimeDistributed or a nested model, a
    copy that emits such a copy of its own last layer); None where `last` is emitted as it is."""
    if loss is None or not loss.trains_on_logits:
        return None
    if isinstance(last, TimeDistributed):
        inner = _logits_layer(last.layer, loss)
        return None if inner is None else last.emitting(inner)
    if isinstance(last, Functional):
        if len(last.outputs) != 1:  # its call gives several tensors, which other layers may read
            return None
        substitutes = logits_substitutes(last, loss)
        return _graph_on_logits(last, substitutes) if substitutes else None
    activation = getattr(last, "activation", None)
    softmax_loss = isinstance(loss, SoftmaxCrossEntropyWithLogits)  # which applies the softmax a last layer has
    if type(last).emit in _LINEAR_THEN_ACTIVATION:
        default = not getattr(last, "activation_given", True)  # Dense's flag; a layer without it: given
        softmax = softmax_loss and isinstance(activation, activations.Softmax)
        if not (softmax or default):
            return None  # an activation given that the loss does not apply
    elif not softmax_loss:
        return None
    elif type(last) is Activation:
        if not isinstance(activation, activations.Softmax):
            return None
    elif type(last) is SoftmaxLayer:
        if last.axis != -1:  # a softmax over another axis than the classes'
            return None
        return Activation(activations.Linear(), name=last.name)
    else:
        return None
    linear = copy.copy(last)
    # A substitute the graph emits in place of `last`, never trained or saved: no assignment check (a throwaway
    # layer built with its weights, `layers/_assignments.py`) for what is valid by construction.
    object.__setattr__(linear, "activation", activations.Linear())
    return linear


def _graph_on_logits(graph: Functional, substitutes: Mapping[int, Layer]) -> Functional:
    """A shallow copy of the nested model's `graph` (its layers, weights and name) that emits its output by
    `substitutes` (its own `logits_substitutes`) where its caller gives none: the outer graph calls a nested model
    with its input masks only (`_functional_calls.emit_layer_call`), a TimeDistributed with its input only. Set on
    the copy alone, not as a subclass, which `Layer` would register as a layer class."""
    emitted = copy.copy(graph)
    own = dict(substitutes)

    def emit_with_masks(
        builder: GraphBuilder,
        input_values: list[str],
        substitutes: Mapping[int, Layer] | None = None,
        input_masks: Sequence[str | None] | None = None,
    ) -> tuple[list[str], list[str | None]]:
        chosen = own if substitutes is None else substitutes
        return Functional.emit_with_masks(emitted, builder, input_values, chosen, input_masks)

    emitted.__dict__["emit_with_masks"] = emit_with_masks
    return emitted


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
    outputs = graph.emit(builder, xs, logits_substitutes(graph, loss))
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
