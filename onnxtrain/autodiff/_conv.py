"""Gradient rules of the convolutions: Conv and ConvTranspose (1-D, 2-D, 3-D; strides, pads and auto_pad,
dilations, groups, bias). Each one's input gradient is the other op; weight gradients are matrix products of
strided slices (`_ungrouped_weight_gradient` for a Conv of one group, `_window.weight_gradient` otherwise)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule
from onnxtrain.autodiff._window import Window, weight_gradient, window, window_transpose

Grads = list[str | None]


def _kernel(ctx: GradientContext, w: str) -> tuple[int, ...]:
    shape = ctx.static_shape(w)
    if shape is None:
        raise ctx.unsupported("W shape", ctx.shape(w), "the gradient needs the weight's shape known statically")
    kernel = tuple(ctx.attr("kernel_shape") or shape[2:])
    if kernel != tuple(shape[2:]):
        raise ctx.unsupported("kernel_shape", list(kernel), f"it differs from the weight's shape {shape}")
    return kernel


def _bias_grad(ctx: GradientContext, g: str, rank: int) -> str:
    return ctx.reduce("ReduceSum", g, [0, *range(2, rank)], keepdims=False, hint=f"{ctx.input(2)}_grad")


@rule("Conv")
def _conv(ctx: GradientContext) -> Grads:
    # y[n, m, o] = sum over c in m's group and j of w[m, c, j] x[n, c, o * stride + j * dilation - begin] + b[m]
    x, w, b = ctx.input(0), ctx.input(1), ctx.input(2)
    g = ctx.grad()
    assert g is not None
    kernel = _kernel(ctx, w)
    inputs, outputs = ctx.spatial_dims(x, "X"), ctx.spatial_dims(ctx.output(0), "Y")
    win = window(ctx, kernel, inputs, outputs)
    group = int(ctx.attr("group"))
    w_shape = ctx.static_shape(w)
    assert w_shape is not None
    dx = dw = db = None
    if ctx.needs_grad(0):
        dx = window_transpose(ctx, g, w, win, inputs, outputs, group)
    if ctx.needs_grad(1):
        channels = (w_shape[0], w_shape[1] * group)
        if group == 1:
            dw = _ungrouped_weight_gradient(ctx, g, x, inputs, outputs, win, channels)
        else:
            dw = weight_gradient(ctx, g, x, inputs, outputs, win, group, channels)
    if b and ctx.needs_grad(2):
        db = _bias_grad(ctx, g, 2 + len(kernel))
    return [dx, dw, db]


# Up to this many rows (input channels x kernel offsets), the weight gradient stacks the offsets' slices into one
# matrix (im2col) for a single Gemm; above it, one Gemm per offset (docs/measurements.md).
_IM2COL_ROWS = 64


def _ungrouped_weight_gradient(
    ctx: GradientContext,
    g: str,
    x: str,
    image_size: Sequence[int],
    length: Sequence[int],
    win: Window,
    channels: tuple[int, int],
) -> str:
    """A Conv's weight gradient for group 1: w_grad[p, q, *k] = sum over n and l of g[n, p, *l] *
    x_padded[n, q, *(l * stride + k * dilation)].

    Both operands move the batch next to the spatial axes, (C, N, *S): a Transpose that copies whole planes, where
    `_window.weight_gradient`'s channels-last layout moves every element. Each kernel offset's strided Slice of x
    then reshapes to (Q, N * L) and meets g's (P, N * L) in a Gemm with transB; with few input channels the
    slices are stacked first (im2col, Q * K rows) for one Gemm, as one Gemm per offset would reread g K times to
    produce K thin columns.
    """
    p, q = channels
    rank = len(length)
    needed = [(n - 1) * s + e for n, s, e in zip(length, win.strides, win.extents, strict=True)]
    end = [max(0, n - b - i) for n, b, i in zip(needed, win.begin, image_size, strict=True)]
    if any(win.begin) or any(end):
        x = ctx.emit("Pad", [x, ctx.ints([0, 0, *win.begin, 0, 0, *end], "pads")], hint="im2col_pad")
    batch_second = [1, 0, *range(2, 2 + rank)]
    x = ctx.emit("Transpose", [x], hint="im2col_batch_second", perm=batch_second)
    g = ctx.emit("Transpose", [g], hint="weight_grad_batch_second", perm=batch_second)
    g = ctx.emit("Reshape", [g, ctx.ints([p, -1], "shape")], hint="weight_grad_lhs")
    axes = ctx.ints(list(range(2, 2 + rank)), "axes")
    steps = ctx.ints(list(win.strides), "steps")
    rows = ctx.ints([q, -1], "shape")
    patches = []
    for offset in itertools.product(*(range(k) for k in win.kernel)):
        starts = [j * d for j, d in zip(offset, win.dilations, strict=True)]
        stops = [st + (n - 1) * s + 1 for st, n, s in zip(starts, length, win.strides, strict=True)]
        patch = ctx.emit(
            "Slice", [x, ctx.ints(starts, "starts"), ctx.ints(stops, "ends"), axes, steps], hint="im2col_slice"
        )
        patches.append(ctx.emit("Reshape", [patch, rows]))
    count = len(patches)
    if q * count <= _IM2COL_ROWS:
        cols = patches[0] if count == 1 else ctx.emit("Concat", patches, hint="im2col", axis=0)
        w_grad = ctx.emit("Gemm", [g, cols], hint="weight_grad", transB=1)  # (P, K * Q), offset-major
        w_grad = ctx.emit("Reshape", [w_grad, ctx.ints([p, count, q], "shape")])
        w_grad = ctx.emit("Transpose", [w_grad], hint="weight_grad", perm=[0, 2, 1])
    else:
        products = [ctx.emit("Gemm", [g, patch], hint="weight_grad_offset", transB=1) for patch in patches]
        products = [ctx.emit("Unsqueeze", [product, ctx.ints([-1], "axis")]) for product in products]
        w_grad = products[0] if count == 1 else ctx.emit("Concat", products, hint="weight_grad", axis=-1)
    return ctx.emit("Reshape", [w_grad, ctx.ints([p, q, *win.kernel], "shape")], hint="weight_grad")


def _transpose_window(
    ctx: GradientContext, kernel: tuple[int, ...], inputs: tuple[int, ...], outputs: tuple[int, ...]
) -> Window:
    """ConvTranspose's window seen from its output: y_full[i * stride + j * dilation] += x[i] w[j], then `begin`
    positions cropped at the start and `end` at the end (output_padding counted in `end` as negative crop)."""
    rank = len(kernel)
    strides = tuple(ctx.attr("strides") or [1] * rank)
    dilations = tuple(ctx.attr("dilations") or [1] * rank)
    output_padding = tuple(ctx.attr("output_padding") or [0] * rank)
    if any(p >= s for p, s in zip(output_padding, strides, strict=True)):
        raise ctx.unsupported("output_padding", list(output_padding), f"expected each below its stride {strides}")
    full = [
        (i - 1) * s + (k - 1) * d + 1 + p
        for i, s, k, d, p in zip(inputs, strides, kernel, dilations, output_padding, strict=True)
    ]
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET" and not ctx.attr("output_shape"):
        pads = tuple(ctx.attr("pads") or [0] * (2 * rank))
        begin = pads[:rank]
    elif auto_pad in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        # The output's size decides the total padding; as the ONNX spec says, the odd one goes at the end for
        # SAME_UPPER, at the start otherwise (an output_shape without auto_pad included).
        totals = [f - o for f, o in zip(full, outputs, strict=True)]
        begin = tuple(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals)
    else:
        raise ctx.unsupported("auto_pad", auto_pad, "expected NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    end = tuple(f - b - o for f, b, o in zip(full, begin, outputs, strict=True))
    if any(p < 0 for p in (*begin, *end)):
        raise ctx.unsupported("pads", [*begin, *end], "negative pads (an output_shape larger than the full output)")
    return Window(kernel, strides, dilations, begin, end)


@rule("ConvTranspose")
def _conv_transpose(ctx: GradientContext) -> Grads:
    # The adjoint of Conv: dX is a Conv of dY with the same weight, window and groups.
    x, w, b = ctx.input(0), ctx.input(1), ctx.input(2)
    g = ctx.grad()
    assert g is not None
    kernel = _kernel(ctx, w)
    inputs, outputs = ctx.spatial_dims(x, "X"), ctx.spatial_dims(ctx.output(0), "Y")
    win = _transpose_window(ctx, kernel, inputs, outputs)
    group = int(ctx.attr("group"))
    w_shape = ctx.static_shape(w)
    assert w_shape is not None
    dx = dw = db = None
    if ctx.needs_grad(0):
        # Conv reads dY's positions i * stride + j * dilation - begin; those past its end (output_padding) are
        # read as the zero padding `end` (clipped at 0) gives.
        pads = [*win.begin, *(max(e, 0) for e in win.end)]
        attributes: dict[str, object] = {"pads": pads, **win.attributes()}
        if group != 1:
            attributes["group"] = group
        dx = ctx.emit("Conv", [g, w], hint=f"{x}_grad", **attributes)
    if ctx.needs_grad(1):
        dw = weight_gradient(ctx, x, g, outputs, inputs, win, group, (w_shape[0], w_shape[1] * group))
    if b and ctx.needs_grad(2):
        db = _bias_grad(ctx, g, 2 + len(kernel))
    return [dx, dw, db]
