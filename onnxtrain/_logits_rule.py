"""The logits rule: which output layers the graphs emit without their activation, so a loss on logits reads them
(`graph_layers`, `logits_graph`), the substitutes that compute them (`logits_substitutes`), and the loss each
output trains on."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from onnxtrain import activations
from onnxtrain._functional_calls import topological_calls
from onnxtrain._loss_base import EPSILON
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.functional import Functional
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    Activation,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    Conv1D,
    Conv2DTranspose,
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    Layer,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    Permute,
    RepeatVector,
    Reshape,
    SeparableConv2D,
    Shape,
    TimeDistributed,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
    format_shape,
)
from onnxtrain.layers import Softmax as SoftmaxLayer
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.layers._layout import channels_last
from onnxtrain.losses import Loss, SoftmaxCrossEntropyWithLogits
from onnxtrain.multi_output import OutputLosses

# The forwards that end in the layer's `activation` argument applied to a linear map (Dense; every convolution:
# Conv1D/2D/3D share one, the transposed ones another), so that a copy with a linear activation gives that map,
# the logits. Read off `type(layer).emit`: a subclass with its own forward may do anything after it.
_LINEAR_THEN_ACTIVATION = frozenset(
    {Dense.emit, Conv1D.emit, Conv2DTranspose.emit, DepthwiseConv2D.emit, SeparableConv2D.emit}
)

# Layers whose outputs are their input's values moved, or pooled over positions (channel by channel, the classes
# being the channels): a default activation's logits reach the output through any of them (`logits_chains`).
_MOVERS: tuple[type[Layer], ...] = (Reshape, Flatten, Permute)
_AVERAGES: tuple[type[Layer], ...] = (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
)
_MAXIMA: tuple[type[Layer], ...] = (
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
)
_CARRY_VALUES = _MOVERS + _AVERAGES + _MAXIMA
# Layers whose outputs hold, class by class, non-negative values of their input's (the classes being its last
# axis): those above, and repeated, cropped or dropped positions (Dropout in training zeros some values and scales
# the others; SpatialDropout* whole classes). A softmax's probabilities reach the output through any of them, and
# the loss reads them as Keras' cross-entropy of probabilities does, renormalised over the classes
# (`_log_probabilities`).
_CARRY_PROBABILITIES: tuple[type[Layer], ...] = (
    *_CARRY_VALUES,
    *(UpSampling1D, UpSampling2D, UpSampling3D, Cropping1D, Cropping2D, Cropping3D, RepeatVector, Dropout),
)
# Layers after which Keras' cross-entropy of a softmax's probabilities is no softmax cross-entropy of any logits
# (`_refuse_spoiled_probabilities`): refused, with why.
_SPOIL_PROBABILITIES: dict[type[Layer], str] = {
    **dict.fromkeys(
        (ZeroPadding1D, ZeroPadding2D, ZeroPadding3D),
        "pads them with zeros: a padded position's classes sum to 0, whose cross-entropy Keras computes as NaN (it "
        "divides them by their sum). Pad before the layer whose softmax it is, or crop the padding off before the "
        "output",
    ),
    **dict.fromkeys(
        (GaussianNoise, GaussianDropout),
        "adds noise to them in training (or multiplies them by it), which can make them negative: Keras' "
        "cross-entropy of such values (renormalised, then clipped to [1e-7, 1 - 1e-7]) is no softmax "
        "cross-entropy of any logits. Apply the noise before the layer whose softmax it is",
    ),
}


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
    emit linear for `loss` (`default_activation_emits_logits`), moved or pooled on their way (`_CARRY_VALUES`:
    Reshape, Flatten, Permute, the poolings), or, under softmax cross-entropy, those of a last `Softmax()` or
    `Activation("softmax")` layer after such values (Keras' all-convolutional head `Conv2D(n, 1)`,
    `GlobalAveragePooling2D()`, `Activation("softmax")`; `Dense(n)` then `Softmax()`), or its probabilities carried
    on (`_CARRY_PROBABILITIES`); or those of a nested model (or TimeDistributed) that ends in such a chain and is
    not emitted linear itself (`_values_anew`), carried so: the tensors from that layer's to `output`, first to
    last; [] where they are not, and for an output that is the default activation's layer's own, which
    `logits_substitutes` emits."""
    chain = _carried_from(output, _CARRY_VALUES)
    if len(chain) > 1 and default_activation_emits_logits(chain[0].layer, loss):
        return chain
    probabilities = _carried_from(output, _CARRY_PROBABILITIES)
    softmax = probabilities[0]
    if _softmax_layer_left_out(softmax.layer, loss) and len(softmax.inputs) == 1:
        logits = _carried_from(softmax.inputs[0], _CARRY_VALUES)
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
            last axis (`_keeps_the_classes_last`), or through a layer that pads or adds noise to its probabilities
            (`_refuse_spoiled_probabilities`).
    """
    substitutes = {}
    for position, (output, own) in enumerate(zip(graph.outputs, output_losses(graph, loss), strict=True)):
        logits = _logits_layer(output.layer, own)
        chain = _carried_from(output, (*_CARRY_PROBABILITIES, *_SPOIL_PROBABILITIES))
        if logits is None and _carries_a_left_out_softmax([t.layer for t in chain], [t.shape for t in chain], own):
            logits = _log_probabilities(output.layer)
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
    the output, keeping the classes the last axis (`_CARRY_PROBABILITIES`: Reshape, Flatten, Permute, the
    poolings, UpSampling, Cropping, RepeatVector, Dropout; Keras' segmentation head
    `Conv2D(n, 1, activation="softmax")` then `Reshape((-1, n))` or `UpSampling2D(2)`), the last one is emitted
    followed by the log of its values renormalised over the classes and clipped to [1e-7, 1 - 1e-7]
    (`_log_probabilities`): Keras' own cross-entropy of probabilities, whose softmax gives them back, so the
    softmax is applied once and the exported `logits` are those log-probabilities, its `probabilities` the
    output's values renormalised (the values themselves where they sum to 1, within the clip; `model(x)` gives the
    values, as Keras' does). Where such layers move the classes off the last axis (`Permute` of them, a Flatten
    merging them), the loss would read other values as the classes than the softmax's: refused
    (`_keeps_the_classes_last`); so are ZeroPadding, GaussianNoise and GaussianDropout after the softmax, whose
    values Keras' cross-entropy reads as no logits can give (`_SPOIL_PROBABILITIES`).
    The rule reaches the layer whose values the last layer's are (`logits_path`): the layer a last
    `TimeDistributed` applies to each step (Keras' tagger head `TimeDistributed(Dense(n))`), and the last layer of
    a nested model of one output that is the last layer, at any depth; no other wrapper or merge.
    Every graph of a model (each engine's training and eval graphs, and the export) follows this rule
    (`logits_graph`, then `logits_substitutes`), so they all compute the same function. The layers themselves are
    not changed.

    Raises:
        InvalidArgumentError: a softmax that the loss would apply reaches the output with its classes moved off the
            last axis, or through a layer of `_SPOIL_PROBABILITIES`.
    """
    layers = list(layers)
    logits = _logits_layer(layers[-1], loss)
    if logits is not None:
        _emit_linear_before_softmax(layers, len(layers) - 1, loss)
        layers[-1] = logits
        return layers
    head = _first_carrying(layers, _CARRY_VALUES)
    if head < len(layers) - 1 and default_activation_emits_logits(layers[head], loss):
        layers[head] = _logits_layer(layers[head], loss)  # type: ignore[assignment]
        return layers
    head = _first_carrying(layers, (*_CARRY_PROBABILITIES, *_SPOIL_PROBABILITIES))
    carried = layers[head:]
    if len(carried) > 1 and _carries_a_left_out_softmax(carried, _built_shapes(carried), loss):
        _emit_linear_before_softmax(layers, head, loss)
        layers[-1] = _log_probabilities(layers[-1])
    return layers


def _emit_linear_before_softmax(layers: list[Layer], index: int, loss: Loss | None) -> None:
    """Where `layers[index]` is a softmax layer the loss applies (`_softmax_layer_left_out`) that reads the values,
    moved or pooled, of a layer left at its default activation (`default_activation_emits_logits`), put that
    layer's linear copy in its place (`graph_layers`, as `logits_chain` does in a graph)."""
    if index == 0 or not _softmax_layer_left_out(layers[index], loss):
        return
    head = _first_carrying(layers[:index], _CARRY_VALUES)
    if default_activation_emits_logits(layers[head], loss):
        layers[head] = _logits_layer(layers[head], loss)  # type: ignore[assignment]


def _softmax_layer_left_out(layer: Layer, loss: Loss | None) -> bool:
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
    those its output layers move or pool: `_CARRY_VALUES`), and so on; the last one is the layer whose activation
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
        return _carried_from(layer.outputs[0], _CARRY_VALUES)[0].layer
    return None


def _carries(layer: object, kinds: tuple[type[Layer], ...]) -> bool:
    """Whether `layer` is of one of `kinds`, with its class's forward (a subclass with its own may do anything)."""
    return any(isinstance(layer, kind) and type(layer).emit is kind.emit for kind in kinds)


def _carried_from(output: SymbolicTensor, kinds: tuple[type[Layer], ...]) -> list[SymbolicTensor]:
    """The tensors from the one whose values `output`'s are, through calls of one input each by layers of `kinds`,
    to `output`, first to last: `[output]` where its layer is none of them."""
    chain = [output]
    while _carries(chain[0].layer, kinds) and len(chain[0].inputs) == 1:
        chain.insert(0, chain[0].inputs[0])
    return chain


def _first_carrying(layers: Sequence[Layer], kinds: tuple[type[Layer], ...]) -> int:
    """The index of the layer whose values the last of `layers` (a layer list, each reading the one before) gives
    through layers of `kinds`: the last index where the last layer is none of them."""
    first = len(layers) - 1
    while first > 0 and _carries(layers[first], kinds):
        first -= 1
    return first


def _built_shapes(layers: Sequence[Layer]) -> list[Shape]:
    """Each built layer's per-example output shape."""
    shapes = []
    for layer in layers:
        assert layer.output_shape is not None, "layers must be built"
        shapes.append(layer.output_shape)
    return shapes


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
    """Whether `layers` (a layer, then the layers that carry its probabilities: `_CARRY_PROBABILITIES`, or spoil
    them: `_SPOIL_PROBABILITIES`; `shapes`, the per-example shape of each one's values) carry the values of a
    softmax the rule leaves out under softmax cross-entropy (a softmax given, not a default activation), so that the
    loss would apply a second softmax.

    Raises:
        InvalidArgumentError: they carry one with its classes moved off the last axis (`_keeps_the_classes_last`),
            or through a layer of `_SPOIL_PROBABILITIES`.
    """
    if len(layers) < 2 or not isinstance(loss, SoftmaxCrossEntropyWithLogits):
        return False
    head = layers[0]
    if _logits_layer(head, loss) is None or default_activation_emits_logits(head, loss):
        return False
    _refuse_spoiled_probabilities(layers, loss)
    _keeps_the_classes_last(layers, shapes, loss)
    return True


def _refuse_spoiled_probabilities(layers: Sequence[Layer], loss: Loss) -> None:
    """Refuse a layer of `_SPOIL_PROBABILITIES` among those that carry the softmax of `layers[0]`.

    Raises:
        InvalidArgumentError: one is there, named with why the loss cannot read its values as Keras does.
    """
    for layer in layers[1:]:
        why = next((why for kind, why in _SPOIL_PROBABILITIES.items() if _carries(layer, (kind,))), None)
        if why is not None:
            head = layers[0]
            raise InvalidArgumentError(
                f"Loss {loss.name!r} reads the output of {type(layers[-1]).__name__} layer {layers[-1].name!r} as "
                f"the probabilities of the softmax of {type(head).__name__} layer {head.name!r}, as Keras' "
                f"cross-entropy of probabilities does, but {type(layer).__name__} layer {layer.name!r} after that "
                f"softmax {why}."
            )


def _keeps_the_classes_last(layers: Sequence[Layer], shapes: Sequence[Shape], loss: Loss) -> None:
    """Check that `layers` (`_carries_a_left_out_softmax`'s) keep the softmax's classes, the last axis of the first
    one's values, whole and last: a Permute may move them and another move them back; a Reshape, Flatten or pooling
    keeps them where they are last in its input and its output ends in them (row-major, each run of that many
    values stays one run: (H, W, C) -> (H*W, C)).

    A softmax over another axis than the one the loss reads as the classes is refused, as nothing the loss could
    compute means the softmax's classes: Keras renormalises the values over the last axis, and the loss here
    applies its softmax over it; either trains the model for other classes than its softmax's.

    Raises:
        InvalidArgumentError: they move the classes off the last axis, merge them with other axes or pool over them.
    """
    axis: int | None = len(shapes[0]) - 1
    for layer, given, made in zip(layers[1:], shapes, shapes[1:], strict=False):
        if axis is None:
            break
        if isinstance(layer, Permute):  # its dims number the axes from 1, the batch being 0
            axis = list(layer.dims).index(axis + 1)
        elif axis == len(given) - 1 and given[-1] == made[-1]:
            axis = len(made) - 1
        else:
            axis = None
    last = len(shapes[-1]) - 1
    if axis == last:
        return
    head, output = layers[0], layers[-1]
    between = ", ".join(f"{type(layer).__name__} {layer.name!r}" for layer in layers[1:])
    where = (
        "merge that axis with others or pool over it"
        if axis is None
        else f"move that axis to axis {axis + 1} (the batch axis being 0)"
    )
    raise InvalidArgumentError(
        f"Loss {loss.name!r} reads the classes on the last axis of output {output.name!r} "
        f"{format_shape(shapes[-1])}, but the softmax of {type(head).__name__} layer {head.name!r} ran over the last "
        f"axis of its values {format_shape(shapes[0])}, and the layers after it ({between}) {where}: the loss would "
        "read other values as an example's classes than the ones the softmax normalised, whatever it computed "
        "(Keras renormalises them over the last axis and trains on that). Keep the classes on the last axis: move "
        "the axes before that layer, or give labels laid out as its values are (the classes last) and drop the "
        "layers that move them; for a softmax over the moved axes, end in a Softmax() layer after them."
    )


def _log_probabilities(last: Layer) -> Layer:
    """A copy of `last` (sharing its name) that emits its values, probabilities carried class by class
    (`_CARRY_PROBABILITIES`), as logits whose softmax gives them back renormalised over the classes: Keras'
    cross-entropy of probabilities, log(clip(p / sum(p), 1e-7, 1 - 1e-7)) over the last axis, so the loss's
    softmax cross-entropy equals Keras' (with Keras' gradient) wherever its clip does not bind. A position whose
    values sum to 0 (every class dropped by a Dropout in training), which Keras computes as NaN (0 / 0), reads
    0 instead: the clip's floor for every class."""
    emitted = copy.copy(last)
    own_emit = type(last).emit

    def emit(builder: GraphBuilder, x: str) -> str:
        assert emitted.output_shape is not None, "layers must be built"
        # the classes last: a pooling's output may hold them at axis 1 (`layers/_layout.py`)
        values = channels_last(builder, own_emit(emitted, builder, x), len(emitted.output_shape) + 1)
        total = builder.reduce("ReduceSum", values, [-1], keepdims=True, hint="class_sum")
        positive = builder.node("Greater", [total, builder.constant(0.0, "zero")], hint="positive_sum")
        divisor = builder.node("Where", [positive, total, builder.constant(1.0, "one")], hint="class_sum_or_one")
        normalised = builder.node("Div", [values, divisor], hint="normalised_probabilities")
        low, high = builder.constant(EPSILON, "epsilon"), builder.constant(1.0 - EPSILON, "one_minus_epsilon")
        clipped = builder.node("Clip", [normalised, low, high], hint="clipped_probabilities")
        return builder.node("Log", [clipped], hint="log_probabilities")

    emitted.__dict__["emit"] = emit  # on the copy alone, as `_graph_on_logits` does
    return emitted


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
