"""ONNX idioms the update rules share, written once for every opset onnxtrain emits (13+)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnxtrain.graph import GraphBuilder


def reduce(builder: GraphBuilder, op: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str) -> str:
    """`op` (ReduceSum, ReduceMean, ReduceMax, ReduceSumSquare, ...) over `axes` (None: all axes)."""
    return builder.reduce(op, x, axes, keepdims, hint)


def scalar(builder: GraphBuilder, value: float, hint: str) -> str:
    """A float32 scalar constant."""
    return builder.constant(np.float32(value), hint)
