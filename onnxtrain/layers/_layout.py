"""Where a value's channels sit in the emitted graph: Keras' channels-last shapes, ONNX's channels-first ops.

Layers describe shapes as Keras does, channels last: `(N, H, W, C)`. ONNX's Conv, pooling and normalization ops
want channels first: `(N, C, H, W)`. A layer that computes channels-first reads its input through
`channels_first(builder, x, rank)` (one Transpose, emitted once per value) and marks its output with
`mark_channels_first`, so the next such layer reads it with no Transpose at all: a CNN has one Transpose after the
input and one before Flatten, not two per layer. A multi-input layer (the merges) reads a list of values:
`emit_multi_input_layer` converts each the same way.

Every other layer, custom ones included, receives channels-last values: `emit_layer` converts a channels-first
input back before calling a layer whose class does not set `accepts_channels_first = True`, and the model's
outputs are converted back too. A layer that sets it must handle both layouts (`is_channels_first`).
"""

from __future__ import annotations

from typing import Any, Protocol

from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._shapes import Shape


class Layer(Protocol):
    """What the emitting functions read of a `onnxtrain.layers.Layer` (which imports this module)."""

    name: str | None
    input_shape: Shape | None
    input_shapes: list[Shape] | None

    def emit(self, builder: GraphBuilder, x: Any) -> str: ...


CHANNELS_FIRST = "channels_first"


def is_channels_first(builder: GraphBuilder, x: str) -> bool:
    """Whether value `x` holds its channels at axis 1 (else it is in Keras' channels-last order)."""
    return builder.layouts.get(x) == CHANNELS_FIRST


def mark_channels_first(builder: GraphBuilder, x: str) -> str:
    """Record that `x` holds its channels at axis 1; returns `x`."""
    builder.layouts[x] = CHANNELS_FIRST
    return x


def same_layout(builder: GraphBuilder, source: str, x: str) -> str:
    """Give `x` the layout of `source` (for elementwise layers that accept either); returns `x`."""
    if is_channels_first(builder, source):
        mark_channels_first(builder, x)
    return x


def channels_first(builder: GraphBuilder, x: str, rank: int) -> str:
    """`x` (rank `rank`, batch included) with its channels at axis 1: `x` itself or one cached Transpose."""
    if is_channels_first(builder, x) or rank <= 2:
        return x
    perm = [0, rank - 1, *range(1, rank - 1)]
    moved = builder.shared(f"channels_first:{x}", lambda: builder.node("Transpose", [x], "channels_first", perm=perm))
    return mark_channels_first(builder, moved)


def channels_last(builder: GraphBuilder, x: str, rank: int) -> str:
    """`x` (rank `rank`, batch included) in Keras' channels-last order: `x` itself or one cached Transpose."""
    if not is_channels_first(builder, x) or rank <= 2:
        return x
    perm = [0, *range(2, rank), 1]
    return builder.shared(f"channels_last:{x}", lambda: builder.node("Transpose", [x], "channels_last", perm=perm))


def emit_layer(builder: GraphBuilder, layer: Layer, x: str) -> str:
    """`layer.emit` inside the layer's name scope, its input in the layout the layer accepts."""
    if not getattr(layer, "accepts_channels_first", False):
        assert layer.input_shape is not None, "layers must be built"
        x = channels_last(builder, x, len(layer.input_shape) + 1)
    with builder.scope(layer.name or type(layer).__name__.lower()):
        return layer.emit(builder, x)


def emit_multi_input_layer(builder: GraphBuilder, layer: Layer, xs: list[str]) -> str:
    """`emit_layer` for a multi-input layer (`layer.multi_input`): `layer.emit(builder, xs)` in the layer's scope,
    every input channels-last unless the layer accepts channels-first values (then it sees them as they are)."""
    if not getattr(layer, "accepts_channels_first", False):
        assert layer.input_shapes is not None, "layers must be built"
        xs = [channels_last(builder, x, len(shape) + 1) for x, shape in zip(xs, layer.input_shapes, strict=True)]
    with builder.scope(layer.name or type(layer).__name__.lower()):
        return layer.emit(builder, xs)
