"""Gradient rules of the reductions ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceSumSquare, ReduceL1, ReduceL2,
ReduceLogSumExp and ReduceProd, with their axes as the attribute (all but ReduceSum before opset 18) or the input
(ReduceSum from 13, the others from 18), keepdims and noop_with_empty_axes. A max's gradient is shared evenly between
tied maxima; a product's is the product of the other factors, exact where some are zero."""

from __future__ import annotations

import numpy as np

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]
NOOP = "noop"


def _axes(ctx: GradientContext) -> list[int] | str | None:
    """The reduced axes (None: every axis; NOOP: none, the op copies its input), as ints where known, else the name of
    the run-time axes input."""
    if len(ctx.inputs) > 1 and ctx.input(1):
        constant = ctx.constant_value(ctx.input(1))
        if constant is None:
            return ctx.input(1)
        axes = [int(a) for a in constant.reshape(-1)]
    else:
        axes = [int(a) for a in ctx.attr("axes", None) or []]
    if axes:
        return axes
    return NOOP if ctx.attr("noop_with_empty_axes", 0) else None


def _kept(ctx: GradientContext, value: str, axes: list[int] | str | None) -> str:
    """`value` (shaped like the output) with the reduced axes back as size 1, so it broadcasts against the input."""
    if ctx.attr("keepdims") or axes is None:
        return value  # without keepdims, reducing every axis leaves a scalar, which broadcasts as it is
    if isinstance(axes, str):
        raise ctx.unsupported("axes", f"<run-time value {axes!r}>", "keepdims=0 needs constant axes")
    return ctx.emit("Unsqueeze", [value, ctx.ints(axes)])


def _reduced_count(ctx: GradientContext, x: str, axes: list[int] | str | None) -> str:
    """How many elements each output element reduces, in x's dtype."""
    shape = ctx.shape(x)
    if shape is not None and not isinstance(axes, str):
        dims = [shape[a] for a in (axes if axes is not None else range(len(shape)))]
        if all(isinstance(d, int) for d in dims):
            return ctx.scalar(float(np.prod([int(d) for d in dims if d is not None], dtype=np.int64)), x)
    sizes = [ctx.emit("Cast", [ctx.emit("Size", [v])], to=ctx.elem_type(x)) for v in (x, ctx.output(0))]
    return ctx.emit("Div", sizes)


@rule("ReduceSum", "ReduceMean")
def _reduce_sum(ctx: GradientContext) -> Grads:
    x, g = ctx.input(0), ctx.dy
    axes = _axes(ctx)
    if axes == NOOP:
        return [g]
    g = _kept(ctx, g, axes)
    if ctx.op_type == "ReduceMean":
        g = ctx.emit("Div", [g, _reduced_count(ctx, x, axes)])
    return [ctx.emit("Expand", [g, ctx.shape_of(x)], hint=f"{x}_grad")]


def _reduce_kept(ctx: GradientContext, op_type: str, x: str, axes: list[int] | str | None) -> str:
    """`op_type` of `x` over the node's axes, keeping them as size 1."""
    if isinstance(axes, str):
        return ctx.emit(op_type, [x, axes], keepdims=1)
    return ctx.reduce(op_type, x, axes, keepdims=True)


@rule("ReduceMax", "ReduceMin")
def _reduce_max(ctx: GradientContext) -> Grads:
    x, g = ctx.input(0), ctx.dy
    axes = _axes(ctx)
    if axes == NOOP:
        return [g]
    mask = ctx.cast_like(ctx.emit("Equal", [x, _kept(ctx, ctx.output(0), axes)]), x)
    ties = _reduce_kept(ctx, "ReduceSum", mask, axes)
    return [ctx.emit("Mul", [mask, ctx.emit("Div", [_kept(ctx, g, axes), ties])], hint=f"{x}_grad")]


@rule("ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSumExp")
def _reduce_norm(ctx: GradientContext) -> Grads:
    # dx = g * d(reduced)/dx, with g and y brought back to x's rank: 2 x, sign(x), x / y, exp(x - y)
    x, g = ctx.input(0), ctx.dy
    axes = _axes(ctx)
    if axes == NOOP:
        if ctx.op_type == "ReduceLogSumExp":
            return [g]  # log(exp(x)) = x: the copy the spec describes and the map onnx's reference applies agree
        # For the others they differ: ONNX Runtime 1.19 copies the input, onnx's reference and ONNX Runtime 1.32
        # square it or take |x|. A gradient would be wrong on one of the runtimes this trains on.
        raise ctx.unsupported(
            "noop_with_empty_axes", 1, "with empty axes, runtimes disagree on its output: x, or x^2 / |x|"
        )
    if ctx.op_type == "ReduceSumSquare":
        slope = ctx.emit("Mul", [x, ctx.scalar(2.0, x)])
    elif ctx.op_type == "ReduceL1":
        slope = ctx.emit("Sign", [x])
    elif ctx.op_type == "ReduceL2":
        slope = ctx.emit("Div", [x, _kept(ctx, ctx.output(0), axes)])
    else:
        slope = ctx.emit("Exp", [ctx.emit("Sub", [x, _kept(ctx, ctx.output(0), axes)])])
    return [ctx.emit("Mul", [_kept(ctx, g, axes), slope], hint=f"{x}_grad")]


@rule("ReduceProd")
def _reduce_prod(ctx: GradientContext) -> Grads:
    # dx_i = g * the product of the other factors of its group. Not y / x_i, which is 0/0 at a zero: with the zeros
    # replaced by ones, p = the product of the nonzero factors, and the others' product is p / x_i for a nonzero x_i
    # and p for a zero one, times [no zero among the others] (the group's zero count minus x_i's own is 0).
    x, g = ctx.input(0), ctx.dy
    axes = _axes(ctx)
    if axes == NOOP:
        return [g]  # the product of one factor: the copy
    zero = ctx.emit("Equal", [x, ctx.scalar(0.0, x)])
    nonzero = ctx.emit("Where", [zero, ctx.scalar(1.0, x), x])
    product = _reduce_kept(ctx, "ReduceProd", nonzero, axes)
    is_zero = ctx.cast_like(zero, x)
    zeros_elsewhere = ctx.emit("Sub", [_reduce_kept(ctx, "ReduceSum", is_zero, axes), is_zero])
    others = ctx.emit("Where", [zero, product, ctx.emit("Div", [product, nonzero])])
    alone = ctx.cast_like(ctx.emit("Equal", [zeros_elsewhere, ctx.scalar(0.0, x)]), x)
    slope = ctx.emit("Mul", [others, alone])
    return [ctx.emit("Mul", [_kept(ctx, g, axes), slope], hint=f"{x}_grad")]
