"""The gradient rule of Resize (nearest, linear and cubic modes; every coordinate transformation but
tf_crop_and_resize): with static sizes, Resize is one constant interpolation matrix per axis, so its gradient
applies each matrix's transpose (a MatMul), or sums blocks (Reshape + ReduceSum) where nearest copies each input
element to a block of consecutive outputs."""

from __future__ import annotations

import numpy as np

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def _source_positions(mode: str, outputs: int, inputs: int, scale: float) -> np.ndarray | None:
    """Where in the input each output position samples (coordinate_transformation_mode); None: unknown mode."""
    x = np.arange(outputs, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = inputs / 2 * (1 - outputs / (scale * inputs))
        return offset + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if outputs > 1 else np.zeros(1)
    if mode == "align_corners":
        return x * (inputs - 1) / (outputs - 1) if outputs > 1 else np.zeros(1)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    return None


def _nearest(positions: np.ndarray, inputs: int, rounding: str) -> np.ndarray:
    rounded = {
        "round_prefer_floor": np.ceil(positions - 0.5),
        "round_prefer_ceil": np.floor(positions + 0.5),
        "floor": np.floor(positions),
        "ceil": np.ceil(positions),
    }[rounding]
    matrix = np.zeros((len(positions), inputs))
    matrix[np.arange(len(positions)), np.clip(rounded, 0, inputs - 1).astype(np.int64)] = 1.0
    return matrix


def _linear(positions: np.ndarray, inputs: int) -> np.ndarray:
    positions = np.clip(positions, 0, inputs - 1)
    left = np.floor(positions).astype(np.int64)
    frac = positions - left
    matrix = np.zeros((len(positions), inputs))
    rows = np.arange(len(positions))
    np.add.at(matrix, (rows, left), 1 - frac)
    np.add.at(matrix, (rows, np.minimum(left + 1, inputs - 1)), frac)
    return matrix


def _cubic(positions: np.ndarray, inputs: int, a: float, exclude_outside: bool) -> np.ndarray:
    left = np.floor(positions).astype(np.int64)
    t = positions - left
    weights = [
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
        ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
    ]
    taps = [left - 1, left, left + 1, left + 2]
    if exclude_outside:
        weights = [np.where((i >= 0) & (i < inputs), w, 0.0) for w, i in zip(weights, taps, strict=True)]
        total = sum(weights)
        weights = [w / total for w in weights]
    matrix = np.zeros((len(positions), inputs))
    rows = np.arange(len(positions))
    for w, i in zip(weights, taps, strict=True):
        np.add.at(matrix, (rows, np.clip(i, 0, inputs - 1)), w)
    return matrix


def _block(matrix: np.ndarray) -> int | None:
    """r when `matrix` copies input i to outputs i * r ... i * r + r - 1 (nearest upsampling by a whole factor)."""
    outputs, inputs = matrix.shape
    if outputs % inputs:
        return None
    r = outputs // inputs
    return r if np.array_equal(matrix, np.repeat(np.eye(inputs), r, axis=0)) else None


def _scales(ctx: GradientContext, rank: int, in_shape: tuple, out_shape: tuple) -> list[float]:
    """The scale of every axis, as the coordinate transformation reads it."""
    scales_in, sizes_in = ctx.input(2), ctx.input(3)
    axes = [int(a) % rank for a in (ctx.attr("axes") or range(rank))]
    given = ctx.constant_value(scales_in) if scales_in else None
    if scales_in and given is None:
        raise ctx.unsupported("scales", "computed at run time", "the gradient needs constant scales")
    scales = [1.0] * rank
    if given is not None and given.size:
        for axis, s in zip(axes, given.tolist(), strict=True):
            scales[axis] = float(s)
        return scales
    if not sizes_in:
        raise ctx.unsupported("scales", None, "expected scales or sizes")
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ctx.unsupported("keep_aspect_ratio_policy", ctx.attr("keep_aspect_ratio_policy"), "expected stretch")
    for axis in axes:
        if not isinstance(in_shape[axis], int) or not isinstance(out_shape[axis], int):
            raise ctx.unsupported("sizes", None, f"axis {axis}'s sizes must be known statically")
        scales[axis] = out_shape[axis] / in_shape[axis]
    return scales


@rule("Resize")
def _resize(ctx: GradientContext) -> Grads:
    x, g = ctx.input(0), ctx.grad()
    assert g is not None
    mode, transform = ctx.attr("mode"), ctx.attr("coordinate_transformation_mode")
    in_shape, out_shape = ctx.shape(x), ctx.shape(ctx.output(0))
    if in_shape is None or out_shape is None:
        raise ctx.unsupported("rank", None, "the gradient needs the shapes of X and Y")
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.unsupported("mode", mode, "expected nearest, linear or cubic")
    if transform == "tf_crop_and_resize" or _source_positions(transform, 1, 1, 1.0) is None:
        raise ctx.unsupported("coordinate_transformation_mode", transform, "a region of interest is not supported")
    rank = len(in_shape)
    scales = _scales(ctx, rank, in_shape, out_shape)
    if int(ctx.attr("antialias", 0)) and mode != "nearest" and any(s < 1 for s in scales):
        raise ctx.unsupported("antialias", 1, "downsampling with antialias is not supported")
    dtype = ctx.dtype(x)
    for axis in reversed(range(rank)):  # last axis first: the axes after `axis` then have X's sizes
        inputs, outputs = in_shape[axis], out_shape[axis]
        if not isinstance(inputs, int) or not isinstance(outputs, int):
            if scales[axis] == 1.0 and all(
                np.array_equal(_matrix(ctx, mode, transform, n, n, 1.0), np.eye(n)) for n in range(1, 5)
            ):
                continue  # not resized (the batch, say): the identity at every size
            raise ctx.unsupported("shape", tuple(in_shape), f"axis {axis} is resized but its size is not static")
        matrix = _matrix(ctx, mode, transform, outputs, inputs, scales[axis])
        if matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(inputs)):
            continue
        g = _apply_transpose(ctx, g, matrix.astype(dtype), axis, rank, in_shape)
    return [g]


def _matrix(ctx: GradientContext, mode: str, transform: str, outputs: int, inputs: int, scale: float) -> np.ndarray:
    """The (outputs, inputs) interpolation matrix of one axis."""
    positions = _source_positions(transform, outputs, inputs, scale)
    assert positions is not None
    if mode == "nearest":
        return _nearest(positions, inputs, ctx.attr("nearest_mode"))
    if mode == "linear":
        return _linear(positions, inputs)
    return _cubic(positions, inputs, float(ctx.attr("cubic_coeff_a")), bool(ctx.attr("exclude_outside")))


def _apply_transpose(ctx: GradientContext, g: str, matrix: np.ndarray, axis: int, rank: int, in_shape: tuple) -> str:
    """sum over j of matrix[j, i] * g[..., j, ...] along `axis`: the adjoint of y = matrix @ x along that axis."""
    later = in_shape[axis + 1 :]
    r = _block(matrix)
    if r is not None and all(isinstance(d, int) for d in later):
        shape = [0] * axis + [matrix.shape[1], r, *later]  # 0 keeps the dimension (the batch's, say)
        blocks = ctx.emit("Reshape", [g, ctx.ints(shape, "shape")])
        return ctx.reduce("ReduceSum", blocks, [axis + 1], keepdims=False, hint="resize_grad")
    if axis == rank - 1:
        return ctx.emit("MatMul", [g, ctx.constant(matrix, "interpolation")], hint="resize_grad")
    if axis == rank - 2:
        return ctx.emit("MatMul", [ctx.constant(matrix.T.copy(), "interpolation_t"), g], hint="resize_grad")
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved = ctx.emit("Transpose", [g], perm=perm)
    moved = ctx.emit("MatMul", [moved, ctx.constant(matrix, "interpolation")])
    return ctx.emit("Transpose", [moved], hint="resize_grad", perm=perm)
