"""The logits rule: which output layers the graphs emit without their activation, so a loss on logits reads them
(`graph_layers`, `logits_graph`), the substitutes that compute them (`logits_substitutes`), and the loss each
output trains on. The layers that carry values or probabilities to an output, and the log-probabilities the loss
reads from carried ones, are `_carried_probabilities.py`'s."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from onnxtrain import activations
from onnxtrain._carried_probabilities import (
    CARRY_PROBABILITIES,
    CARRY_VALUES,
    SPOIL_PROBABILITIES,
    built_shapes,
    carried_from,
    check_carried_probabilities,
    first_carrying,
    log_probabilities,
)
from onnxtrain._functional_calls import topological_calls
from onnxtrain.errors import UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.graph import GraphBuilder
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
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.losses import Loss, SoftmaxCrossEntropyWithLogits
from onnxtrain.multi_output import OutputLosses

# The forwards that end in the layer's `activation` argument applied to a linear map (Dense; every convolution:
# Conv1D/2D/3D share one, the transposed ones another), so that a copy with a linear activation gives that map,
# the logits. Read off `type(layer).emit`: a subclass with its own forward may do anything after it.
_LINEAR_THEN_ACTIVATION = frozenset(
    {Dense.emit, Conv1D.emit, Conv2DTranspose.emit, DepthwiseConv2D.emit, SeparableConv2D.emit}
)


def output_losses(graph: Functional, loss: Loss | None) -> list[Loss | None]:
    """Each output's loss: `loss` itself for one output, the per-output losses of an `OutputLosses`."""
    if isinstance(loss, OutputLosses):
        return [spec.loss for spec in loss.outputs]
    if len(graph.outputs) != 1 and loss is not None:
        raise UnsupportedError(
            f"A model of several outputs takes one loss per output (compile builds them). Received: {loss.name!r}"
        )
    return [loss] * len(graph.outputs)


def logits_graph(graph: Functional, loss: Loss | None) -> Functional:
    """`graph` as the graphs emit it for `loss`, before `logits_substitutes`: where an output's values are a layer's
    left at its default activation, moved or pooled (`logits_chains`: `Conv2D(10, 1)` then
    `GlobalAveragePooling2D()`), a shallow copy of `graph` that computes that output anew from the layer's logits (a
    copy of each call of the chain, the first one's layer emitted linear); `graph` itself where no output is so. A
    layer that reads a tensor of the chain still reads its values as called."""
    chains = logits_chains(graph, loss)
    if not chains:
        return graph
    made: dict[int, SymbolicTensor] = {}  # a tensor listed at several positions is computed anew once
    outputs, losses = list(graph.outputs), output_losses(graph, loss)
    for position, chain in chains.items():
        output = outputs[position]
        if id(output) not in made:
            made[id(output)] = _called_anew(chain, losses[position])
        outputs[position] = made[id(output)]
    emitted = copy.copy(graph)  # set on the copy alone, as `_graph_on_logits` does
    emitted.__dict__["outputs"] = outputs
    emitted.__dict__["_nodes"] = topological_calls(graph.inputs, outputs)
    return emitted


def logits_chains(graph: Functional, loss: Loss | None) -> dict[int, list[SymbolicTensor]]:
    """By output position, the `logits_chain` of each output that has one for its own loss."""
    chains = {}
    for position, (output, own) in enumerate(zip(graph.outputs, output_losses(graph, loss), strict=True)):
        chain = logits_chain(output, own)
        if chain:
            chains[position] = chain
    return chains


def logits_chain(output: SymbolicTensor, loss: Loss | None) -> list[SymbolicTensor]:
    """Where the values of the graph's `output` are those of a layer left at its default activation that the graphs
    emit linear for `loss` (`default_activation_emits_logits`), moved or pooled on their way (`CARRY_VALUES`:
    Reshape, Flatten, Permute, the poolings), or, under softmax cross-entropy, those of a last `Softmax()` or
    `Activation("softmax")` layer after such values (Keras' all-convolutional head `Conv2D(n, 1)`,
    `GlobalAveragePooling2D()`, `Activation("softmax")`; `Dense(n)` then `Softmax()`), or its probabilities carried
    on (`CARRY_PROBABILITIES`); or those of a nested model (or TimeDistributed) that ends in such a chain and is
    not emitted linear itself (`_values_anew`), carried so: the tensors from that layer's to `output`, first to
    last; [] where they are not, and for an output that is the default activation's layer's own, which
    `logits_substitutes` emits."""
    chain = carried_from(output, CARRY_VALUES)
    if len(chain) > 1 and default_activation_emits_logits(chain[0].layer, loss):
        return chain
    probabilities = carried_from(output, CARRY_PROBABILITIES)
    softmax = probabilities[0]
    if softmax_layer_left_out(softmax.layer, loss) and len(softmax.inputs) == 1:
        logits = carried_from(softmax.inputs[0], CARRY_VALUES)
        if default_activation_emits_logits(logits[0].layer, loss):
            return logits + probabilities
    if _values_anew(softmax.layer, loss) is not None:  # a nested model whose own output is such a chain
        return probabilities
    return []


def logits_substitutes(graph: Functional, loss: Loss | None) -> dict[int, Layer]:
    """What `Functional.emit` computes instead for `loss`, by output position: an output's layer without its softmax
    (or its default activation) where `graph_layers` would emit it so (same rule, same reasons) for that output's
    own loss; nothing otherwise. By position, as one tensor may be listed twice, trained on logits at one position
    and on its values at another, as Keras' `Model(x, [y, y])` with a loss each.

    Raises:
        InvalidArgumentError: a softmax that the loss would apply reaches an output with its classes moved off the
            last axis, or through a layer that pads or adds noise to its probabilities
            (`check_carried_probabilities`).
    """
    substitutes = {}
    for position, (output, own) in enumerate(zip(graph.outputs, output_losses(graph, loss), strict=True)):
        logits = _logits_layer(output.layer, own)
        chain = carried_from(output, (*CARRY_PROBABILITIES, *SPOIL_PROBABILITIES))
        if logits is None and _carries_a_left_out_softmax([t.layer for t in chain], [t.shape for t in chain], own):
            logits = log_probabilities(output.layer)
        if logits is not None:
            substitutes[position] = logits
    return substitutes


def graph_layers(layers: Sequence[Layer], loss: Loss | None) -> list[Layer]:
    """The layers as the graphs emit them for `loss`.

    A loss that reads logits (`Loss.trains_on_logits`: the softmax cross-entropies, and binary cross-entropy with
    `from_logits=True`) gets them: the last layer is emitted without its activation when that is
      * a Dense's or a convolution's activation not given (`Dense(10)`, as KotlinDL's tutorial writes it, the TF
        RNN tutorial's `Dense(1)` under `BinaryCrossentropy(from_logits=True)`, or a per-position head
        `Conv1D(n, 1)`): their ReLU default would clamp the logits at 0, so that a class whose unit starts inactive
        never learns (a sigmoid's unit never goes below 0.5). An explicit `activation="relu"` stays; or
      * under softmax cross-entropy, a softmax: Keras' usual `Dense(10, activation="softmax")`, a convolution's
        (Keras' segmentation head `Conv2D(n, 1, activation="softmax")`: every layer whose forward is its activation
        of a linear map, `_LINEAR_THEN_ACTIVATION`), or a last `Softmax()` or `Activation("softmax")` layer, with
        "sparse_categorical_crossentropy". As in Keras,
        training sees the logits (the softmax is applied once), the `logits` output is the logits, and the
        exported `probabilities` output is the layer's own softmax, not a softmax of it.
    Such a layer left at its default activation is emitted linear also where the last layers only move or pool its
    values (Reshape, Flatten, Permute, the poolings: `logits_chains`), as the head `Conv2D(10, 1)` then
    `GlobalAveragePooling2D()`, whose logits are the pooled linear values, and under softmax cross-entropy where a
    last `Softmax()` or `Activation("softmax")` layer reads them (Keras' all-convolutional head, the same then
    `Activation("softmax")`; `Dense(10)` then `Softmax()`): the softmax layer is left to the loss, as a Dense's own
    softmax is, and the values it reads are the logits.
    Where the last layers carry the probabilities of such a softmax (given, or a softmax layer's) class by class to
    the output, keeping the classes the last axis (`CARRY_PROBABILITIES`: Reshape, Flatten, Permute, the
    poolings, UpSampling, Cropping, RepeatVector, Dropout; Keras' segmentation head
    `Conv2D(n, 1, activation="softmax")` then `Reshape((-1, n))` or `UpSampling2D(2)`), the last one is emitted
    followed by the log of its values renormalised over the classes and clipped to [1e-7, 1 - 1e-7]
    (`log_probabilities`): Keras' own cross-entropy of probabilities, whose softmax gives them back, so the
    softmax is applied once and the exported `logits` are those log-probabilities, its `probabilities` the
    output's values renormalised (the values themselves where they sum to 1, within the clip; `model(x)` gives the
    values, as Keras' does). Where such layers move the classes off the last axis (`Permute` of them, a Flatten
    merging them), the loss would read other values as the classes than the softmax's: refused
    (`check_carried_probabilities`); so are ZeroPadding, GaussianNoise and GaussianDropout after the softmax, whose
    values Keras' cross-entropy reads as no logits can give (`SPOIL_PROBABILITIES`).
    The rule reaches the layer whose values the last layer's are (`logits_path`): the layer a last
    `TimeDistributed` applies to each step (Keras' tagger head `TimeDistributed(Dense(n))`), and the last layer of
    a nested model of one output that is the last layer, at any depth; no other wrapper or merge.
    Every graph of a model (each engine's training and eval graphs, and the export) follows this rule
    (`logits_graph`, then `logits_substitutes`), so they all compute the same function. The layers themselves are
    not changed.

    Raises:
        InvalidArgumentError: a softmax that the loss would apply reaches the output with its classes moved off the
            last axis, or through a layer of `SPOIL_PROBABILITIES`.
    """
    layers = list(layers)
    logits = _logits_layer(layers[-1], loss)
    if logits is not None:
        _emit_linear_before_softmax(layers, len(layers) - 1, loss)
        layers[-1] = logits
        return layers
    head = first_carrying(layers, CARRY_VALUES)
    if head < len(layers) - 1 and default_activation_emits_logits(layers[head], loss):
        layers[head] = _logits_layer(layers[head], loss)  # type: ignore[assignment]
        return layers
    head = first_carrying(layers, (*CARRY_PROBABILITIES, *SPOIL_PROBABILITIES))
    carried = layers[head:]
    if len(carried) > 1 and _carries_a_left_out_softmax(carried, built_shapes(carried), loss):
        _emit_linear_before_softmax(layers, head, loss)
        layers[-1] = log_probabilities(layers[-1])
    return layers


def _emit_linear_before_softmax(layers: list[Layer], index: int, loss: Loss | None) -> None:
    """Where `layers[index]` is a softmax layer the loss applies (`softmax_layer_left_out`) that reads the values,
    moved or pooled, of a layer left at its default activation (`default_activation_emits_logits`), put that
    layer's linear copy in its place (`graph_layers`, as `logits_chain` does in a graph)."""
    if index == 0 or not softmax_layer_left_out(layers[index], loss):
        return
    head = first_carrying(layers[:index], CARRY_VALUES)
    if default_activation_emits_logits(layers[head], loss):
        layers[head] = _logits_layer(layers[head], loss)  # type: ignore[assignment]


def softmax_layer_left_out(layer: Layer, loss: Loss | None) -> bool:
    """Whether `layer` is a `Softmax()` or `Activation("softmax")` layer that the graphs leave to `loss`, a softmax
    cross-entropy (`_logits_layer`)."""
    return type(layer) in (SoftmaxLayer, Activation) and _logits_layer(layer, loss) is not None


def default_activation_emits_logits(layer: Layer, loss: Loss | None) -> bool:
    """Whether `layer`, last in a model, is emitted linear for `loss` because the activation of the Dense or
    convolution it ends in (itself, or through TimeDistributed or a nested model: `logits_path`) was not given
    (`activation_given`)."""
    return _logits_layer(layer, loss) is not None and not getattr(logits_path(layer)[-1], "activation_given", True)


def logits_path(last: Layer) -> list[Layer]:
    """`last` and the layers the logits rule (`graph_layers`) reaches through it, outermost first: the layer a
    TimeDistributed wraps, the layer whose values a nested model of one output gives (its output layer's, or
    those its output layers move or pool: `CARRY_VALUES`), and so on; the last one is the layer whose activation
    the rule reads. `[last]` for any other layer."""
    path = [last]
    while True:
        inner = _reached(path[-1])
        if inner is None:
            return path
        path.append(inner)


def _reached(layer: Layer) -> Layer | None:
    """The layer whose values `layer`'s are (per step): a TimeDistributed's, a nested model's of one output."""
    if isinstance(layer, TimeDistributed):
        return layer.layer
    if isinstance(layer, Functional) and len(layer.outputs) == 1:
        return carried_from(layer.outputs[0], CARRY_VALUES)[0].layer
    return None


def _called_anew(chain: Sequence[SymbolicTensor], loss: Loss | None) -> SymbolicTensor:
    """The last tensor of `chain` (`logits_chains`) computed anew: its first call by the layer's logits copy
    (`_logits_layer`; a nested model's by `_values_anew`), the others by copies of their layers, so that the graph
    emits them beside the calls as made (distinct layers: `Functional.emit` emits a layer's call once)."""
    first = chain[0]
    linear = default_activation_emits_logits(first.layer, loss)
    logits = _logits_layer(first.layer, loss) if linear else _values_anew(first.layer, loss)
    tensor = SymbolicTensor(first.shape, logits, first.call_index, first.inputs, first.training, first.output_index)
    for call in chain[1:]:
        tensor = SymbolicTensor(call.shape, copy.copy(call.layer), call.call_index, [tensor], call.training)
    return tensor


def _values_anew(layer: Layer, loss: Loss | None) -> Layer | None:
    """A copy of `layer`, a nested model of one output (or a TimeDistributed of one) that `loss` does not emit
    linear itself (`default_activation_emits_logits`), that computes its values as its `logits_graph` does, its
    default activations emitted linear and its softmax kept: a nested model ending in `Dense(n)` then `Softmax()`
    gives the softmax of the Dense's linear values, in `model(x)` too; None where `layer` is none such."""
    if loss is None or not loss.trains_on_logits or default_activation_emits_logits(layer, loss):
        return None
    if isinstance(layer, TimeDistributed):
        inner = _values_anew(layer.layer, loss)
        return None if inner is None else layer.emitting(inner)
    if isinstance(layer, Functional) and len(layer.outputs) == 1:
        emitted = logits_graph(layer, loss)
        return None if emitted is layer else _graph_on_logits(emitted, {})
    return None


def _carries_a_left_out_softmax(layers: Sequence[Layer], shapes: Sequence[Shape], loss: Loss | None) -> bool:
    """Whether `layers` (a layer, then the layers that carry its probabilities: `CARRY_PROBABILITIES`, or spoil
    them: `SPOIL_PROBABILITIES`; `shapes`, the per-example shape of each one's values) carry the values of a
    softmax the rule leaves out under softmax cross-entropy (a softmax given, not a default activation), so that the
    loss would apply a second softmax.

    Raises:
        InvalidArgumentError: they carry one with its classes moved off the last axis, or through a layer of
            `SPOIL_PROBABILITIES` (`check_carried_probabilities`).
    """
    if len(layers) < 2 or not isinstance(loss, SoftmaxCrossEntropyWithLogits):
        return False
    head = layers[0]
    if _logits_layer(head, loss) is None or default_activation_emits_logits(head, loss):
        return False
    check_carried_probabilities(layers, shapes, loss)
    return True


def _logits_layer(last: Layer, loss: Loss | None) -> Layer | None:
    """What the graphs emit in place of a model's last layer `last` under `loss` (`graph_layers`): a copy that
    shares the layer's name and weights (a Dense or a convolution: `_LINEAR_THEN_ACTIVATION`), with a linear
    activation (or a linear Activation layer for a Softmax layer; for a TimeDistributed or a nested model, a
    copy that emits such a copy of its own last layer, or its output computed anew: `logits_graph`); None where
    `last` is emitted as it is."""
    if loss is None or not loss.trains_on_logits:
        return None
    if isinstance(last, TimeDistributed):
        inner = _logits_layer(last.layer, loss)
        return None if inner is None else last.emitting(inner)
    if isinstance(last, Functional):
        if len(last.outputs) != 1:  # its call gives several tensors, which other layers may read
            return None
        emitted = logits_graph(last, loss)
        substitutes = logits_substitutes(emitted, loss)
        return _graph_on_logits(emitted, substitutes) if substitutes or emitted is not last else None
    activation = getattr(last, "activation", None)
    softmax_loss = isinstance(loss, SoftmaxCrossEntropyWithLogits)  # which applies the softmax a last layer has
    if type(last).emit in _LINEAR_THEN_ACTIVATION:
        default = not getattr(last, "activation_given", True)  # Dense's and the convolutions' flag
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
