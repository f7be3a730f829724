"""The gradient rule of GridSample (torch's `F.grid_sample`) on 4-D inputs: bilinear and nearest modes, padding modes
zeros, border and reflection, align_corners 0 and 1. Bicubic and N-D inputs are refused.

The rule recomputes the sampling positions as ONNX Runtime's kernel does (denormalized grid, then border clamping or
reflection), then:

- dX: each output's gradient times its corners' weights, added into X by one `ScatterElements(reduction="add")` over
  the flattened spatial axes (opset 16, GridSample's first, has it);
- dgrid (bilinear): the corners' values (`GatherElements`) give d y / d x = Σ_c dy (wy0 (v01 - v00) + wy1 (v11 - v10))
  (and likewise for y), times the slope of the coordinate: the denormalization's scale, 0 where border padding
  clamped it, ±1 where reflection mirrored it. Nearest sampling is piecewise constant: no gradient to the grid.

At the border the gradient is torch's: a corner outside the image adds nothing, and a clamped coordinate none.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]
_MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest"}


@rule("GridSample")
def _grid_sample(ctx: GradientContext) -> Grads:
    x, grid = ctx.inputs[:2]
    mode = _MODES.get(str(ctx.attr("mode")))
    if mode is None:
        raise ctx.unsupported("mode", ctx.attr("mode"), "expected bilinear (linear) or nearest")
    if ctx.rank(x) != 4:
        raise ctx.unsupported("rank", ctx.rank(x), "the gradient takes 4-D inputs [N, C, H, W]")
    padding = str(ctx.attr("padding_mode"))
    if padding not in ("zeros", "border", "reflection"):
        raise ctx.unsupported("padding_mode", padding, "expected zeros, border or reflection")
    height, width = ctx.spatial_dims(x, "X")
    align = bool(ctx.attr("align_corners"))
    gx, gy = (
        ctx.emit("Squeeze", [part, ctx.ints([3])])
        for part in ctx.emit_multi("Split", [grid, ctx.ints([1, 1])], 2, axis=3)
    )
    sx, dsx = _coordinate(ctx, gx, width, align, padding, mode)
    sy, dsy = _coordinate(ctx, gy, height, align, padding, mode)
    one = ctx.scalar(1.0, grid)

    flat_x = ctx.emit("Reshape", [x, ctx.ints([0, 0, -1])], hint="x_flat")  # [N, C, H*W]
    dy = ctx.emit("Reshape", [ctx.dy, ctx.ints([0, 0, -1])], hint="dy_flat")  # [N, C, P]
    corners: list[tuple[str, str, tuple[str, str] | None]] = [(sx, sy, None)]  # nearest: the rounded point
    if mode == "linear":
        x0, y0 = ctx.emit("Floor", [sx]), ctx.emit("Floor", [sy])
        x1, y1 = ctx.emit("Add", [x0, one]), ctx.emit("Add", [y0, one])
        wx1, wy1 = ctx.emit("Sub", [sx, x0]), ctx.emit("Sub", [sy, y0])
        wx0, wy0 = ctx.emit("Sub", [one, wx1]), ctx.emit("Sub", [one, wy1])
        corners = [(x0, y0, (wx0, wy0)), (x1, y0, (wx1, wy0)), (x0, y1, (wx0, wy1)), (x1, y1, (wx1, wy1))]
    places = [_place(ctx, cx, cy, width, height) for cx, cy, _ in corners]  # (flat index [N, 1, P], valid)

    dx = None
    if ctx.needs_grad(0):
        weights = [
            valid if w is None else ctx.emit("Mul", [_flat(ctx, ctx.emit("Mul", list(w))), valid])
            for (_, _, w), (_, valid) in zip(corners, places, strict=True)
        ]
        updates = ctx.emit("Concat", [ctx.emit("Mul", [dy, w]) for w in weights], axis=2)
        indices = ctx.emit("Concat", [index for index, _ in places], axis=2)
        indices = ctx.emit("Expand", [indices, ctx.emit("Shape", [updates])])
        zero = numpy_helper.from_array(np.zeros(1, ctx.dtype(x)))
        zeros = ctx.emit("ConstantOfShape", [ctx.emit("Shape", [flat_x])], hint="zeros", value=zero)
        added = ctx.emit("ScatterElements", [zeros, indices, updates], axis=2, reduction="add")
        dx = ctx.emit("Reshape", [added, ctx.shape_of(x)])
    dgrid = None
    if ctx.needs_grad(1):
        if mode == "nearest":
            dgrid = ctx.zeros_like(grid)
        else:
            v00, v01, v10, v11 = (_gathered(ctx, flat_x, index, valid, dy) for index, valid in places)
            along_x = _weighted_differences(ctx, wy0, v01, v00, wy1, v11, v10)
            along_y = _weighted_differences(ctx, wx0, v10, v00, wx1, v11, v01)
            parts = [
                _summed_over_channels(ctx, dy, difference, slope, like)
                for difference, slope, like in ((along_x, dsx, gx), (along_y, dsy, gy))
            ]
            dgrid = ctx.emit("Concat", [ctx.emit("Unsqueeze", [p, ctx.ints([3])]) for p in parts], axis=3)
    return [dx, dgrid]


def _coordinate(
    ctx: GradientContext, g: str, size: int, align: bool, padding: str, mode: str
) -> tuple[str, str | None]:
    """The sampling coordinate along one axis ([N, Ho, Wo]) as ONNX Runtime computes it, and d coordinate / d g
    (None for nearest): denormalized, rounded half to even (nearest), then clamped (border) or mirrored into the
    image (reflection), as far as a corner of it must be read."""
    slope = (size - 1) / 2 if align else size / 2
    offset = (size - 1) / 2
    c = ctx.emit("Add", [ctx.emit("Mul", [g, _scalar(ctx, slope)]), _scalar(ctx, offset)])
    if mode == "nearest":
        c = ctx.emit("Round", [c])
    derivative = _scalar(ctx, slope)  # broadcast: [N, Ho, Wo] once padding makes it vary
    if padding == "reflection":
        low, high = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        c, sign = _reflected(ctx, c, low, high)
        derivative = ctx.emit("Mul", [derivative, sign])
    if padding in ("border", "reflection"):
        inside = ctx.emit(
            "And",
            [ctx.emit("Greater", [c, _scalar(ctx, 0.0)]), ctx.emit("Less", [c, _scalar(ctx, size - 1.0)])],
        )
        derivative = ctx.emit("Mul", [derivative, ctx.cast_like(inside, ctx.input(1))])
        c = ctx.emit("Clip", [c, _scalar(ctx, 0.0), _scalar(ctx, size - 1.0)])
    return c, (None if mode == "nearest" else derivative)


def _reflected(ctx: GradientContext, c: str, low: float, high: float) -> tuple[str, str]:
    """`c` mirrored into [low, high] (ONNX Runtime's GsReflect: the distance d beyond the nearer bound, folded n =
    floor(d / range) times), and the derivative's sign (-1 where an even number of folds mirrors it)."""
    span = high - low
    below = ctx.emit("Less", [c, _scalar(ctx, low)])
    above = ctx.emit("Greater", [c, _scalar(ctx, high)])
    beyond = ctx.emit(
        "Where",
        [below, ctx.emit("Sub", [_scalar(ctx, low), c]), ctx.emit("Sub", [c, _scalar(ctx, high)])],
    )
    folds = ctx.emit("Floor", [ctx.emit("Div", [beyond, _scalar(ctx, span)])])
    rest = ctx.emit("Sub", [beyond, ctx.emit("Mul", [folds, _scalar(ctx, span)])])
    odd = ctx.emit("Equal", [ctx.emit("Mod", [folds, _scalar(ctx, 2.0)], fmod=1), _scalar(ctx, 1.0)])
    from_low, from_high = ctx.emit("Add", [_scalar(ctx, low), rest]), ctx.emit("Sub", [_scalar(ctx, high), rest])
    # below: even folds land at low + rest (slope -1), odd at high - rest (+1); above: the other way round
    at_low = ctx.emit("Xor", [below, odd])  # landing at low + rest
    mirrored = ctx.emit("Where", [at_low, from_low, from_high])
    outside = ctx.emit("Or", [below, above])
    one, minus_one = _scalar(ctx, 1.0), _scalar(ctx, -1.0)
    flipped = ctx.emit("Not", [odd])  # an even number of folds mirrors once more than it folds back
    sign = ctx.emit("Where", [ctx.emit("And", [outside, flipped]), minus_one, one])
    return ctx.emit("Where", [outside, mirrored, c]), sign


def _place(ctx: GradientContext, cx: str, cy: str, width: int, height: int) -> tuple[str, str]:
    """The flat index y * W + x of a corner ([N, 1, P] int64, clamped into the image) and whether the corner lies
    inside it ([N, 1, P] in the coordinates' dtype: a corner outside adds nothing, as in zeros padding)."""
    inside = [
        ctx.emit("GreaterOrEqual", [cx, _scalar(ctx, 0.0)]),
        ctx.emit("LessOrEqual", [cx, _scalar(ctx, width - 1.0)]),
        ctx.emit("GreaterOrEqual", [cy, _scalar(ctx, 0.0)]),
        ctx.emit("LessOrEqual", [cy, _scalar(ctx, height - 1.0)]),
    ]
    valid = ctx.emit("And", [ctx.emit("And", inside[:2]), ctx.emit("And", inside[2:])])
    ix = ctx.emit("Clip", [cx, _scalar(ctx, 0.0), _scalar(ctx, width - 1.0)])
    iy = ctx.emit("Clip", [cy, _scalar(ctx, 0.0), _scalar(ctx, height - 1.0)])
    flat = ctx.emit("Add", [ctx.emit("Mul", [iy, _scalar(ctx, float(width))]), ix])
    index = ctx.emit("Cast", [ctx.emit("Reshape", [flat, ctx.ints([0, 1, -1])])], to=7)  # int64
    return index, ctx.emit("Reshape", [ctx.cast_like(valid, ctx.input(1)), ctx.ints([0, 1, -1])])


def _gathered(ctx: GradientContext, flat_x: str, index: str, valid: str, like: str) -> str:
    """X at a corner for every channel ([N, C, P]), zero where the corner lies outside the image."""
    spread = ctx.emit("Expand", [index, ctx.emit("Shape", [like])])
    return ctx.emit("Mul", [ctx.emit("GatherElements", [flat_x, spread], axis=2), valid])


def _weighted_differences(ctx: GradientContext, w0: str, a0: str, b0: str, w1: str, a1: str, b1: str) -> str:
    """w0 (a0 - b0) + w1 (a1 - b1): d y / d coordinate of bilinear sampling, per channel."""
    first = ctx.emit("Mul", [ctx.emit("Sub", [a0, b0]), _flat(ctx, w0)])
    second = ctx.emit("Mul", [ctx.emit("Sub", [a1, b1]), _flat(ctx, w1)])
    return ctx.emit("Add", [first, second])


def _summed_over_channels(ctx: GradientContext, dy: str, difference: str, slope: str | None, like: str) -> str:
    """Σ_c dy · difference, shaped like the grid coordinate `like` ([N, Ho, Wo]), times the coordinate's slope."""
    total = ctx.reduce("ReduceSum", ctx.emit("Mul", [dy, difference]), [1], keepdims=False)
    shaped = ctx.emit("Reshape", [total, ctx.emit("Shape", [like])])
    assert slope is not None
    return ctx.emit("Mul", [shaped, slope])


def _flat(ctx: GradientContext, value: str) -> str:
    return ctx.emit("Reshape", [value, ctx.ints([0, 1, -1])])


def _scalar(ctx: GradientContext, value: float) -> str:
    """A scalar of the grid's dtype (the values made here are no forward values to take it from)."""
    return ctx.scalar(value, ctx.input(1))
