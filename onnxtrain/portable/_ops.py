"""ONNX idioms the gradient and update rules share, written once for every opset onnxtrain emits (13+)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, numpy_helper

from onnxtrain.graph import GraphBuilder

# Reductions whose `axes` moved from an attribute to an input: ReduceSum at opset 13, the others at 18.
_AXES_AS_INPUT_FROM = {"ReduceSum": 13}
_DEFAULT_AXES_AS_INPUT_FROM = 18


def reduce(builder: GraphBuilder, op: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str) -> str:
    """`op` (ReduceSum, ReduceMean, ReduceMax, ReduceSumSquare, ...) over `axes` (None: all axes)."""
    if axes is None:
        return builder.node(op, [x], hint=hint, keepdims=int(keepdims))
    if builder.opset >= _AXES_AS_INPUT_FROM.get(op, _DEFAULT_AXES_AS_INPUT_FROM):
        axes_value = builder.constant(np.array(list(axes), np.int64), f"{hint}_axes", np.int64)
        return builder.node(op, [x, axes_value], hint=hint, keepdims=int(keepdims))
    return builder.node(op, [x], hint=hint, axes=list(axes), keepdims=int(keepdims))


def sum_over_batch(builder: GraphBuilder, x: str, hint: str) -> str:
    """The sum of 2-D `x` over its first axis, as MatMul(ones[batch], x).

    ONNX Runtime's CPU ReduceSum over axis 0 took about three times as long as this MatMul for a [100, 300]
    gradient.
    """
    first = builder.constant(np.array([0], np.int64), "first", np.int64)
    batch = builder.node("Gather", [builder.node("Shape", [x], hint="shape"), first], hint="batch")
    ones = builder.node("ConstantOfShape", [batch], hint="ones", value=numpy_helper.from_array(np.ones(1, np.float32)))
    return builder.node("MatMul", [ones, x], hint=hint)


def float_size(builder: GraphBuilder, x: str, axis: int | None = None) -> str:
    """The element count of `x` (or its dimension `axis`) as a float32 scalar: batch sizes vary per call."""
    if axis is None:
        count = builder.node("Size", [x], hint="size")
    else:
        shape = builder.node("Shape", [x], hint="shape")
        count = builder.node("Gather", [shape, builder.constant(np.int64(axis), "axis", np.int64)], hint="dim", axis=0)
    return builder.node("Cast", [count], hint="count", to=TensorProto.FLOAT)


def scalar(builder: GraphBuilder, value: float, hint: str) -> str:
    """A float32 scalar constant."""
    return builder.constant(np.float32(value), hint)
