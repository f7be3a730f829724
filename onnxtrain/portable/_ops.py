"""ONNX idioms the gradient and update rules share, written once for every opset onnxtrain emits (13+)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, numpy_helper

from onnxtrain.graph import GraphBuilder


def reduce(builder: GraphBuilder, op: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str) -> str:
    """`op` (ReduceSum, ReduceMean, ReduceMax, ReduceSumSquare, ...) over `axes` (None: all axes)."""
    return builder.reduce(op, x, axes, keepdims, hint)


def _batch(builder: GraphBuilder, x: str) -> str:
    """The batch size, as int64 [1], emitted once per graph: every per-example tensor of a Sequential's step has
    the batch as its first dimension, so the first caller's `x` gives it for all.
    """

    def make() -> str:
        first = builder.constant(np.array([0], np.int64), "first", np.int64)
        return builder.node("Gather", [builder.node("Shape", [x], hint="shape"), first], hint="batch")

    return builder.shared("batch", make)


def sum_over_batch(builder: GraphBuilder, x: str, hint: str) -> str:
    """The sum of 2-D `x` over its first axis, as MatMul(ones[batch], x), with one `ones` for every layer.

    ONNX Runtime's CPU ReduceSum over axis 0 took about three times as long as this MatMul for a [100, 300]
    gradient.
    """
    one = numpy_helper.from_array(np.ones(1, np.float32))
    ones = builder.shared(
        "ones_over_batch", lambda: builder.node("ConstantOfShape", [_batch(builder, x)], hint="ones", value=one)
    )
    return builder.node("MatMul", [ones, x], hint=hint)


def batch_size(builder: GraphBuilder, x: str) -> str:
    """The batch size (the first dimension of `x`) as float32 [1], which broadcasts like a scalar; once per graph."""
    return builder.shared(
        "batch_size", lambda: builder.node("Cast", [_batch(builder, x)], hint="batch_size", to=TensorProto.FLOAT)
    )


def float_size(builder: GraphBuilder, x: str) -> str:
    """The element count of `x` as a float32 scalar: batch sizes vary per call."""
    return builder.node("Cast", [builder.node("Size", [x], hint="size")], hint="count", to=TensorProto.FLOAT)


def scalar(builder: GraphBuilder, value: float, hint: str) -> str:
    """A float32 scalar constant."""
    return builder.constant(np.float32(value), hint)
