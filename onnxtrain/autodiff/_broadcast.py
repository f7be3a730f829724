"""Undoing multidirectional broadcasting: the one place where a gradient is summed down to its input's shape.

With static shapes (from shape inference) it emits nothing when the shapes match, a MatMul with ones for the
common [batch, n] -> [n] case, else one or two ReduceSums over known axes; with unknown dimensions it falls back to
axes computed from the run-time shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from onnx import numpy_helper

from onnxtrain.graph import Dim, GraphBuilder

Shape = tuple[Dim, ...]


class Context(Protocol):
    """What undoing broadcasting uses of a `GradientContext`, whose `unbroadcast` calls this module."""

    @property
    def builder(self) -> GraphBuilder: ...

    def shape(self, value: str) -> Shape | None: ...

    def shape_of(self, value: str) -> str: ...

    def emit(self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attributes: Any) -> str: ...

    def ints(self, values: Sequence[int], hint: str = "ints") -> str: ...

    def ones(self, length_of: str, axis: int, like: str, size: Dim = None) -> str: ...

    def reduce(
        self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str | None = None
    ) -> str: ...


def unbroadcast(ctx: Context, grad: str, grad_shape: Shape | None, to: str) -> str:
    """`grad`, of shape `grad_shape`, summed over the axes along which `to` was broadcast to that shape."""
    to_shape = ctx.shape(to)
    if grad_shape is not None and to_shape is not None:
        axes = _broadcast_axes(grad_shape, to_shape)
        if axes is not None:
            leading, kept = axes
            return _static(ctx, grad, grad_shape, to, leading, kept)
    return _dynamic(ctx, grad, to)


def _broadcast_axes(grad_shape: Shape, to_shape: Shape) -> tuple[list[int], list[int]] | None:
    """(leading axes to drop, axes to sum keeping them) that turn `grad_shape` into `to_shape`; None when a
    dimension's broadcasting cannot be told statically."""
    offset = len(grad_shape) - len(to_shape)
    if offset < 0:
        return None
    kept = []
    for i, d in enumerate(to_shape):
        g = grad_shape[offset + i]
        if d == g and d is not None:
            continue
        if d == 1:
            kept.append(offset + i)
        elif isinstance(d, int) or g == 1:
            continue  # a known size > 1 (or a gradient axis of 1) was not broadcast
        else:
            return None  # an unknown input dimension may be 1 at run time
    return list(range(offset)), kept


def _static(ctx: Context, grad: str, grad_shape: Shape, to: str, leading: list[int], kept: list[int]) -> str:
    if not leading and not kept:
        return grad
    if len(grad_shape) == 2 and leading == [0] and not kept:
        # [n, m] -> [m] as MatMul(ones[n], grad): ONNX Runtime's CPU ReduceSum over axis 0 took about three times as
        # long for a [100, 300] gradient.
        return ctx.emit("MatMul", [ctx.ones(grad, 0, to, size=grad_shape[0]), grad], hint=f"{to}_grad_sum")
    if kept:
        grad = ctx.reduce("ReduceSum", grad, kept, keepdims=True, hint=f"{to}_grad_sum")
    if leading:
        grad = ctx.reduce("ReduceSum", grad, leading, keepdims=False, hint=f"{to}_grad_sum")
    return grad


def _dynamic(ctx: Context, grad: str, to: str) -> str:
    """Sum over the axes where the run-time shapes differ: `to`'s shape padded with leading ones vs `grad`'s."""
    b = ctx.builder
    grad_shape = b.node("Shape", [grad], hint=f"{to}_grad_shape")
    to_shape = ctx.shape_of(to)
    rank_gap = b.node(
        "Sub", [b.node("Shape", [grad_shape], hint="rank"), b.node("Shape", [to_shape], hint="rank")], hint="gap"
    )
    one = numpy_helper.from_array(np.ones(1, np.int64))
    padded = b.node("Concat", [b.node("ConstantOfShape", [rank_gap], value=one), to_shape], axis=0)
    differs = b.node("Not", [b.node("Equal", [padded, grad_shape])])
    axes = b.node("Reshape", [b.node("NonZero", [differs]), ctx.ints([-1])], hint=f"{to}_broadcast_axes")
    summed = b.node("ReduceSum", [grad, axes], hint=f"{to}_grad_sum", keepdims=1, noop_with_empty_axes=1)
    return b.node("Reshape", [summed, to_shape], hint=f"{to}_grad")
