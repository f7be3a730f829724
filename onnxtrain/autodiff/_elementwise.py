"""Gradient rules of the elementwise arithmetic ops (broadcasting undone by `GradientContext.unbroadcast`)."""

from __future__ import annotations

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


@rule("Identity")
def _identity(ctx: GradientContext) -> Grads:
    return [ctx.dy]


@rule("Add", "Sum")
def _add(ctx: GradientContext) -> Grads:
    return [ctx.unbroadcast(ctx.dy, x) if ctx.needs_grad(i) else None for i, x in enumerate(ctx.inputs)]


@rule("Mean")
def _mean(ctx: GradientContext) -> Grads:
    share = ctx.emit("Mul", [ctx.dy, ctx.scalar(1 / len(ctx.inputs), ctx.output(0))])
    return [ctx.unbroadcast(share, x) if ctx.needs_grad(i) else None for i, x in enumerate(ctx.inputs)]


@rule("Sub")
def _sub(ctx: GradientContext) -> Grads:
    a, b = ctx.inputs
    da = ctx.unbroadcast(ctx.dy, a) if ctx.needs_grad(0) else None
    db = ctx.emit("Neg", [ctx.unbroadcast(ctx.dy, b)]) if ctx.needs_grad(1) else None
    return [da, db]


@rule("Neg")
def _neg(ctx: GradientContext) -> Grads:
    return [ctx.emit("Neg", [ctx.dy])]


@rule("Mul")
def _mul(ctx: GradientContext) -> Grads:
    a, b = ctx.inputs
    da = ctx.unbroadcast(ctx.times(b, ctx.dy), a) if ctx.needs_grad(0) else None
    db = ctx.unbroadcast(ctx.times(a, ctx.dy), b) if ctx.needs_grad(1) else None
    return [da, db]


@rule("Div")
def _div(ctx: GradientContext) -> Grads:
    # y = a / b: da = g / b, db = -g * y / b
    a, b = ctx.inputs
    g = ctx.dy
    da = ctx.unbroadcast(ctx.emit("Div", [g, b]), a) if ctx.needs_grad(0) else None
    db = None
    if ctx.needs_grad(1):
        db = ctx.emit("Neg", [ctx.unbroadcast(ctx.emit("Div", [ctx.times(ctx.output(0), g), b]), b)])
    return [da, db]


@rule("Pow")
def _pow(ctx: GradientContext) -> Grads:
    # y = a ** b: da = g * b * a ** (b - 1), db = g * y * log(a)
    a, b = ctx.inputs
    g = ctx.dy
    da = db = None
    if ctx.needs_grad(0):
        exponent = ctx.constant_value(b)
        if exponent is not None and exponent.size == 1 and float(exponent.reshape(-1)[0]) in (1.0, 2.0):
            value = float(exponent.reshape(-1)[0])
            slope = ctx.scalar(1.0, a) if value == 1.0 else ctx.emit("Mul", [a, ctx.scalar(2.0, a)])
        else:
            b_float = b if ctx.dtype(b) == ctx.dtype(a) else ctx.cast_like(b, a)
            lower = ctx.emit("Pow", [a, ctx.emit("Sub", [b, ctx.scalar(1.0, b)])])
            slope = ctx.emit("Mul", [b_float, lower])
        da = ctx.unbroadcast(ctx.emit("Mul", [g, slope]), a)
    if ctx.needs_grad(1):
        db = ctx.unbroadcast(ctx.emit("Mul", [ctx.times(ctx.output(0), g), ctx.emit("Log", [a])]), b)
    return [da, db]


@rule("Sqrt")
def _sqrt(ctx: GradientContext) -> Grads:
    # d sqrt(x) = 1 / (2 y)
    return [ctx.emit("Div", [ctx.emit("Mul", [ctx.dy, ctx.scalar(0.5, ctx.input(0))]), ctx.output(0)])]


@rule("Reciprocal")
def _reciprocal(ctx: GradientContext) -> Grads:
    # d (1 / x) = -1 / x^2 = -y^2 (tf2onnx writes LayerNormalization's rsqrt as Reciprocal(Sqrt(var + eps)))
    y = ctx.output(0)
    return [ctx.emit("Neg", [ctx.times(ctx.emit("Mul", [y, y]), ctx.dy)])]


@rule("Exp")
def _exp(ctx: GradientContext) -> Grads:
    return [ctx.times(ctx.output(0), ctx.dy)]


@rule("Log")
def _log(ctx: GradientContext) -> Grads:
    return [ctx.emit("Div", [ctx.dy, ctx.input(0)])]


@rule("Sin")
def _sin(ctx: GradientContext) -> Grads:
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Cos", [ctx.input(0)])])]


@rule("Cos")
def _cos(ctx: GradientContext) -> Grads:
    return [ctx.emit("Neg", [ctx.emit("Mul", [ctx.dy, ctx.emit("Sin", [ctx.input(0)])])])]


@rule("Tan")
def _tan(ctx: GradientContext) -> Grads:
    # 1 / cos^2 = 1 + y^2
    y = ctx.output(0)
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Add", [ctx.scalar(1.0, y), ctx.emit("Mul", [y, y])])])]


@rule("Atan")
def _atan(ctx: GradientContext) -> Grads:
    x = ctx.input(0)
    return [ctx.emit("Div", [ctx.dy, ctx.emit("Add", [ctx.scalar(1.0, x), ctx.emit("Mul", [x, x])])])]


@rule("Sinh")
def _sinh(ctx: GradientContext) -> Grads:
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Cosh", [ctx.input(0)])])]


@rule("Cosh")
def _cosh(ctx: GradientContext) -> Grads:
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Sinh", [ctx.input(0)])])]


@rule("Asin", "Acos")
def _asin_acos(ctx: GradientContext) -> Grads:
    # d asin(x) = 1 / sqrt(1 - x^2) = -d acos(x)
    x = ctx.input(0)
    root = ctx.emit("Sqrt", [ctx.emit("Sub", [ctx.scalar(1.0, x), ctx.emit("Mul", [x, x])])])
    grad = ctx.emit("Div", [ctx.dy, root])
    return [grad if ctx.op_type == "Asin" else ctx.emit("Neg", [grad])]


@rule("Asinh", "Acosh")
def _asinh_acosh(ctx: GradientContext) -> Grads:
    # d asinh(x) = 1 / sqrt(x^2 + 1), d acosh(x) = 1 / sqrt(x^2 - 1)
    x = ctx.input(0)
    squared = ctx.emit("Mul", [x, x])
    shifted = ctx.emit("Add" if ctx.op_type == "Asinh" else "Sub", [squared, ctx.scalar(1.0, x)])
    return [ctx.emit("Div", [ctx.dy, ctx.emit("Sqrt", [shifted])])]


@rule("Atanh")
def _atanh(ctx: GradientContext) -> Grads:
    x = ctx.input(0)
    return [ctx.emit("Div", [ctx.dy, ctx.emit("Sub", [ctx.scalar(1.0, x), ctx.emit("Mul", [x, x])])])]


@rule("Abs")
def _abs(ctx: GradientContext) -> Grads:
    return [ctx.times(ctx.emit("Sign", [ctx.input(0)]), ctx.dy)]


@rule("Sign", "Floor", "Ceil", "Round", "Hardmax", "OneHot", "RandomNormalLike", "RandomUniformLike", "Bernoulli")
def _piecewise_constant(ctx: GradientContext) -> Grads:
    """Zero almost everywhere (or random): no gradient flows back. (ArgMax, ArgMin and the like need no rule: their
    integer outputs carry none.)"""
    return []


@rule("Max", "Min")
def _min_max(ctx: GradientContext) -> Grads:
    # The gradient goes to the first input that attains the result, TensorFlow's convention at ties: each input
    # takes, where it equals the result, what no earlier input took; the last takes the rest. Mul and Sub: ONNX
    # Runtime 1.19's Where took 1.7 ms where this took 0.3 (a 100x32x14x14 map, one thread).
    y = ctx.output(0)
    remaining = ctx.dy
    grads: Grads = []
    last = max(i for i in range(len(ctx.inputs)) if ctx.needs_grad(i))
    for i, x in enumerate(ctx.inputs[: last + 1]):
        if i == len(ctx.inputs) - 1:
            mine = remaining
        else:
            mine = ctx.emit("Mul", [remaining, ctx.cast_like(ctx.emit("Equal", [x, y]), y)])
            if i < last:
                remaining = ctx.emit("Sub", [remaining, mine])
        grads.append(ctx.unbroadcast(mine, x) if ctx.needs_grad(i) else None)
    return grads


@rule("Where")
def _where(ctx: GradientContext) -> Grads:
    condition, a, b = ctx.inputs
    g = ctx.dy
    zero = ctx.scalar(0.0, ctx.output(0))
    da = ctx.unbroadcast(ctx.emit("Where", [condition, g, zero]), a) if ctx.needs_grad(1) else None
    db = ctx.unbroadcast(ctx.emit("Where", [condition, zero, g]), b) if ctx.needs_grad(2) else None
    return [None, da, db]


@rule("Cast")
def _cast(ctx: GradientContext) -> Grads:
    # Only a float -> float Cast is on a gradient path (integer values carry none).
    x = ctx.input(0)
    return [ctx.emit("Cast", [ctx.dy], to=ctx.elem_type(x))]


@rule("CastLike")
def _cast_like(ctx: GradientContext) -> Grads:
    # The second input gives only the element type (the dynamo exporter's CastLike(constant, activation) makes a
    # zero bias of the activation's dtype): no gradient flows to it.
    x = ctx.input(0)
    return [ctx.emit("Cast", [ctx.dy], to=ctx.elem_type(x)) if ctx.needs_grad(0) else None, None]
