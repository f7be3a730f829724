"""Gradient rules of the pooling ops: MaxPool (from Indices, never a mask of ties: the output it asks the forward
for, or for 2x2 windows at stride 2 the same Indices derived from pools without them; by MaxUnpool where windows do
not overlap, else ScatterElements), AveragePool (the adjoint window sum with each
window's divisor), GlobalAveragePool and GlobalMaxPool."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule
from onnxtrain.autodiff._window import Window, window, window_transpose

Grads = list[str | None]

# ScatterElements takes reduction="add" (several windows that chose one element add up) from opset 16.
_SCATTER_ADD_FROM = 16


def _flat_zeros(ctx: GradientContext, x: str) -> str:
    """Zeros of `x`'s dtype with as many elements as `x`, 1-D."""
    static = ctx.static_shape(x)
    size = (
        ctx.ints([int(np.prod(static))], "size")
        if static is not None
        else ctx.emit("Reshape", [ctx.emit("Size", [x]), ctx.ints([1], "shape")])
    )
    zero = numpy_helper.from_array(np.zeros(1, ctx.dtype(x)))
    return ctx.emit("ConstantOfShape", [size], hint=f"{x}_zeros", value=zero)


def _scatter(ctx: GradientContext, zeros: str, indices: str, updates: str, add: bool) -> str:
    flat = ctx.ints([-1], "shape")
    indices, updates = ctx.emit("Reshape", [indices, flat]), ctx.emit("Reshape", [updates, flat])
    attributes = {"reduction": "add"} if add else {}
    return ctx.emit("ScatterElements", [zeros, indices, updates], hint=f"{ctx.input(0)}_grad", **attributes)


def _overlap_period(win: Window) -> tuple[int, ...]:
    """Per axis, how many consecutive windows may share an element: windows o and o + period never do."""
    return tuple(-(-e // s) for e, s in zip(win.extents, win.strides, strict=True))


@rule("MaxPool")
def _max_pool(ctx: GradientContext) -> Grads:
    # dX[i] = sum of dY over the windows whose maximum is element i, as the Indices output names it: one element
    # per window even where the window's maxima tie (a mask Equal(x, max) would route to every tied one).
    x, g = ctx.input(0), ctx.grad()
    assert g is not None
    if int(ctx.attr("storage_order")) != 0:
        raise ctx.unsupported("storage_order", ctx.attr("storage_order"), "expected 0 (row-major Indices)")
    if ctx.grad(1) is not None:
        raise ctx.unsupported("Indices", "differentiated", "the Indices output takes no gradient")
    kernel = tuple(ctx.attr("kernel_shape"))
    inputs = ctx.spatial_dims(x, "X")
    win = window(ctx, kernel, inputs, ctx.spatial_dims(ctx.output(0), "Y"))
    # flat over N*C*H*W of the unpadded input, row-major
    indices = _pair_indices(ctx, x, win) or ctx.forward_output(1)
    unpool = _max_unpool(ctx, g, indices, win, inputs)
    if unpool is not None:
        return [unpool]
    zeros = _flat_zeros(ctx, x)
    if ctx.opset >= _SCATTER_ADD_FROM:
        dx = _scatter(ctx, zeros, indices, g, add=True)
    else:
        # Without ScatterElements' reduction, the windows are split into groups (every period-th along each axis)
        # that share no element, one scatter each, and the groups' scatters are summed.
        periods = _overlap_period(win)
        parts = []
        axes = ctx.ints(list(range(2, 2 + len(kernel))), "axes")
        steps = ctx.ints(list(periods), "steps")
        big = ctx.ints([np.iinfo(np.int64).max] * len(kernel), "ends")
        for start in itertools.product(*(range(p) for p in periods)):
            if not any(start) and all(p == 1 for p in periods):
                parts.append(_scatter(ctx, zeros, indices, g, add=False))
                continue
            starts = ctx.ints(list(start), "starts")
            group_g = ctx.emit("Slice", [g, starts, big, axes, steps])
            group_i = ctx.emit("Slice", [indices, starts, big, axes, steps])
            parts.append(_scatter(ctx, zeros, group_i, group_g, add=False))
        dx = parts[0] if len(parts) == 1 else ctx.emit("Sum", parts, hint=f"{x}_grad")
    return [ctx.emit("Reshape", [dx, ctx.shape_of(x)], hint=f"{x}_grad")]


def _pair_indices(ctx: GradientContext, x: str, win: Window) -> str | None:
    """MaxPool's Indices for 2x2 windows at stride 2 over float32 NCHW maps of known, even height and width, from
    the pooled output and three pools without Indices, which ONNX Runtime runs much faster than one with them: the
    window's first element (row-major) that equals the maximum, as MaxPool's Indices name it, ties included. On
    fashion-cnn's second pool, one thread: the gradient step 37.3 -> 35.6 ms (docs/measurements.md). None where
    that does not apply."""
    shape = ctx.shape(x)
    if (win.kernel, win.strides, win.dilations) != ((2, 2), (2, 2), (1, 1)) or any((*win.begin, *win.end)):
        return None
    if shape is None or len(shape) != 4 or ctx.dtype(x) != np.float32:
        return None
    channels, height, width = shape[1:]
    if not (isinstance(channels, int) and isinstance(height, int) and isinstance(width, int)):
        return None
    if min(channels, height, width) <= 0 or height % 2 or width % 2:
        return None
    pooled = ctx.output(0)

    def attains(kernel: list[int]) -> str:  # 1 where the pool of the window's `kernel` corner attains the maximum
        part = ctx.emit("MaxPool", [x], hint="corner", kernel_shape=kernel, strides=[2, 2])
        return ctx.cast_like(ctx.emit("Equal", [part, pooled]), pooled)

    first, top, left = attains([1, 1]), attains([1, 2]), attains([2, 1])
    one = ctx.scalar(1.0, pooled)
    # Offsets within the window: 0 where the first element attains it, else 1 where the top row does, else width
    # where the left column does, else width + 1. Small whole numbers: exact in float32.
    rest = ctx.emit("Sub", [ctx.scalar(width + 1.0, pooled), left])
    below = ctx.emit("Add", [top, ctx.emit("Mul", [ctx.emit("Sub", [one, top]), rest])])
    offset = ctx.emit("Mul", [ctx.emit("Sub", [one, first]), below])
    # Each window's first element: (n * C + c) * H * W + 2i * W + 2j
    plane = np.arange(channels, dtype=np.int64)[:, None, None] * height * width
    rows = np.arange(0, height, 2, dtype=np.int64)[None, :, None] * width
    corners = ctx.constant(plane + rows + np.arange(0, width, 2, dtype=np.int64)[None, None, :], "corners")
    size = ctx.constant(np.array(channels * height * width, np.int64), "example_size")  # Range takes scalars
    end = ctx.emit("Mul", [ctx.emit("Squeeze", [ctx.dim(x, 0), ctx.ints([0])]), size])
    starts = ctx.emit("Range", [ctx.constant(np.array(0, np.int64), "zero"), end, size], hint="example_starts")
    starts = ctx.emit("Reshape", [starts, ctx.ints([-1, 1, 1, 1])])
    first_elements = ctx.emit("Add", [starts, corners])
    return ctx.emit("Add", [first_elements, ctx.emit("Cast", [offset], to=onnx.TensorProto.INT64)], hint="indices")


def _max_unpool(ctx: GradientContext, g: str, indices: str, win: Window, inputs: tuple[int, ...]) -> str | None:
    """dX as MaxUnpool(dY, Indices) where that is exact and ONNX Runtime runs it: float32 (its only CPU kernel),
    windows that share no element (MaxUnpool writes, it does not add), and an input no smaller than the size
    MaxUnpool infers from the kernel, strides and pads (it refuses a smaller output_shape). Faster than zeros and
    ScatterElements (docs/measurements.md). None where it does not apply."""
    if ctx.dtype(ctx.input(0)) != np.float32 or any(p != 1 for p in _overlap_period(win)):
        return None
    outputs = ctx.spatial_dims(ctx.output(0), "Y")
    inferred = [
        (o - 1) * s + k - b - e
        for o, s, k, b, e in zip(outputs, win.strides, win.kernel, win.begin, win.end, strict=True)
    ]
    if any(n > i for n, i in zip(inferred, inputs, strict=True)):
        return None
    attributes = {"kernel_shape": list(win.kernel), "strides": list(win.strides), "pads": [*win.begin, *win.end]}
    x = ctx.input(0)
    return ctx.emit("MaxUnpool", [g, indices, ctx.shape_of(x)], hint=f"{x}_grad", **attributes)


def _divisors(win: Window, inputs: tuple[int, ...], outputs: tuple[int, ...], include_pad: bool) -> np.ndarray:
    """Each output position's divisor: the window's elements inside the input (or inside the padded input)."""
    per_axis = []
    for i, o, s, k, d, b, e in zip(
        inputs, outputs, win.strides, win.kernel, win.dilations, win.begin, win.end, strict=True
    ):
        positions = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - b
        low, high = (-b, i + e) if include_pad else (0, i)
        per_axis.append(((positions >= low) & (positions < high)).sum(axis=1))
    counts = np.ones((), np.int64)
    for c in per_axis:
        counts = np.multiply.outer(counts, c)
    return np.maximum(counts, 1)  # a window in the padding alone reads nothing: its divisor does not matter


@rule("AveragePool")
def _average_pool(ctx: GradientContext) -> Grads:
    # y[o] = sum over the window of x / divisor[o]: dX is the adjoint window sum (ConvTranspose with a kernel of
    # ones, the batch and channels folded into one axis) of dY / divisor.
    x, g = ctx.input(0), ctx.grad()
    assert g is not None
    kernel = tuple(ctx.attr("kernel_shape"))
    inputs, outputs = ctx.spatial_dims(x, "X"), ctx.spatial_dims(ctx.output(0), "Y")
    win = window(ctx, kernel, inputs, outputs)
    divisors = _divisors(win, inputs, outputs, bool(ctx.attr("count_include_pad")))
    dtype = ctx.dtype(x)
    if np.all(divisors == divisors.flat[0]):
        scaled = ctx.emit("Mul", [g, ctx.scalar(1.0 / float(divisors.flat[0]), x)])
    else:
        scaled = ctx.emit("Mul", [g, ctx.constant((1.0 / divisors).astype(dtype), "inverse_divisors")])
    folded = ctx.emit("Reshape", [scaled, ctx.ints([-1, 1, *outputs], "shape")])
    ones = ctx.constant(np.ones((1, 1, *kernel), dtype), "ones_kernel")
    dx = window_transpose(ctx, folded, ones, win, inputs, outputs, group=1)
    return [ctx.emit("Reshape", [dx, ctx.shape_of(x)], hint=f"{x}_grad")]


@rule("GlobalAveragePool")
def _global_average_pool(ctx: GradientContext) -> Grads:
    x, g = ctx.input(0), ctx.grad()
    assert g is not None
    shape = ctx.shape(x)
    sizes = shape[2:] if shape is not None else None
    if sizes is not None and all(isinstance(d, int) for d in sizes):
        share = ctx.emit("Mul", [g, ctx.scalar(1.0 / float(np.prod(sizes)), x)])  # type: ignore[arg-type]
    else:
        share = ctx.emit("Div", [g, ctx.emit("Div", [ctx.count(x, x), ctx.count(ctx.output(0), x)])])
    return [ctx.emit("Expand", [share, ctx.shape_of(x)], hint=f"{x}_grad")]


@rule("GlobalMaxPool")
def _global_max_pool(ctx: GradientContext) -> Grads:
    # The gradient goes to the first maximum of each (n, c) map (ArgMax picks the first), never to all tied ones.
    x, g = ctx.input(0), ctx.grad()
    assert g is not None
    shape = ctx.shape(x)
    if shape is None:
        raise ctx.unsupported("rank", None, "the rank of X must be known statically")
    maps = ctx.emit("Reshape", [x, ctx.ints([0, 0, -1], "shape")])
    first = ctx.emit("ArgMax", [maps], axis=2, keepdims=1)
    zeros = ctx.emit("Reshape", [ctx.zeros_like(x), ctx.ints([0, 0, -1], "shape")])
    updates = ctx.emit("Reshape", [g, ctx.ints([0, 0, 1], "shape")])
    dx = ctx.emit("ScatterElements", [zeros, first, updates], axis=2)
    return [ctx.emit("Reshape", [dx, ctx.shape_of(x)], hint=f"{x}_grad")]
