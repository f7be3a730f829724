"""The gradient rule of Pad: constant mode is Pad by the negated pads (crops what was added, zero-fills what was
cropped); reflect, edge and wrap fold each padded border back onto the elements it copies, one axis at a time."""

from __future__ import annotations

import numpy as np

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]
_FIRST = np.iinfo(np.int64).min  # a Slice end that runs, with step -1, through index 0


@rule("Pad")
def _pad(ctx: GradientContext) -> Grads:
    x, pads, value, axes = (ctx.input(i) for i in range(4))
    g = ctx.grad()
    assert g is not None
    mode = ctx.attr("mode")
    if mode == "constant":
        # Pad(Pad(x, p), -p) = x for every p, negative (cropping) pads included.
        known = ctx.constant_value(pads)
        negated = ctx.ints(list(-known), "pads") if known is not None else ctx.emit("Neg", [pads])
        dx = ctx.emit("Pad", [g, negated, "", axes] if axes else [g, negated], hint=f"{x}_grad")
        dvalue = None
        if value and ctx.needs_grad(2):  # the padded positions hold the constant
            total = ctx.reduce("ReduceSum", g, None, keepdims=False)
            inner = ctx.reduce("ReduceSum", dx, None, keepdims=False)
            dvalue = ctx.emit("Reshape", [ctx.emit("Sub", [total, inner]), ctx.shape_of(value)], hint=f"{value}_grad")
        return [dx if ctx.needs_grad(0) else None, None, dvalue]
    if mode not in ("reflect", "edge", "wrap"):
        raise ctx.unsupported("mode", mode, "expected constant, reflect, edge or wrap")
    shape = ctx.shape(x)
    known = ctx.constant_value(pads)
    axes_value = ctx.constant_value(axes) if axes else None
    if shape is None or known is None or (axes and axes_value is None):
        raise ctx.unsupported(
            "pads",
            "computed at run time" if known is None else known.tolist(),
            f"mode {mode!r} needs constant pads (and axes) and X's rank known statically",
        )
    rank = len(shape)
    padded_axes = [int(a) % rank for a in axes_value] if axes_value is not None else list(range(rank))
    n = len(padded_axes)
    for axis, begin, end in zip(padded_axes, known[:n].tolist(), known[n:].tolist(), strict=True):
        if begin == end == 0:
            continue
        size = shape[axis]
        if not isinstance(size, int):
            raise ctx.unsupported("shape", tuple(shape), f"mode {mode!r} needs the size of padded axis {axis}")
        g = _fold(ctx, g, axis, begin, end, size, rank, mode)
    return [g, None, None]


def _fold(ctx: GradientContext, g: str, axis: int, begin: int, end: int, size: int, rank: int, mode: str) -> str:
    """The gradient along one axis padded by (begin, end): the middle plus each border added where it was copied
    from (edge: the first or last element; reflect: mirrored without the edge; wrap: the other end)."""
    limit = size - 1 if mode == "reflect" else size if mode == "wrap" else None
    if begin < 0 or end < 0 or (limit is not None and max(begin, end) > limit):
        raise ctx.unsupported(
            "pads",
            [begin, end],
            f"mode {mode!r} takes pads from 0 to {limit if limit is not None else 'any'} "
            f"along an axis of {size} (axis {axis})",
        )

    def piece(start: int, stop: int, step: int = 1) -> str:
        return ctx.emit(
            "Slice",
            [
                g,
                ctx.ints([start], "starts"),
                ctx.ints([stop], "ends"),
                ctx.ints([axis], "axes"),
                ctx.ints([step], "steps"),
            ],
        )

    def placed(part: str, before: int, after: int) -> str:
        pads = [0] * (2 * rank)
        pads[axis], pads[rank + axis] = before, after
        return ctx.emit("Pad", [part, ctx.ints(pads, "pads")]) if before or after else part

    parts = [piece(begin, begin + size)]
    if mode == "edge":
        if begin:
            parts.append(placed(ctx.reduce("ReduceSum", piece(0, begin), [axis], keepdims=True), 0, size - 1))
        if end:
            tail = ctx.reduce("ReduceSum", piece(begin + size, begin + size + end), [axis], keepdims=True)
            parts.append(placed(tail, size - 1, 0))
    elif mode == "reflect":  # padded position begin - j copies x[j]; begin + size - 1 + j copies x[size - 1 - j]
        if begin:
            parts.append(placed(piece(begin - 1, _FIRST, -1), 1, size - 1 - begin))
        if end:
            parts.append(placed(piece(begin + size + end - 1, begin + size - 1, -1), size - 1 - end, 1))
    else:  # wrap: the border before copies x's last `begin` elements, the one after its first `end`
        if begin:
            parts.append(placed(piece(0, begin), size - begin, 0))
        if end:
            parts.append(placed(piece(begin + size, begin + size + end), 0, size - end))
    return ctx.emit("Sum", parts, hint="pad_fold") if len(parts) > 1 else parts[0]
