"""Gradient rules of the convolutions: Conv and ConvTranspose (1-D, 2-D, 3-D; strides, pads and auto_pad,
dilations, groups, bias). Each one's input gradient is the other op; weight gradients are im2col + one matrix
product (`_window.weight_gradient`)."""

from __future__ import annotations

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule
from onnxtrain.autodiff._window import Window, spatial, weight_gradient, window, window_transpose

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
    inputs, outputs = spatial(ctx, x, "X"), spatial(ctx, ctx.output(0), "Y")
    win = window(ctx, kernel, inputs, outputs)
    group = int(ctx.attr("group"))
    w_shape = ctx.static_shape(w)
    assert w_shape is not None
    dx = dw = db = None
    if ctx.needs_grad(0):
        dx = window_transpose(ctx, g, w, win, inputs, outputs, group)
    if ctx.needs_grad(1):
        dw = weight_gradient(ctx, g, x, inputs, outputs, win, group, (w_shape[0], w_shape[1] * group))
    if b and ctx.needs_grad(2):
        db = _bias_grad(ctx, g, 2 + len(kernel))
    return [dx, dw, db]


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
    inputs, outputs = spatial(ctx, x, "X"), spatial(ctx, ctx.output(0), "Y")
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
