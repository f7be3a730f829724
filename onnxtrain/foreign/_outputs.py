"""A foreign graph of several outputs in a model: the `OnnxLayer` packs them into one value (a layer has one
output), and one `OnnxOutput` per output takes its own back, so that each is a model output with its own loss.

`from_onnx` builds `Input -> OnnxLayer(pack_outputs=True) -> [OnnxOutput, OnnxOutput, ...]`; the export names
each output as the file does (`onnxtrain.foreign._export_names`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape


def packed_shape(shapes: Sequence[Shape]) -> Shape:
    """The per-example shape of the outputs of `shapes` flattened and concatenated: [sum of their sizes]."""
    return (sum(math.prod(shape) for shape in shapes),)


def pack(builder: GraphBuilder, values: Sequence[str]) -> str:
    """`values` ([batch, ...] each) flattened to [batch, size] and concatenated along axis 1."""
    flat = [builder.node("Flatten", [value], hint="output_flat", axis=1) for value in values]
    return builder.node("Concat", flat, hint="outputs_packed", axis=1)


class OnnxOutput(Layer):
    """One output of an `OnnxLayer` that packs several (`pack_outputs=True`): the columns [start, start + size)
    of the packed value, in the output's own shape.

    Args:
        start: where the output's values begin in the packed value.
        shape: the output's per-example shape.
        name: the layer's name, which a model of several outputs names the output by (its loss, its metrics).
    """

    def __init__(self, start: int, shape: Sequence[int], name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidArgumentError(f"OnnxOutput(start=...) expects an int >= 0. Received: start={start!r}")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise InvalidArgumentError(f"OnnxOutput(shape=...) expects positive ints. Received: shape={shape!r}")
        self.start = start
        self.output_dims: Shape = tuple(shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        end = self.start + math.prod(self.output_dims)
        if len(input_shape) != 1 or input_shape[0] < end:
            raise ShapeError(
                f"{describe(self)} takes columns [{self.start}, {end}) of a packed [None, width] value. Received: "
                f"input shape {format_shape(input_shape)}"
            )
        return self.output_dims

    def emit(self, builder: GraphBuilder, x: str) -> str:
        end = self.start + math.prod(self.output_dims)
        columns = builder.node(
            "Slice", [x, builder.ints([self.start], "starts"), builder.ints([end], "ends"), builder.ints([1], "axes")]
        )
        if len(self.output_dims) == 1:
            return columns
        return builder.node("Reshape", [columns, builder.ints([0, *self.output_dims], "shape")], hint="output")

    def get_config(self) -> dict[str, Any]:
        return {"start": self.start, "shape": list(self.output_dims), **super().get_config()}
