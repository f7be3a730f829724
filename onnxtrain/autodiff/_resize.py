"""The gradient rule of Resize (nearest, linear and cubic modes; every coordinate transformation but
tf_crop_and_resize): with static sizes, Resize is one constant interpolation matrix per axis, so its gradient
applies each matrix's transpose (a MatMul), or sums blocks (Reshape + ReduceSum) where nearest copies each input
element to a block of consecutive outputs. An axis that sizes keeps as X has it (the batch, as exporters take it
from Shape(X) at run time) is not resized and may have any size."""

from __future__ import annotations

import numpy as np
import onnx

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


def _scales(ctx: GradientContext, rank: int, in_shape: tuple, out_shape: tuple) -> tuple[list[float], list]:
    """The scale of every axis, as the coordinate transformation reads it, and Y's size along each axis as far as
    known (from sizes where shape inference did not say)."""
    scales_in, sizes_in = ctx.input(2), ctx.input(3)
    axes = [int(a) % rank for a in (ctx.attr("axes") or range(rank))]
    given = ctx.constant_value(scales_in) if scales_in else None
    if scales_in and given is None:
        raise ctx.unsupported("scales", "computed at run time", "the gradient needs constant scales")
    scales, out_sizes = [1.0] * rank, list(out_shape)
    if given is not None and given.size:
        for axis, s in zip(axes, given.tolist(), strict=True):
            scales[axis] = float(s)
        return scales, out_sizes
    if not sizes_in:
        raise ctx.unsupported("scales", None, "expected scales or sizes")
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ctx.unsupported("keep_aspect_ratio_policy", ctx.attr("keep_aspect_ratio_policy"), "expected stretch")
    sources = _size_sources(ctx, sizes_in, {}, depth=0)
    for i, axis in enumerate(axes):
        source = sources[i] if sources is not None and len(sources) == len(axes) else None
        inputs, outputs = in_shape[axis], out_shape[axis]
        if (isinstance(source, tuple) and _same_dim(ctx, source, inputs, axis)) or (
            isinstance(inputs, str) and outputs == inputs  # shape inference proved Y's size there is X's
        ):
            out_sizes[axis] = inputs  # sizes keeps X's size here (the batch, as Shape(X) gives it): not resized
            continue
        known = _known_size(ctx, source)  # a constant, or another value's static size (a U-Net's skip)
        outputs = known if known is not None else outputs
        if not isinstance(inputs, int) or not isinstance(outputs, int):
            raise ctx.unsupported(
                "sizes",
                _describe(source),
                f"axis {axis} is resized from {inputs!r} to {outputs!r}: the gradient needs both sizes statically, "
                "or sizes taking that axis from Shape(X)",
            )
        scales[axis], out_sizes[axis] = outputs / inputs, outputs
    return scales, out_sizes


# What one element of Resize's sizes is: a number, (value, axis) for a dimension of a value, None if unknown.
SizeSource = int | tuple[str, int] | None


def _size_sources(ctx: GradientContext, value: str, producers: dict, depth: int) -> list[SizeSource] | None:
    """Where each element of the 1-D int64 `value` comes from, followed through the shape arithmetic exporters emit
    for sizes (TorchScript: Concat(Slice(Shape(X), 0, 2), [h, w]); dynamo: Concat(Shape(X, end=2), [h, w]));
    None where the length is unknown."""
    constant = ctx.constant_value(value)
    if constant is not None:
        return [int(v) for v in constant.reshape(-1)]
    if depth > 16:
        return None
    if not producers:
        producers.update({o: n for n in ctx.builder.nodes for o in n.output})
    node = producers.get(value)
    if node is None:
        return None
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    inputs = list(node.input)
    if node.op_type == "Shape":
        rank = ctx.rank(inputs[0])
        if rank is None:
            return None
        start, end = int(attributes.get("start", 0)), int(attributes.get("end", rank))
        return [(inputs[0], k) for k in range(rank)[slice(start, end)]]
    if node.op_type in ("Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze"):  # same elements, same order
        return _size_sources(ctx, inputs[0], producers, depth + 1)
    if node.op_type == "Concat":
        parts = [_size_sources(ctx, v, producers, depth + 1) for v in inputs]
        return None if any(p is None for p in parts) else [s for p in parts for s in p or []]
    if node.op_type in ("Slice", "Gather"):
        whole = _size_sources(ctx, inputs[0], producers, depth + 1)
        picks = [ctx.constant_value(v) if v else None for v in inputs[1:]]
        if whole is None or any(v and p is None for v, p in zip(inputs[1:], picks, strict=True)):
            return None
        if node.op_type == "Gather":
            assert picks[0] is not None
            return [whole[int(i)] for i in picks[0].reshape(-1)]
        starts, ends = picks[0], picks[1]
        steps = picks[3] if len(picks) > 3 else None
        if starts is None or ends is None or starts.size != 1 or (steps is not None and steps.tolist() != [1]):
            return None
        return whole[int(starts.reshape(-1)[0]) : int(ends.reshape(-1)[0])]  # Python clamps as Slice does
    return None


def _same_dim(ctx: GradientContext, source: tuple[str, int], size: object, axis: int) -> bool:
    """Whether dimension `source` is X's along `axis` (the same value and axis, or the same known size or name)."""
    value, k = source
    if value == ctx.input(0) and k == axis:
        return True
    shape = ctx.shape(value)
    return shape is not None and size is not None and shape[k] == size


def _known_size(ctx: GradientContext, source: SizeSource) -> int | None:
    if isinstance(source, tuple):
        shape = ctx.shape(source[0])
        size = shape[source[1]] if shape is not None else None
        return size if isinstance(size, int) else None
    return source


def _describe(source: SizeSource) -> object:
    if source is None:
        return "computed at run time"
    return source if isinstance(source, int) else f"dimension {source[1]} of {source[0]!r}"


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
    scales, out_sizes = _scales(ctx, rank, in_shape, out_shape)
    if int(ctx.attr("antialias", 0)) and mode != "nearest" and any(s < 1 for s in scales):
        raise ctx.unsupported("antialias", 1, "downsampling with antialias is not supported")
    dtype = ctx.dtype(x)
    for axis in reversed(range(rank)):  # last axis first: the axes after `axis` then have X's sizes
        inputs, outputs = in_shape[axis], out_sizes[axis]
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
