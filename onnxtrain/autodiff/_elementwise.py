"""Gradient rules of the elementwise arithmetic ops (broadcasting undone by `GradientContext.unbroadcast`)."""

from __future__ import annotations

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


@rule("Identity")
def _identity(ctx: GradientContext) -> Grads:
    return [ctx.grad()]


@rule("Add", "Sum")
def _add(ctx: GradientContext) -> Grads:
    return [ctx.unbroadcast(ctx.grad(), x) if ctx.needs_grad(i) else None for i, x in enumerate(ctx.inputs)]


@rule("Sub")
def _sub(ctx: GradientContext) -> Grads:
    a, b = ctx.inputs
    da = ctx.unbroadcast(ctx.grad(), a) if ctx.needs_grad(0) else None
    db = ctx.emit("Neg", [ctx.unbroadcast(ctx.grad(), b)]) if ctx.needs_grad(1) else None
    return [da, db]


@rule("Neg")
def _neg(ctx: GradientContext) -> Grads:
    return [ctx.emit("Neg", [ctx.grad()])]


@rule("Mul")
def _mul(ctx: GradientContext) -> Grads:
    a, b = ctx.inputs
    da = ctx.unbroadcast(ctx.times(b, ctx.grad()), a) if ctx.needs_grad(0) else None
    db = ctx.unbroadcast(ctx.times(a, ctx.grad()), b) if ctx.needs_grad(1) else None
    return [da, db]


@rule("Div")
def _div(ctx: GradientContext) -> Grads:
    # y = a / b: da = g / b, db = -g * y / b
    a, b = ctx.inputs
    g = ctx.grad()
    assert g is not None
    da = ctx.unbroadcast(ctx.emit("Div", [g, b]), a) if ctx.needs_grad(0) else None
    db = None
    if ctx.needs_grad(1):
        db = ctx.emit("Neg", [ctx.unbroadcast(ctx.emit("Div", [ctx.times(ctx.output(0), g), b]), b)])
    return [da, db]
