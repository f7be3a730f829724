"""The gradient rule of TopK (torch's `topk`, and `sort`, which exports as TopK with k the size of the axis): each
selected value's gradient goes back to the position the Indices output names, zeros elsewhere. Indices are distinct
along the axis, so a plain ScatterElements is exact (no reduction needed, at every opset)."""

from __future__ import annotations

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


@rule("TopK")
def _topk(ctx: GradientContext) -> Grads:
    # k is not read: the Indices output (the forward's own, added to the node if the graph did not use it) has
    # the shape of Values, so a k computed at run time (torch's sort: Gather(Shape(x), axis)) works as well.
    x, g = ctx.input(0), ctx.grad(0)
    if g is None:  # only Indices is read downstream: an int64 output carries no gradient
        return [None, None]
    indices = ctx.forward_output(1)
    axis = int(ctx.attr("axis"))  # ScatterElements takes a negative axis as TopK does
    dx = ctx.emit("ScatterElements", [ctx.zeros_like(x), indices, g], hint=f"{x}_grad", axis=axis)
    return [dx, None]
