"""What carries a head's values to a model's output, and how a loss on logits reads a softmax's probabilities so
carried: the layers that move or pool values (`CARRY_VALUES`) or carry probabilities (`CARRY_PROBABILITIES`),
those refused after a softmax (`SPOIL_PROBABILITIES`), the checks of such a chain and Keras' log(clip(p / sum(p)))
that the loss reads (`log_probabilities`). The logits rule (`_logits_rule.py`) decides where these apply."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from onnxtrain._loss_base import EPSILON
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    Cropping1D,
    Cropping2D,
    Cropping3D,
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
    Shape,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
    format_shape,
)
from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.layers._layout import channels_last
from onnxtrain.losses import Loss

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
CARRY_VALUES = _MOVERS + _AVERAGES + _MAXIMA
# Layers whose outputs hold, class by class, non-negative values of their input's (the classes being its last
# axis): those above, and repeated, cropped or dropped positions (Dropout in training zeros some values and scales
# the others; SpatialDropout* whole classes). A softmax's probabilities reach the output through any of them, and
# the loss reads them as Keras' cross-entropy of probabilities does, renormalised over the classes
# (`log_probabilities`).
CARRY_PROBABILITIES: tuple[type[Layer], ...] = (
    *CARRY_VALUES,
    *(UpSampling1D, UpSampling2D, UpSampling3D, Cropping1D, Cropping2D, Cropping3D, RepeatVector, Dropout),
)
# Layers after which Keras' cross-entropy of a softmax's probabilities is no softmax cross-entropy of any logits
# (`check_carried_probabilities`): refused, with why.
SPOIL_PROBABILITIES: dict[type[Layer], str] = {
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


def carries(layer: object, kinds: tuple[type[Layer], ...]) -> bool:
    """Whether `layer` is of one of `kinds`, with its class's forward (a subclass with its own may do anything)."""
    return any(isinstance(layer, kind) and type(layer).emit is kind.emit for kind in kinds)


def carried_from(output: SymbolicTensor, kinds: tuple[type[Layer], ...]) -> list[SymbolicTensor]:
    """The tensors from the one whose values `output`'s are, through calls of one input each by layers of `kinds`,
    to `output`, first to last: `[output]` where its layer is none of them."""
    chain = [output]
    while carries(chain[0].layer, kinds) and len(chain[0].inputs) == 1:
        chain.insert(0, chain[0].inputs[0])
    return chain


def first_carrying(layers: Sequence[Layer], kinds: tuple[type[Layer], ...]) -> int:
    """The index of the layer whose values the last of `layers` (a layer list, each reading the one before) gives
    through layers of `kinds`: the last index where the last layer is none of them."""
    first = len(layers) - 1
    while first > 0 and carries(layers[first], kinds):
        first -= 1
    return first


def built_shapes(layers: Sequence[Layer]) -> list[Shape]:
    """Each built layer's per-example output shape."""
    shapes = []
    for layer in layers:
        assert layer.output_shape is not None, "layers must be built"
        shapes.append(layer.output_shape)
    return shapes


def check_carried_probabilities(layers: Sequence[Layer], shapes: Sequence[Shape], loss: Loss) -> None:
    """Check that `layers` (a layer whose softmax the loss applies, then the layers that carry its probabilities
    to the output: `CARRY_PROBABILITIES`, or spoil them: `SPOIL_PROBABILITIES`; `shapes`, the per-example shape of
    each one's values) carry them as the loss can read them, Keras' cross-entropy of probabilities
    (`log_probabilities`).

    Raises:
        InvalidArgumentError: they carry them through a layer of `SPOIL_PROBABILITIES`, or with the classes moved
            off the last axis (`_keeps_the_classes_last`).
    """
    _refuse_spoiled_probabilities(layers, loss)
    _keeps_the_classes_last(layers, shapes, loss)


def _refuse_spoiled_probabilities(layers: Sequence[Layer], loss: Loss) -> None:
    """Refuse a layer of `SPOIL_PROBABILITIES` among those that carry the softmax of `layers[0]`.

    Raises:
        InvalidArgumentError: one is there, named with why the loss cannot read its values as Keras does.
    """
    for layer in layers[1:]:
        why = next((why for kind, why in SPOIL_PROBABILITIES.items() if carries(layer, (kind,))), None)
        if why is not None:
            head = layers[0]
            raise InvalidArgumentError(
                f"Loss {loss.name!r} reads the output of {type(layers[-1]).__name__} layer {layers[-1].name!r} as "
                f"the probabilities of the softmax of {type(head).__name__} layer {head.name!r}, as Keras' "
                f"cross-entropy of probabilities does, but {type(layer).__name__} layer {layer.name!r} after that "
                f"softmax {why}."
            )


def _keeps_the_classes_last(layers: Sequence[Layer], shapes: Sequence[Shape], loss: Loss) -> None:
    """Check that `layers` (`check_carried_probabilities`') keep the softmax's classes, the last axis of the first
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


def log_probabilities(last: Layer) -> Layer:
    """A copy of `last` (sharing its name) that emits its values, probabilities carried class by class
    (`CARRY_PROBABILITIES`), as logits whose softmax gives them back renormalised over the classes: Keras'
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
