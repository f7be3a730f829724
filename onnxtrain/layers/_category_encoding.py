"""CategoryEncoding (Keras' layer: integer ids -> one-hot, multi-hot or count vectors), and the encoding of integer
indices that the lookup, discretization and hashing layers share (Keras' `encode_categorical_inputs`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from onnxtrain.errors import InvalidArgumentError, ShapeError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")


def check_output_mode(owner: str, value: object, allowed: tuple[str, ...] = OUTPUT_MODES) -> str:
    """`value`, one of `allowed` (Keras' old spelling "binary" is "multi_hot")."""
    mode = "multi_hot" if value == "binary" and "multi_hot" in allowed else value
    if not isinstance(mode, str) or mode not in allowed:
        choices = ", ".join(repr(m) for m in allowed)
        raise InvalidArgumentError(
            f"{owner}(output_mode=...) expects one of {choices}. Received: output_mode={value!r}"
        )
    return mode


def integer_values(builder: GraphBuilder, x: str) -> str:
    """`x` as int64: an int64 model input as it is, anything else cast (a float is truncated toward zero)."""
    if builder.input_type(x) == TensorProto.INT64:
        return x
    return builder.node("Cast", [x], hint="ids", to=TensorProto.INT64)


def encoded_shape(layer: Layer, input_shape: Shape, depth: int, output_mode: str) -> Shape:
    """Keras' output shape of encoding ids of per-example shape `input_shape` into `depth` values."""
    if output_mode == "int":
        return input_shape
    if not input_shape:
        raise ShapeError(f"{describe(layer)} expects examples with at least one axis. Received: input shape ()")
    if output_mode == "one_hot":
        return (*input_shape[:-1], depth) if input_shape[-1] == 1 else (*input_shape, depth)
    if output_mode == "count" and len(input_shape) != 1:  # Keras' count sums axis 1: right for (N, ids) only
        raise ShapeError(
            f"{describe(layer)} with output_mode='count' counts one axis of ids per example, (N, ids) -> "
            f"(N, {depth}). Received: input shape {format_shape(input_shape)}. Flatten or reshape the ids first."
        )
    return (*input_shape[:-1], depth)  # multi_hot: over the last axis


def encode(builder: GraphBuilder, indices: str, depth: int, output_mode: str, input_shape: Shape) -> str:
    """float32 encoding of int64 `indices` (N, *input_shape) into `depth` values as Keras' `output_mode` does;
    an index outside [0, depth) sets no value (Keras' masked ids; Keras asserts on others where it can)."""
    if output_mode == "int":
        return builder.node("Cast", [indices], hint="indices", to=TensorProto.FLOAT)
    if output_mode == "one_hot" and input_shape[-1] == 1:
        indices = builder.node("Squeeze", [indices, builder.ints([-1], "last_axis")], hint="ids")
    positions = builder.constant(np.arange(depth, dtype=np.int64), "positions", np.int64)
    unsqueezed = builder.node("Unsqueeze", [indices, builder.ints([-1], "new_axis")], hint="ids")
    hot = builder.node("Cast", [builder.node("Equal", [unsqueezed, positions])], hint="one_hot", to=TensorProto.FLOAT)
    if output_mode == "one_hot":
        return hot
    reduce = "ReduceMax" if output_mode == "multi_hot" else "ReduceSum"
    return builder.reduce(reduce, hot, [len(input_shape)], False, output_mode)  # the ids' last axis


class CategoryEncoding(Layer):
    """Integer ids in [0, num_tokens) -> vectors of num_tokens values (Keras' layer; no weights).

    "one_hot": each id becomes a vector, (N, ..., 1) -> (N, ..., num_tokens), else a new last axis; "multi_hot": 1
    where an id of the last axis occurs, (N, ..., ids) -> (N, ..., num_tokens); "count": how often, (N, ids) ->
    (N, num_tokens). Keras refuses an id outside
    [0, num_tokens) where it can; here, in a graph, such an id sets no value. Keras' `count_weights` and
    `sparse=True` are not taken.
    """

    reads_integers = True

    def __init__(
        self,
        num_tokens: int,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.num_tokens = _positive_int("CategoryEncoding", "num_tokens", num_tokens)
        self.output_mode = check_output_mode("CategoryEncoding", output_mode, OUTPUT_MODES[1:])
        if sparse is not False:
            raise UnsupportedError(
                f"CategoryEncoding(sparse=...) takes False only (dense). Received: sparse={sparse!r}"
            )
        self.sparse = False

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return encoded_shape(self, input_shape, self.num_tokens, self.output_mode)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None, "layers must be built"
        return encode(builder, integer_values(builder, x), self.num_tokens, self.output_mode, self.input_shape)

    def get_config(self) -> dict[str, Any]:
        return {"num_tokens": self.num_tokens, "output_mode": self.output_mode, "sparse": False, **super().get_config()}
