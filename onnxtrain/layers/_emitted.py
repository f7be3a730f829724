"""What a layer's `emit` returned, checked where the Functional API emits each call (`_masking.emit_call`): the name
of a value of the graph, and, for a layer of one's own, a value of the shape its `compute_output_shape` gave.

A mistake in a custom layer's `emit` otherwise surfaces far from it: as a loss "of unknown shape", or a TypeError
inside onnx. The shape is checked once per layer (its first emission), by ONNX shape inference over the graph so far
(`GraphBuilder.inferred_shape`, weights by their types only), and only where inference gives a rank or a dimension:
onnxtrain's own layers are tested instead, and pay nothing.
"""

from __future__ import annotations

from onnxtrain.errors import InvalidTypeError, ShapeError
from onnxtrain.graph import Dim, GraphBuilder
from onnxtrain.layers._layer import Layer, describe
from onnxtrain.layers._layout import is_channels_first
from onnxtrain.layers._shapes import format_shape

_CHECKED = "_emitted_shape_checked"  # in a custom layer's __dict__ once its first emission's shape was checked


def check_emitted(builder: GraphBuilder, layer: Layer, y: object) -> str:
    """`y`, what `layer.emit` (or `emit_masked`) returned, once checked.

    Raises:
        InvalidTypeError: `y` is not the name of a value of the graph (None: the emit returned nothing).
        ShapeError: a custom layer's value has another rank, or another known dimension, than its
            `compute_output_shape` says.
    """
    if not builder.has_value(y):
        if y is None:
            received = "None (emit returned nothing)"
        else:
            received = f"{y!r}, which no node computes" if isinstance(y, str) else f"{y!r} ({type(y).__name__})"
        raise InvalidTypeError(
            f"{describe(layer)}: emit(builder, x) must return the name (a str) of the value it computes, e.g. "
            f"`return builder.node('Relu', [x])`, or x itself. Received: {received}"
        )
    assert isinstance(y, str)
    if not type(layer).__module__.startswith("onnxtrain.") and not layer.__dict__.get(_CHECKED):
        _check_shape(builder, layer, y)
        layer.__dict__[_CHECKED] = True
    return y


def _check_shape(builder: GraphBuilder, layer: Layer, y: str) -> None:
    said = layer.output_shape
    inferred = builder.inferred_shape(y)
    if said is None or inferred is None:
        return
    expected: list[int | None] = [None, *said]
    first = is_channels_first(builder, y) and len(expected) > 2  # its channels at axis 1 (see _layout.py)
    if first:
        expected = [expected[0], expected[-1], *expected[1:-1]]
    clash = len(inferred) != len(expected) or any(
        isinstance(found, int) and isinstance(wanted, int) and found != wanted
        for found, wanted in zip(inferred[1:], expected[1:], strict=True)
    )
    if clash:
        raise ShapeError(
            f"{describe(layer)} emits a value of shape {_shown(inferred)}"
            f"{' (channels first, as it marks it)' if first else ''}, and its compute_output_shape says "
            f"{format_shape(said)}: the layers after it were built for that shape. Make "
            "compute_output_shape(input_shape) return the shape emit computes, per example."
        )


def _shown(dims: list[Dim]) -> str:
    if not dims:
        return "() (a scalar, without the batch axis)"
    return "[" + ", ".join(["None", *(str(d) if isinstance(d, int) else "?" for d in dims[1:])]) + "]"
