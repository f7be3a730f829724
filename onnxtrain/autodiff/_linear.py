"""Gradient rules of the matrix products: Gemm (transposes, alpha, beta, broadcast C), MatMul (batched,
broadcast, 1-D operands) and Einsum. Transposes ride on Gemm's flags wherever both operands are matrices."""

from __future__ import annotations

import string
from typing import Any

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def _gemm(ctx: GradientContext, a: str, b: str, trans_a: int, trans_b: int, alpha: float, hint: str) -> str:
    attributes: dict[str, Any] = {}
    if trans_a:
        attributes["transA"] = 1
    if trans_b:
        attributes["transB"] = 1
    if alpha != 1.0:
        attributes["alpha"] = alpha
    return ctx.emit("Gemm", [a, b], hint=hint, **attributes)


@rule("Gemm")
def _gemm_rule(ctx: GradientContext) -> Grads:
    # Y = alpha * A' B' + beta * C with A' = A^T when transA (B' likewise).
    a, b, c = ctx.input(0), ctx.input(1), ctx.input(2)
    g = ctx.dy
    ta, tb = int(ctx.attr("transA")), int(ctx.attr("transB"))
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    da = db = dc = None
    if ctx.needs_grad(0):  # dA' = alpha g B'^T
        if ta:
            da = _gemm(ctx, b, g, tb, 1, alpha, f"{a}_grad")
        else:
            da = _gemm(ctx, g, b, 0, 1 - tb, alpha, f"{a}_grad")
    if ctx.needs_grad(1):  # dB' = alpha A'^T g
        if tb:
            db = _gemm(ctx, g, a, 1, ta, alpha, f"{b}_grad")
        else:
            db = _gemm(ctx, a, g, 1 - ta, 0, alpha, f"{b}_grad")
    if c and ctx.needs_grad(2):
        dc = ctx.unbroadcast(g, c)
        if beta != 1.0:
            dc = ctx.emit("Mul", [dc, ctx.scalar(beta, c)])
    return [da, db, dc]


def _swap_last(ctx: GradientContext, x: str) -> str:
    rank = ctx.rank(x)
    if rank is None:
        raise ctx.unsupported("rank", None, f"the rank of input {x!r} must be known statically")
    return ctx.emit("Transpose", [x], perm=[*range(rank - 2), rank - 1, rank - 2])


@rule("MatMul")
def _matmul(ctx: GradientContext) -> Grads:
    a, b = ctx.inputs
    g = ctx.dy
    ra, rb, out = ctx.rank(a), ctx.rank(b), ctx.shape(ctx.output(0))
    if ra is None or rb is None or out is None:
        raise ctx.unsupported("rank", (ra, rb), "MatMul's gradient needs the ranks of its inputs")
    da = db = None
    if ra == 1 and rb == 1:  # a dot product: y = sum(a * b)
        da = ctx.times(b, g) if ctx.needs_grad(0) else None
        db = ctx.times(a, g) if ctx.needs_grad(1) else None
        return [da, db]
    if ra == 2 and rb == 2:
        da = _gemm(ctx, g, b, 0, 1, 1.0, f"{a}_grad") if ctx.needs_grad(0) else None
        db = _gemm(ctx, a, g, 1, 0, 1.0, f"{b}_grad") if ctx.needs_grad(1) else None
        return [da, db]
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    assert a_shape is not None and b_shape is not None
    if ra == 1:  # y[..., m] = a[k] @ b[..., k, m]
        if ctx.needs_grad(0):
            column = ctx.emit("Unsqueeze", [g, ctx.ints([-1])])
            da = ctx.emit("Squeeze", [ctx.emit("MatMul", [b, column]), ctx.ints([-1])])
            da = ctx.unbroadcast(da, a, (*out[:-1], a_shape[0]))
        if ctx.needs_grad(1):
            outer = ctx.emit(
                "Mul", [ctx.emit("Unsqueeze", [a, ctx.ints([1])]), ctx.emit("Unsqueeze", [g, ctx.ints([-2])])]
            )
            db = ctx.unbroadcast(outer, b, (*out[:-1], a_shape[0], out[-1]))
        return [da, db]
    if rb == 1:  # y[..., n] = a[..., n, k] @ b[k]
        if ctx.needs_grad(0):
            da = ctx.emit("Mul", [ctx.emit("Unsqueeze", [g, ctx.ints([-1])]), b])
            da = ctx.unbroadcast(da, a, (*out, b_shape[0]))
        if ctx.needs_grad(1):
            row = ctx.emit("Unsqueeze", [g, ctx.ints([-2])])
            db = ctx.emit("Squeeze", [ctx.emit("MatMul", [row, a]), ctx.ints([-2])])
            db = ctx.unbroadcast(db, b, (*out[:-1], b_shape[0]))
        return [da, db]
    if ctx.needs_grad(0):  # dA = g B^T, dB = A^T g, each summed over the batch axes its input was broadcast along
        da = ctx.unbroadcast(ctx.emit("MatMul", [g, _swap_last(ctx, b)]), a, (*out[:-2], *a_shape[-2:]))
    if ctx.needs_grad(1):
        db = ctx.unbroadcast(ctx.emit("MatMul", [_swap_last(ctx, a), g]), b, (*out[:-2], *b_shape[-2:]))
    return [da, db]


@rule("Einsum")
def _einsum(ctx: GradientContext) -> Grads:
    # d operand i = the einsum of g with the other operands into operand i's indices; an index that only operand i
    # has (summed within it) comes back by broadcasting.
    terms, out = _einsum_terms(ctx)
    grads: Grads = []
    for i, (x, term) in enumerate(zip(ctx.inputs, terms, strict=True)):
        if not ctx.needs_grad(i):
            grads.append(None)
            continue
        others = [t for j, t in enumerate(terms) if j != i]
        reached = "".join(c for c in term if c in out or any(c in t for t in others))
        equation = f"{','.join([out, *others])}->{reached}"
        grad = ctx.emit("Einsum", [ctx.dy, *(v for j, v in enumerate(ctx.inputs) if j != i)], equation=equation)
        if reached != term:
            missing = [k for k, c in enumerate(term) if c not in reached]
            grad = ctx.emit("Expand", [ctx.emit("Unsqueeze", [grad, ctx.ints(missing)]), ctx.shape_of(x)])
        grads.append(grad)
    return grads


def _einsum_terms(ctx: GradientContext) -> tuple[list[str], str]:
    """The equation's input terms and output term, an ellipsis spelled out in unused letters (which needs the
    operands' ranks) and the implicit output (the indices seen once, in order) made explicit."""
    equation = str(ctx.attr("equation")).replace(" ", "")
    inputs, arrow, out = equation.partition("->")
    terms = inputs.split(",")
    if "..." in equation:
        ranks = [ctx.rank(x) for x in ctx.inputs]
        if any(r is None for r, t in zip(ranks, terms, strict=True) if "..." in t):
            raise ctx.unsupported("equation", equation, "an ellipsis needs the operands' ranks")
        spans = [r - len(t) + 3 if r is not None and "..." in t else 0 for r, t in zip(ranks, terms, strict=True)]
        letters = "".join(c for c in string.ascii_letters if c not in equation)[: max(spans)]
        terms = [t.replace("...", letters[len(letters) - n :]) for t, n in zip(terms, spans, strict=True)]
        out = out.replace("...", letters)
    else:
        letters = ""
    if not arrow:
        out = letters + "".join(sorted(c for c in set("".join(terms)) if c not in letters and inputs.count(c) == 1))
    for term in [*terms, out]:
        if len(set(term)) != len(term):
            raise ctx.unsupported(
                "equation", equation, "an index repeated within one term (a diagonal) is not supported"
            )
    _check_no_broadcast(ctx, equation, terms)
    return terms, out


def _check_no_broadcast(ctx: GradientContext, equation: str, terms: list[str]) -> None:
    """Refuse an index that is 1 in one operand and longer in another (broadcast ellipsis dimensions)."""
    sizes: dict[str, set[int]] = {}
    for x, term in zip(ctx.inputs, terms, strict=True):
        for c, d in zip(term, ctx.shape(x) or (), strict=False):
            if isinstance(d, int):
                sizes.setdefault(c, set()).add(d)
    if any(len(s) > 1 for s in sizes.values()):
        raise ctx.unsupported("equation", equation, "operands broadcast along the ellipsis")
