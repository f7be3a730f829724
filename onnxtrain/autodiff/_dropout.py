"""The gradient rule of Dropout: dX = dY * mask / (1 - ratio) in training mode, from the mask output the forward
node is asked for (so the gradient drops exactly what the forward dropped), and dY in inference mode."""

from __future__ import annotations

import numpy as np

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


@rule("Dropout")
def _dropout(ctx: GradientContext) -> Grads:
    x, ratio, training = ctx.input(0), ctx.input(1), ctx.input(2)
    g = ctx.grad()
    if ctx.grad(1) is not None:
        raise ctx.unsupported("mask", "differentiated", "the mask output takes no gradient")
    assert g is not None
    mode = ctx.constant_value(training) if training else np.array(False)
    if mode is not None and not bool(mode):
        return [g]  # inference mode: the identity
    ratio_value = ctx.constant_value(ratio) if ratio else np.array(0.5)
    if ratio_value is not None:
        if not 0.0 <= float(ratio_value) < 1.0:
            raise ctx.unsupported("ratio", float(ratio_value), "expected a ratio in [0, 1)")
        scale = ctx.scalar(1.0 / (1.0 - float(ratio_value)), x)
    else:
        scale = ctx.emit("Reciprocal", [ctx.emit("Sub", [ctx.scalar(1.0, ratio), ratio])])
        scale = ctx.cast_like(scale, x) if ctx.dtype(ratio) != ctx.dtype(x) else scale
    if mode is None:  # training_mode known at run time only: inference mode keeps every element unscaled
        scale = ctx.emit("Where", [training, scale, ctx.scalar(1.0, x)])
    mask = ctx.forward_output(1)
    kept = ctx.emit("Mul", [g, scale])
    return [ctx.emit("Where", [mask, kept, ctx.scalar(0.0, x)], hint=f"{x}_grad")]
