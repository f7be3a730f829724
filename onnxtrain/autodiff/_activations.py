"""Gradient rules of the activation ops. Rules read the output y where that is enough, so the pre-activation keeps a
single consumer and ONNX Runtime can still fuse e.g. Gemm + Relu; selections are float masks (Cast + Mul), which
ONNX Runtime's CPU kernels run several times faster than Where."""

from __future__ import annotations

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def positive(ctx: GradientContext, value: str) -> str:
    """1 where `value` > 0, else 0, in `value`'s dtype."""
    return ctx.cast_like(ctx.emit("Greater", [value, ctx.scalar(0.0, value)]), value)


@rule("Relu")
def _relu(ctx: GradientContext) -> Grads:
    return [ctx.emit("Mul", [ctx.grad(), positive(ctx, ctx.output(0))])]
