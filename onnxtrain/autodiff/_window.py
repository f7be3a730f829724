"""Sliding windows (Conv, ConvTranspose, pooling) for their gradient rules: the geometry with pads resolved, the
adjoint of a window sum (ConvTranspose cropped to the input) and a convolution's weight gradient (im2col + one
matrix product). Holds no rules."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from onnxtrain.autodiff._context import GradientContext


@dataclass(frozen=True)
class Window:
    """A window along the spatial axes: output position o reads padded positions o * stride + j * dilation,
    0 <= j < kernel, where padded position p is input position p - begin."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begin: tuple[int, ...]
    end: tuple[int, ...]

    @property
    def extents(self) -> tuple[int, ...]:
        """How many padded positions one window spans."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations, strict=True))

    def attributes(self) -> dict[str, list[int]]:
        return {"strides": list(self.strides), "dilations": list(self.dilations)}


def window(ctx: GradientContext, kernel: Sequence[int], inputs: Sequence[int], outputs: Sequence[int]) -> Window:
    """The window of a Conv or pooling node reading `inputs` positions into `outputs` positions (per spatial
    axis), with `auto_pad` resolved as the ONNX spec does (SAME_UPPER puts the odd padding at the end)."""
    rank = len(kernel)
    strides = tuple(ctx.attr("strides") or [1] * rank)
    dilations = tuple(ctx.attr("dilations") or [1] * rank)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", "VALID"):
        pads = tuple(ctx.attr("pads") or [0] * (2 * rank)) if auto_pad == "NOTSET" else (0,) * (2 * rank)
        begin, end = pads[:rank], pads[rank:]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [
            max(0, (o - 1) * s + (k - 1) * d + 1 - i)
            for o, s, k, d, i in zip(outputs, strides, kernel, dilations, inputs, strict=True)
        ]
        small = tuple(t // 2 for t in totals)
        large = tuple(t - t // 2 for t in totals)
        begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    else:
        raise ctx.unsupported("auto_pad", auto_pad, "expected NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    if any(p < 0 for p in (*begin, *end)):
        raise ctx.unsupported("pads", [*begin, *end], "negative pads")
    return Window(tuple(kernel), strides, dilations, tuple(begin), tuple(end))


def window_transpose(
    ctx: GradientContext, grad: str, weight: str, win: Window, inputs: Sequence[int], outputs: Sequence[int], group: int
) -> str:
    """The adjoint of the window sum y[o] = sum_j w[j] x[o * stride + j * dilation - begin]: ConvTranspose of
    `grad` (N, M, *outputs) with `weight`, cropped or padded at the end to exactly `inputs` positions (the
    positions no window reads get zeros)."""
    crop_end, output_padding, tail = [], [], []
    for i, o, s, e, b in zip(inputs, outputs, win.strides, win.extents, win.begin, strict=True):
        crop = (o - 1) * s + e - b - i  # ConvTranspose's full output less the begin pads, past the input's end
        crop_end.append(max(crop, 0))
        # Positions past the last window get zeros: output_padding where ConvTranspose takes it (below the
        # stride), else a Pad after it.
        output_padding.append(-crop if 0 < -crop < s else 0)
        tail.append(-crop if -crop >= s else 0)
    attributes: dict[str, object] = {"pads": [*win.begin, *crop_end], **win.attributes()}
    if group != 1:
        attributes["group"] = group
    if any(output_padding):
        attributes["output_padding"] = output_padding
    dx = ctx.emit("ConvTranspose", [grad, weight], hint=f"{ctx.input(0)}_grad", **attributes)
    if any(tail):
        pads = ctx.ints([0] * (2 + len(inputs)) + [0, 0, *tail], "pads")
        dx = ctx.emit("Pad", [dx, pads], hint=f"{ctx.input(0)}_grad")
    return dx


def weight_gradient(
    ctx: GradientContext,
    a: str,
    image: str,
    image_size: Sequence[int],
    length: Sequence[int],
    win: Window,
    group: int,
    channels: tuple[int, int],
) -> str:
    """w_grad[p, q, *k] = sum over n and l of a[n, p, *l] * image_padded[n, q, *(l * stride + k * dilation)]
    within each group: a convolution's weight gradient (a = dY, image = X) and a transposed convolution's (a = X,
    image = dY). `channels` = (P, Q) of a and image; the result is (P, Q / group, *kernel).

    ONNX has no op for it. Per kernel offset, the image's strided Slice (channels last, so that it reshapes to
    (group, N * L, Q / group) without a copy) meets `a` in one batched MatMul over the groups: no im2col tensor
    (N * L * K * Q elements, 16.6 MB for conv2 of the LeNet in tests) and no transposed copy per group. It measured
    faster than im2col + one Gemm and than a Conv with the batch as channels (docs/measurements.md).
    """
    p, q = channels
    rank = len(length)
    needed = [(n - 1) * s + e for n, s, e in zip(length, win.strides, win.extents, strict=True)]
    end = [max(0, n - b - i) for n, b, i in zip(needed, win.begin, image_size, strict=True)]
    if any(win.begin) or any(end):
        image = ctx.emit("Pad", [image, ctx.ints([0, 0, *win.begin, 0, 0, *end], "pads")], hint="im2col_pad")
    # (N, Q, *S) -> (group, N, *S, Q / group) and (N, P, *L) -> (group, P / group, N * L)
    padded = [i + b + e for i, b, e in zip(image_size, win.begin, end, strict=True)]
    image = ctx.emit("Reshape", [image, ctx.ints([0, group, q // group, *padded], "shape")], hint="im2col_groups")
    image = ctx.emit("Transpose", [image], hint="im2col_channels_last", perm=[1, 0, *range(3, 3 + rank), 2])
    a = ctx.emit("Reshape", [a, ctx.ints([0, group, p // group, -1], "shape")])
    a = ctx.emit("Transpose", [a], perm=[1, 2, 0, 3])
    a = ctx.emit("Reshape", [a, ctx.ints([group, p // group, -1], "shape")], hint="weight_grad_lhs")
    axes = ctx.ints(list(range(2, 2 + rank)), "axes")
    steps = ctx.ints(list(win.strides), "steps")
    rows = ctx.ints([group, -1, q // group], "shape")
    products = []
    for offset in itertools.product(*(range(k) for k in win.kernel)):
        starts = [j * d for j, d in zip(offset, win.dilations, strict=True)]
        stops = [st + (n - 1) * s + 1 for st, n, s in zip(starts, length, win.strides, strict=True)]
        patch = ctx.emit(
            "Slice", [image, ctx.ints(starts, "starts"), ctx.ints(stops, "ends"), axes, steps], hint="im2col_slice"
        )
        product = ctx.emit("MatMul", [a, ctx.emit("Reshape", [patch, rows])], hint="weight_grad_offset")
        products.append(ctx.emit("Unsqueeze", [product, ctx.ints([-1], "axis")]))
    w_grad = products[0] if len(products) == 1 else ctx.emit("Concat", products, hint="weight_grad", axis=-1)
    return ctx.emit("Reshape", [w_grad, ctx.ints([p, q // group, *win.kernel], "shape")], hint="weight_grad")
