"""The gradient rule of CumSum: the gradient of a running sum is the running sum of the gradient taken the other way
along the axis, with the same exclusive flag (y_j = sum over i <= j of x_i, so dx_i = sum over j >= i of dy_j)."""

from __future__ import annotations

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


@rule("CumSum")
def _cumsum(ctx: GradientContext) -> Grads:
    # The axis input is read again as it is (a constant or a value computed at run time); it takes no gradient.
    x, axis = ctx.input(0), ctx.input(1)
    exclusive, reverse = int(ctx.attr("exclusive", 0)), int(ctx.attr("reverse", 0))
    dx = ctx.emit("CumSum", [ctx.dy, axis], hint=f"{x}_grad", exclusive=exclusive, reverse=1 - reverse)
    return [dx, None]
