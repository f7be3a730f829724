"""Gradient rules of the normalizations: BatchNormalization (inference form, and training mode through the batch
statistics), LayerNormalization, InstanceNormalization and GroupNormalization. Each recomputes the normalized input
from X in X's dtype."""

from __future__ import annotations

from collections.abc import Sequence

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def _normalized(
    ctx: GradientContext, x: str, axes: Sequence[int], epsilon: float, like: str = ""
) -> tuple[str, str, str]:
    """(x - mean, 1 / sqrt(var + epsilon), x_hat) with the mean and biased variance over `axes` (`like`: a forward
    value of x's dtype, where x is none)."""
    centered = ctx.emit("Sub", [x, ctx.reduce("ReduceMean", x, axes, keepdims=True)], hint=f"{x}_centered")
    var = ctx.reduce("ReduceMean", ctx.emit("Mul", [centered, centered]), axes, keepdims=True)
    inv_std = ctx.emit("Reciprocal", [ctx.emit("Sqrt", [ctx.emit("Add", [var, ctx.scalar(epsilon, like or x)])])])
    return centered, inv_std, ctx.emit("Mul", [centered, inv_std], hint=f"{x}_hat")


def _normalized_grad(ctx: GradientContext, gx_hat: str, x_hat: str, inv_std: str, axes: Sequence[int]) -> str:
    """dX of x_hat = (x - mean(x)) / sqrt(var(x) + eps) over `axes`, given dx_hat:
    inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))."""
    mean_g = ctx.reduce("ReduceMean", gx_hat, axes, keepdims=True)
    mean_gx = ctx.reduce("ReduceMean", ctx.emit("Mul", [gx_hat, x_hat]), axes, keepdims=True)
    inner = ctx.emit("Sub", [ctx.emit("Sub", [gx_hat, mean_g]), ctx.emit("Mul", [x_hat, mean_gx])])
    return ctx.emit("Mul", [inner, inv_std], hint=f"{ctx.input(0)}_grad")


def _per_channel(ctx: GradientContext, value: str, rank: int) -> str:
    """A [C] tensor shaped [C, 1, ...] to broadcast against (N, C, *spatial)."""
    return ctx.emit("Unsqueeze", [value, ctx.ints(list(range(1, rank - 1)), "axes")]) if rank > 2 else value


def _known_rank(ctx: GradientContext, x: str) -> int:
    """The rank of X, which these rules need statically."""
    rank = ctx.rank(x)
    if rank is None:
        raise ctx.unsupported("rank", None, "the rank of X must be known statically")
    return rank


@rule("BatchNormalization")
def _batch_normalization(ctx: GradientContext) -> Grads:
    # y = scale * (x - mean) / sqrt(var + epsilon) + B per channel (axis 1); in training mode mean and var are the
    # batch's (and input_mean/input_var only feed the running statistics, which take no gradient).
    x, scale, mean, var = (ctx.input(i) for i in (0, 1, 3, 4))
    g = ctx.grad()
    if g is None or any(ctx.grad(i) is not None for i in range(1, len(ctx.outputs))):
        raise ctx.unsupported(
            "outputs",
            "differentiated",
            "only Y takes a gradient: the running statistics are state, not on the path to a loss",
        )
    rank = _known_rank(ctx, x)
    training = int(ctx.attr("training_mode", 0))
    if ctx.opset < 14 and len([o for o in ctx.outputs if o]) > 1:
        raise ctx.unsupported(
            "outputs",
            len(ctx.outputs),
            "opset 13's BatchNormalization has no training_mode, and its training form (the mean, var, "
            "saved_mean and saved_var outputs) is not differentiated; use opset 14+ with training_mode=1",
        )
    epsilon = float(ctx.attr("epsilon"))
    axes = [0, *range(2, rank)]
    scale_c = _per_channel(ctx, scale, rank)
    dx = dscale = dbias = dmean = dvar = None
    if training:
        _, inv_std, x_hat = _normalized(ctx, x, axes, epsilon)
        if ctx.needs_grad(0):
            gx_hat = ctx.emit("Mul", [g, scale_c])
            dx = _normalized_grad(ctx, gx_hat, x_hat, inv_std, axes)
    else:
        inv_std = ctx.emit("Reciprocal", [ctx.emit("Sqrt", [ctx.emit("Add", [var, ctx.scalar(epsilon, x)])])])
        inv_c = _per_channel(ctx, inv_std, rank)
        x_hat = ctx.emit("Mul", [ctx.emit("Sub", [x, _per_channel(ctx, mean, rank)]), inv_c], hint=f"{x}_hat")
        g_scaled = ctx.emit("Mul", [g, ctx.emit("Mul", [scale_c, inv_c])])  # dY * scale / std
        if ctx.needs_grad(0):
            dx = g_scaled
        if ctx.needs_grad(3):  # dmean = -sum(dY * scale / std)
            dmean = ctx.emit("Neg", [ctx.reduce("ReduceSum", g_scaled, axes, keepdims=False)], hint=f"{mean}_grad")
        if ctx.needs_grad(4):  # dvar = -1/2 sum(dY * scale * (x - mean)) / std^3 = -1/2 sum(g_scaled * x_hat) / std
            summed = ctx.reduce("ReduceSum", ctx.emit("Mul", [g_scaled, x_hat]), axes, keepdims=False)
            dvar = ctx.emit("Mul", [ctx.emit("Mul", [summed, inv_std]), ctx.scalar(-0.5, x)], hint=f"{var}_grad")
    dscale, dbias = _scale_bias_grads(ctx, g, x_hat, axes)
    return [dx, dscale, dbias, dmean, dvar]


def _scale_bias_grads(ctx: GradientContext, g: str, x_hat: str, axes: Sequence[int]) -> tuple[str | None, str | None]:
    """(dscale, dbias) of y = scale * x_hat + bias, scale and bias broadcast along `axes`: each summed over them."""
    dscale = dbias = None
    if ctx.needs_grad(1):
        dscale = ctx.reduce("ReduceSum", ctx.emit("Mul", [g, x_hat]), axes, keepdims=False, hint=f"{ctx.input(1)}_grad")
    if ctx.needs_grad(2):
        dbias = ctx.reduce("ReduceSum", g, axes, keepdims=False, hint=f"{ctx.input(2)}_grad")
    return dscale, dbias


@rule("InstanceNormalization")
def _instance_normalization(ctx: GradientContext) -> Grads:
    # y = scale * x_hat + B per channel, x_hat normalized over the spatial axes of each example and channel
    x, scale = ctx.input(0), ctx.input(1)
    g = ctx.dy
    rank = _known_rank(ctx, x)
    spatial = list(range(2, rank))
    _, inv_std, x_hat = _normalized(ctx, x, spatial, float(ctx.attr("epsilon")))
    dx = None
    if ctx.needs_grad(0):
        dx = _normalized_grad(ctx, ctx.emit("Mul", [g, _per_channel(ctx, scale, rank)]), x_hat, inv_std, spatial)
    return [dx, *_scale_bias_grads(ctx, g, x_hat, [0, *spatial])]


@rule("GroupNormalization")
def _group_normalization(ctx: GradientContext) -> Grads:
    # x viewed as [N, G, C/G * spatial] and normalized over its last axis; then y = scale * x_hat + bias, with scale
    # and bias per group [G] in opset 18, per channel [C] from opset 21. (stash_type only sets the precision of the
    # statistics: the gradient is computed in X's dtype.)
    x, scale = ctx.input(0), ctx.input(1)
    g = ctx.dy
    rank = _known_rank(ctx, x)
    groups = int(ctx.attr("num_groups"))
    grouped = ctx.ints([0, groups, -1], "groups")
    _, inv_std, x_hat = _normalized(ctx, ctx.emit("Reshape", [x, grouped]), [2], float(ctx.attr("epsilon")), x)
    if ctx.opset >= 21:
        x_hat_c = ctx.emit("Reshape", [x_hat, ctx.shape_of(x)])
        gx_hat = ctx.emit("Reshape", [ctx.emit("Mul", [g, _per_channel(ctx, scale, rank)]), grouped])
        dscale, dbias = _scale_bias_grads(ctx, g, x_hat_c, [0, *range(2, rank)])
    else:
        g = ctx.emit("Reshape", [g, grouped])
        gx_hat = ctx.emit("Mul", [g, ctx.emit("Unsqueeze", [scale, ctx.ints([1], "axes")])])
        dscale, dbias = _scale_bias_grads(ctx, g, x_hat, [0, 2])
    dx = None
    if ctx.needs_grad(0):
        dx = ctx.emit("Reshape", [_normalized_grad(ctx, gx_hat, x_hat, inv_std, [2]), ctx.shape_of(x)])
    return [dx, dscale, dbias]


@rule("LayerNormalization")
def _layer_normalization(ctx: GradientContext) -> Grads:
    # y = x_hat * Scale + B, x_hat normalized over the axes from `axis` on. The optional Mean and InvStdDev outputs
    # are differentiated too: they are functions of X.
    x, scale, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    rank = _known_rank(ctx, x)
    axis = int(ctx.attr("axis"))
    axes = list(range(axis % rank, rank))
    g, g_mean, g_inv_std = ctx.grad(0), ctx.grad(1), ctx.grad(2)
    centered, inv_std, x_hat = _normalized(ctx, x, axes, float(ctx.attr("epsilon")))
    y_shape = ctx.shape(x)
    dx = dscale = dbias = None
    if ctx.needs_grad(0):
        terms = []
        if g is not None:
            terms.append(_normalized_grad(ctx, ctx.emit("Mul", [g, scale]), x_hat, inv_std, axes))
        # Mean and InvStdDev have the stash_type's dtype (float32 for a float64 X).
        g_mean = ctx.cast_like(g_mean, x) if g_mean is not None else None
        g_inv_std = ctx.cast_like(g_inv_std, x) if g_inv_std is not None else None
        if g_mean is not None:  # mean = sum(x) / D
            terms.append(ctx.emit("Div", [ctx.emit("Expand", [g_mean, ctx.shape_of(x)]), _group_size(ctx, x, axes)]))
        if g_inv_std is not None:  # d inv_std / dx = -inv_std^3 (x - mean) / D
            cube = ctx.emit("Mul", [inv_std, ctx.emit("Mul", [inv_std, inv_std])])
            factor = ctx.emit("Div", [ctx.emit("Mul", [g_inv_std, cube]), _group_size(ctx, x, axes)])
            terms.append(ctx.emit("Neg", [ctx.emit("Mul", [factor, centered])]))
        dx = ctx.emit("Sum", terms, hint=f"{x}_grad") if len(terms) > 1 else terms[0] if terms else None
    if g is not None and ctx.needs_grad(1):
        dscale = ctx.unbroadcast(ctx.emit("Mul", [g, x_hat]), scale, y_shape)
    if g is not None and bias and ctx.needs_grad(2):
        dbias = ctx.unbroadcast(g, bias, y_shape)
    return [dx, dscale, dbias]


def _group_size(ctx: GradientContext, x: str, axes: Sequence[int]) -> str:
    """How many elements one normalization group holds (the product of `axes`' dimensions), in x's dtype."""
    shape = ctx.static_shape(x)
    if shape is not None:
        size = 1
        for a in axes:
            size *= shape[a]
        return ctx.scalar(float(size), x)
    dims = ctx.emit("Slice", [ctx.shape_of(x), ctx.ints([axes[0]], "starts"), ctx.ints([len(axes) + axes[0]], "ends")])
    return ctx.emit("Cast", [ctx.reduce("ReduceProd", dims, None, keepdims=False)], to=ctx.elem_type(x))
