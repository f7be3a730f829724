"""Gradient rules of the activation ops. Rules read the output y where that is enough, so the pre-activation keeps a
single consumer and ONNX Runtime can still fuse e.g. Gemm + Relu; selections are float masks (Cast + Mul), which
ONNX Runtime's CPU kernels run several times faster than Where."""

from __future__ import annotations

import math

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def positive(ctx: GradientContext, value: str) -> str:
    """1 where `value` > 0, else 0, in `value`'s dtype."""
    return ctx.cast_like(ctx.emit("Greater", [value, ctx.scalar(0.0, value)]), value)


@rule("Relu")
def _relu(ctx: GradientContext) -> Grads:
    return [ctx.emit("Mul", [ctx.dy, positive(ctx, ctx.output(0))])]


def _blend(ctx: GradientContext, mask: str, if_positive: str, otherwise: str) -> str:
    """otherwise + mask * (if_positive - otherwise): a select for finite values, cheaper than Where on the CPU."""
    return ctx.emit("Add", [otherwise, ctx.emit("Mul", [mask, ctx.emit("Sub", [if_positive, otherwise])])])


@rule("LeakyRelu")
def _leaky_relu(ctx: GradientContext) -> Grads:
    x, y = ctx.input(0), ctx.output(0)
    alpha = float(ctx.attr("alpha"))
    mask = positive(ctx, y if alpha > 0 else x)  # with alpha <= 0, y > 0 no longer tells x > 0
    slope = ctx.emit("Add", [ctx.emit("Mul", [mask, ctx.scalar(1.0 - alpha, x)]), ctx.scalar(alpha, x)])
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("Elu")
def _elu(ctx: GradientContext) -> Grads:
    # slope 1 for x > 0, else alpha * e^x = y + alpha
    x, y = ctx.input(0), ctx.output(0)
    alpha = float(ctx.attr("alpha"))
    mask = positive(ctx, y if alpha > 0 else x)
    slope = _blend(ctx, mask, ctx.scalar(1.0, x), ctx.emit("Add", [y, ctx.scalar(alpha, x)]))
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("Selu")
def _selu(ctx: GradientContext) -> Grads:
    # slope gamma for x > 0, else gamma * alpha * e^x = y + gamma * alpha
    x, y = ctx.input(0), ctx.output(0)
    alpha, gamma = float(ctx.attr("alpha")), float(ctx.attr("gamma"))
    mask = positive(ctx, y if alpha > 0 and gamma > 0 else x)
    slope = _blend(ctx, mask, ctx.scalar(gamma, x), ctx.emit("Add", [y, ctx.scalar(gamma * alpha, x)]))
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("Sigmoid")
def _sigmoid(ctx: GradientContext) -> Grads:
    y = ctx.output(0)
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Mul", [y, ctx.emit("Sub", [ctx.scalar(1.0, y), y])])])]


@rule("Tanh")
def _tanh(ctx: GradientContext) -> Grads:
    y = ctx.output(0)
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Sub", [ctx.scalar(1.0, y), ctx.emit("Mul", [y, y])])])]


@rule("Erf")
def _erf(ctx: GradientContext) -> Grads:
    # 2 / sqrt(pi) * exp(-x^2)
    x = ctx.input(0)
    bell = ctx.emit("Exp", [ctx.emit("Mul", [ctx.emit("Mul", [x, x]), ctx.scalar(-1.0, x)])])
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Mul", [bell, ctx.scalar(2 / math.sqrt(math.pi), x)])])]


@rule("Gelu")
def _gelu(ctx: GradientContext) -> Grads:
    x = ctx.input(0)
    half, one = ctx.scalar(0.5, x), ctx.scalar(1.0, x)
    approximate = ctx.attr("approximate")
    if approximate == "tanh":
        # y = x/2 (1 + tanh u), u = c (x + k x^3): y' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3 k x^2)
        c, k = math.sqrt(2 / math.pi), 0.044715
        x2 = ctx.emit("Mul", [x, x])
        u = ctx.emit(
            "Mul",
            [ctx.emit("Add", [x, ctx.emit("Mul", [ctx.emit("Mul", [x2, x]), ctx.scalar(k, x)])]), ctx.scalar(c, x)],
        )
        t = ctx.emit("Tanh", [u])
        du = ctx.emit("Mul", [ctx.emit("Add", [one, ctx.emit("Mul", [x2, ctx.scalar(3 * k, x)])]), ctx.scalar(c, x)])
        sech2 = ctx.emit("Sub", [one, ctx.emit("Mul", [t, t])])
        inner = ctx.emit("Mul", [ctx.emit("Mul", [ctx.emit("Mul", [half, x]), sech2]), du])
        slope = ctx.emit("Add", [ctx.emit("Mul", [half, ctx.emit("Add", [one, t])]), inner])
    elif approximate == "none":
        # y = x Phi(x): y' = Phi(x) + x phi(x)
        cdf = ctx.emit(
            "Mul",
            [half, ctx.emit("Add", [one, ctx.emit("Erf", [ctx.emit("Mul", [x, ctx.scalar(1 / math.sqrt(2), x)])])])],
        )
        pdf = ctx.emit(
            "Mul",
            [
                ctx.emit("Exp", [ctx.emit("Mul", [ctx.emit("Mul", [x, x]), ctx.scalar(-0.5, x)])]),
                ctx.scalar(1 / math.sqrt(2 * math.pi), x),
            ],
        )
        slope = ctx.emit("Add", [cdf, ctx.emit("Mul", [x, pdf])])
    else:
        raise ctx.unsupported("approximate", approximate, "expected 'none' or 'tanh'")
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("HardSigmoid")
def _hard_sigmoid(ctx: GradientContext) -> Grads:
    # slope alpha where 0 < alpha x + beta < 1, i.e. where 0 < y < 1
    y = ctx.output(0)
    inside = ctx.emit("And", [ctx.emit("Greater", [y, ctx.scalar(0.0, y)]), ctx.emit("Less", [y, ctx.scalar(1.0, y)])])
    slope = ctx.emit("Mul", [ctx.cast_like(inside, y), ctx.scalar(float(ctx.attr("alpha")), y)])
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("Softplus")
def _softplus(ctx: GradientContext) -> Grads:
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Sigmoid", [ctx.input(0)])])]


@rule("PRelu")
def _prelu(ctx: GradientContext) -> Grads:
    # y = x where x > 0, else slope * x; slope broadcasts to x (per channel as [C, 1, 1] from torch and Keras)
    x, slope = ctx.inputs
    dx = None
    if ctx.needs_grad(0):
        dx = ctx.emit("Mul", [ctx.dy, _blend(ctx, positive(ctx, x), ctx.scalar(1.0, x), slope)])
    dslope = None
    if ctx.needs_grad(1):
        dslope = ctx.unbroadcast(ctx.emit("Mul", [ctx.dy, ctx.emit("Min", [x, ctx.scalar(0.0, x)])]), slope)
    return [dx, dslope]


@rule("HardSwish")
def _hard_swish(ctx: GradientContext) -> Grads:
    # y = x * HardSigmoid(x; 1/6, 1/2): slope 0 below -3, x/3 + 1/2 between, 1 above 3
    x = ctx.input(0)
    above = ctx.cast_like(ctx.emit("Greater", [x, ctx.scalar(3.0, x)]), x)
    inside = ctx.cast_like(ctx.emit("Less", [ctx.emit("Abs", [x]), ctx.scalar(3.0, x)]), x)
    ramp = ctx.emit("Add", [ctx.emit("Mul", [x, ctx.scalar(1 / 3, x)]), ctx.scalar(0.5, x)])
    return [ctx.emit("Mul", [ctx.dy, ctx.emit("Add", [above, ctx.emit("Mul", [inside, ramp])])])]


@rule("Softsign")
def _softsign(ctx: GradientContext) -> Grads:
    # y = x / (1 + |x|): y' = 1 / (1 + |x|)^2
    x = ctx.input(0)
    denominator = ctx.emit("Add", [ctx.scalar(1.0, x), ctx.emit("Abs", [x])])
    return [ctx.emit("Div", [ctx.dy, ctx.emit("Mul", [denominator, denominator])])]


@rule("Celu")
def _celu(ctx: GradientContext) -> Grads:
    # y = max(0, x) + min(0, alpha (e^(x/alpha) - 1)): slope 1 for x > 0, else e^(x/alpha) = y / alpha + 1
    x, y = ctx.input(0), ctx.output(0)
    alpha = float(ctx.attr("alpha"))
    if alpha == 0:
        raise ctx.unsupported("alpha", alpha, "Celu divides by alpha")
    inner = ctx.emit("Add", [ctx.emit("Mul", [y, ctx.scalar(1 / alpha, x)]), ctx.scalar(1.0, x)])
    slope = _blend(ctx, positive(ctx, x), ctx.scalar(1.0, x), inner)
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("ThresholdedRelu")
def _thresholded_relu(ctx: GradientContext) -> Grads:
    x = ctx.input(0)
    above = ctx.cast_like(ctx.emit("Greater", [x, ctx.scalar(float(ctx.attr("alpha")), x)]), x)
    return [ctx.emit("Mul", [ctx.dy, above])]


@rule("Mish")
def _mish(ctx: GradientContext) -> Grads:
    # y = x tanh(softplus(x)): y' = t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))
    x = ctx.input(0)
    t = ctx.emit("Tanh", [ctx.emit("Softplus", [x])])
    sech2 = ctx.emit("Sub", [ctx.scalar(1.0, x), ctx.emit("Mul", [t, t])])
    slope = ctx.emit("Add", [t, ctx.emit("Mul", [ctx.emit("Mul", [x, sech2]), ctx.emit("Sigmoid", [x])])])
    return [ctx.emit("Mul", [ctx.dy, slope])]


@rule("Clip")
def _clip(ctx: GradientContext) -> Grads:
    # dx = g where min <= x <= max; the bounds (inputs since opset 11) take g where they clipped
    x, low, high = ctx.input(0), ctx.input(1), ctx.input(2)
    g = ctx.dy
    inside = None
    for bound, op in ((low, "GreaterOrEqual"), (high, "LessOrEqual")):
        if bound:
            test = ctx.emit(op, [x, bound])
            inside = test if inside is None else ctx.emit("And", [inside, test])
    dx = g if inside is None else ctx.emit("Mul", [g, ctx.cast_like(inside, x)])
    grads: Grads = [dx if ctx.needs_grad(0) else None]
    for i, (bound, op) in enumerate(((low, "Less"), (high, "Greater")), start=1):
        clipped = ctx.cast_like(ctx.emit(op, [x, bound]), x) if bound and ctx.needs_grad(i) else None
        grads.append(ctx.unbroadcast(ctx.emit("Mul", [g, clipped]), bound) if clipped else None)
    return grads


@rule("Softmax")
def _softmax(ctx: GradientContext) -> Grads:
    # y * (g - sum(g * y)) over the softmax axis (one axis from opset 13)
    y, g = ctx.output(0), ctx.dy
    dot = ctx.reduce("ReduceSum", ctx.emit("Mul", [g, y]), [int(ctx.attr("axis"))], keepdims=True)
    return [ctx.emit("Mul", [y, ctx.emit("Sub", [g, dot])])]


@rule("LogSoftmax")
def _log_softmax(ctx: GradientContext) -> Grads:
    # g - softmax * sum(g) over the axis
    y, g = ctx.output(0), ctx.dy
    total = ctx.reduce("ReduceSum", g, [int(ctx.attr("axis"))], keepdims=True)
    return [ctx.emit("Sub", [g, ctx.emit("Mul", [ctx.emit("Exp", [y]), total])])]
