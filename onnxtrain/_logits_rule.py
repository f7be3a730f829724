"""The logits rule: which output layers the graphs emit without their activation, so a loss on logits reads them
(`graph_layers`), the substitutes that compute them (`logits_substitutes`), and the loss each output trains on."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from onnxtrain import activations
from onnxtrain._loss_base import EPSILON
from onnxtrain.errors import UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    Activation,
    Conv1D,
    Conv2DTranspose,
    Dense,
    DepthwiseConv2D,
    Flatten,
    Layer,
    Permute,
    Reshape,
    SeparableConv2D,
    TimeDistributed,
)
from onnxtrain.layers import Softmax as SoftmaxLayer
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


def logits_substitutes(graph: Functional, loss: Loss | None) -> dict[int, Layer]:
    """What `Functional.emit` computes instead for `loss`, by output position: an output's layer without its softmax
    (or its default activation) where `graph_layers` would emit it so (same rule, same reasons) for that output's
    own loss; nothing otherwise. By position, as one tensor may be listed twice, trained on logits at one position
    and on its values at another, as Keras' `Model(x, [y, y])` with a loss each."""
    substitutes = {}
    for position, (output, own) in enumerate(zip(graph.outputs, output_losses(graph, loss), strict=True)):
        logits = _logits_layer(output.layer, own)
        if logits is None and _moves_a_left_out_softmax(_moved_from(output), own):
            logits = _log_probabilities(output.layer)
        if logits is not None:
            substitutes[position] = logits
    return substitutes


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
    A last Reshape, Flatten or Permute (or a chain of them) that only moves the values of such a softmax, keeping
    the classes the last axis (Keras' segmentation head `Conv2D(n, 1, activation="softmax")` then
    `Reshape((-1, n))`), is emitted followed by the log of its values clipped to [1e-7, 1 - 1e-7]
    (`_log_probabilities`): Keras' own cross-entropy of probabilities, whose softmax gives them back, so the
    softmax is applied once and the exported `probabilities` are the layer's (within the clip).
    The rule reaches the layer whose values the last layer's are (`logits_path`): the layer a last
    `TimeDistributed` applies to each step (Keras' tagger head `TimeDistributed(Dense(n))`), and the last layer of
    a nested model of one output that is the last layer, at any depth; no other wrapper or merge.
    Every graph of a model (each engine's training and eval graphs, and the export) goes through here, so they
    all compute the same function. The layer itself is not changed.
    """
    layers = list(layers)
    logits = _logits_layer(layers[-1], loss)
    if logits is None:
        moved = len(layers) - 1
        while moved > 0 and _moves_the_classes_along(layers[moved]):
            moved -= 1
        if _moves_a_left_out_softmax(layers[moved:], loss):
            logits = _log_probabilities(layers[-1])
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


# Layers whose outputs are their inputs' values moved: after a softmax over the classes (the last axis) they
# keep the probabilities, as long as the classes stay the last axis (`_moves_the_classes_along`).
_MOVERS = (Reshape, Flatten, Permute)


def _moves_the_classes_along(layer: object) -> bool:
    """Whether `layer` only moves values (`_MOVERS`) and keeps each example's last axis whole and last: a Permute
    that leaves the last axis in place, or a Reshape or Flatten whose output ends in the input's last dimension
    (row-major, each run of that many values stays one run: (H, W, C) -> (H*W, C))."""
    if isinstance(layer, Permute):
        return layer.dims[-1] == len(layer.dims)
    if isinstance(layer, Reshape | Flatten):
        given, made = layer.input_shape, layer.output_shape
        return bool(given) and bool(made) and given[-1] == made[-1]  # type: ignore[index]
    return False


def _moved_from(output: object) -> list[Layer]:
    """The layers from the one whose values the graph's `output` tensor moves (through `_moves_the_classes_along`
    calls of one input each) to the output's own, innermost first; `[the output's layer]` where it moves none."""
    chain: list[Layer] = []
    tensor = output
    while True:
        layer = getattr(tensor, "layer", None)
        inputs = getattr(tensor, "inputs", None) or []
        chain.insert(0, layer)  # type: ignore[arg-type]
        if not (_moves_the_classes_along(layer) and len(inputs) == 1):
            return chain
        tensor = inputs[0]


def _moves_a_left_out_softmax(chain: Sequence[Layer], loss: Loss | None) -> bool:
    """Whether `chain` (`_moved_from`'s: a layer, then the layers that move its values, keeping the classes last)
    moves the values of a softmax the rule leaves out under softmax cross-entropy (a softmax given explicitly, not
    a Dense default), so that the loss would apply a second softmax."""
    if len(chain) < 2 or not isinstance(loss, SoftmaxCrossEntropyWithLogits):
        return False
    inner = chain[0]
    return (
        isinstance(inner, Layer)
        and _logits_layer(inner, loss) is not None
        and (not default_activation_emits_logits(inner, loss))
    )


def _log_probabilities(mover: Layer) -> Layer:
    """A copy of `mover` (sharing its name) that emits its values, probabilities, as logits whose softmax gives
    them back: log(clip(p, 1e-7, 1 - 1e-7)), Keras' categorical cross-entropy of probabilities (which clips them
    so), so the loss's softmax cross-entropy equals Keras' wherever its clip does not bind, with Keras' gradient."""
    emitted = copy.copy(mover)
    own_emit = type(mover).emit

    def emit(builder: GraphBuilder, x: str) -> str:
        moved = own_emit(emitted, builder, x)
        low, high = builder.constant(EPSILON, "epsilon"), builder.constant(1.0 - EPSILON, "one_minus_epsilon")
        clipped = builder.node("Clip", [moved, low, high], hint="clipped_probabilities")
        return builder.node("Log", [clipped], hint="log_probabilities")

    emitted.__dict__["emit"] = emit  # on the copy alone, as `_graph_on_logits` does
    return emitted


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
