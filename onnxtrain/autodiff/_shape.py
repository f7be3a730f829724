"""Gradient rules of the ops that move values without computing new ones: Reshape, Flatten, Squeeze, Unsqueeze,
Transpose, Concat, Split, Slice, Gather, GatherElements, GatherND, ScatterND, ScatterElements, Expand, Tile, Trilu,
DepthToSpace and SpaceToDepth. The shape inputs (axes, splits, starts, indices) take no gradient."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnxtrain.autodiff._context import GradientContext
from onnxtrain.autodiff._rules import rule

Grads = list[str | None]


def reshaped_like(ctx: GradientContext, g: str, x: str) -> str:
    """`g` reshaped to forward value `x`'s shape (a literal 0 in it stays 0: allowzero where the opset has it)."""
    static = ctx.static_shape(x)
    zero_safe = static is not None and 0 not in static
    attributes = {} if zero_safe or ctx.opset < 14 else {"allowzero": 1}
    return ctx.emit("Reshape", [g, ctx.shape_of(x)], hint=f"{x}_grad", **attributes)


@rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(ctx: GradientContext) -> Grads:
    return [reshaped_like(ctx, ctx.dy, ctx.input(0))]


@rule("Transpose")
def _transpose(ctx: GradientContext) -> Grads:
    perm = ctx.attr("perm")
    if perm is None:
        rank = ctx.rank(ctx.input(0))
        if rank is None:
            raise ctx.unsupported("perm", None, "without perm the rank of the input must be known")
        perm = list(reversed(range(rank)))
    inverse = [int(i) for i in np.argsort(perm)]
    return [ctx.emit("Transpose", [ctx.dy], perm=inverse)]


def _sizes_along(ctx: GradientContext, values: list[str], axis: int) -> str:
    """The sizes of `values` along `axis` as int64 [len(values)]: a constant where static."""
    dims = []
    for v in values:
        shape = ctx.shape(v)
        dims.append(shape[axis] if shape is not None and isinstance(shape[axis], int) else None)
    if all(d is not None for d in dims):
        return ctx.ints([int(d) for d in dims], "sizes")  # type: ignore[arg-type]
    return ctx.emit("Concat", [ctx.dim(v, axis) for v in values], hint="sizes", axis=0)


@rule("Concat")
def _concat(ctx: GradientContext) -> Grads:
    axis = int(ctx.attr("axis"))
    inputs = ctx.inputs
    if len(inputs) == 1:
        return [ctx.dy]
    rank = ctx.rank(inputs[0])
    if rank is None:
        raise ctx.unsupported("axis", axis, "Concat's gradient needs the rank of its inputs")
    axis %= rank
    parts = ctx.emit_multi("Split", [ctx.dy, _sizes_along(ctx, inputs, axis)], len(inputs), axis=axis)
    return [part if ctx.needs_grad(i) else None for i, part in enumerate(parts)]


@rule("Split")
def _split(ctx: GradientContext) -> Grads:
    axis = int(ctx.attr("axis"))
    parts = [g if g is not None else ctx.zeros_like(out) for g, out in zip(ctx.grad_outputs, ctx.outputs, strict=True)]
    return [ctx.emit("Concat", parts, hint=f"{ctx.input(0)}_grad", axis=axis)]


@rule("Slice")
def _slice(ctx: GradientContext) -> Grads:
    x, g = ctx.input(0), ctx.dy
    pads = _slice_pads(ctx)
    if pads is not None:
        return [ctx.emit("Pad", [g, ctx.ints(pads, "pads")], hint=f"{x}_grad")]
    # Any other slice (run-time bounds, steps other than 1): the same Slice of the flat element indices says where
    # each gradient element goes. A slice picks each element at most once, so a plain scatter is exact.
    count = ctx.emit("Size", [x])
    zero, one = ctx.ints([0]), ctx.ints([1])
    flat = ctx.emit("Range", [ctx.emit("Squeeze", [zero]), ctx.emit("Squeeze", [count]), ctx.emit("Squeeze", [one])])
    index = ctx.emit("Reshape", [flat, ctx.shape_of(x)])
    picked = ctx.emit("Slice", [index, *ctx.inputs[1:]])
    empty = ctx.emit("ConstantOfShape", [ctx.emit("Reshape", [count, one])], value=_zero_tensor(ctx.dtype(x)))
    updates = ctx.emit("Reshape", [g, ctx.ints([-1])])
    scattered = ctx.emit("ScatterElements", [empty, ctx.emit("Reshape", [picked, ctx.ints([-1])]), updates], axis=0)
    return [ctx.emit("Reshape", [scattered, ctx.shape_of(x)], hint=f"{x}_grad")]


def _zero_tensor(dtype: np.dtype) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.zeros(1, dtype))


def _slice_pads(ctx: GradientContext) -> list[int] | None:
    """Pad's pads that put a step-1 slice of a statically shaped input back in place; None for any other slice."""
    shape = ctx.static_shape(ctx.input(0))
    values = [ctx.constant_value(ctx.input(i)) for i in range(1, 5)]
    starts, ends = values[0], values[1]
    if shape is None or starts is None or ends is None:
        return None
    rank = len(shape)
    axes = values[2] if ctx.input(3) else np.arange(len(starts))
    steps = values[3] if ctx.input(4) else np.ones(len(starts), np.int64)
    if axes is None or steps is None or np.any(steps != 1):
        return None
    begin, end = [0] * rank, [0] * rank
    for start, stop, axis in zip(starts.tolist(), ends.tolist(), axes.tolist(), strict=True):
        axis %= rank
        d = shape[axis]
        start = min(max(start + d if start < 0 else start, 0), d)
        stop = min(max(stop + d if stop < 0 else stop, 0), d)
        begin[axis], end[axis] = start, d - max(stop, start)
    return begin + end


@rule("Gather")
def _gather(ctx: GradientContext) -> Grads:
    # Scatter-add g's rows into zeros shaped like data with `axis` moved to the front, then move it back.
    data, indices = ctx.input(0), ctx.input(1)
    g = ctx.dy
    data_shape, index_rank = ctx.shape(data), ctx.rank(indices)
    if data_shape is None or index_rank is None:
        raise ctx.unsupported("rank", None, "Gather's gradient needs the ranks of its data and indices")
    rank = len(data_shape)
    axis = int(ctx.attr("axis")) % rank
    others = [i for i in range(rank) if i != axis]
    if axis and index_rank:  # g is [data before axis, indices..., data after axis]: index axes to the front
        index_axes = list(range(axis, axis + index_rank))
        rest_axes = [i for i in range(rank - 1 + index_rank) if i not in index_axes]
        g = ctx.emit("Transpose", [g], perm=[*index_axes, *rest_axes])
    rows = ctx.emit("Reshape", [g, _shape_value(ctx, data, [-1], others)])  # [n, data dims but axis]
    flat = ctx.emit("Reshape", [_non_negative(ctx, indices, data, axis), ctx.ints([-1, 1])])
    moved_shape = _shape_value(ctx, data, [], [axis, *others])
    if ctx.opset >= 16:
        zeros = ctx.emit("ConstantOfShape", [moved_shape], value=_zero_tensor(ctx.dtype(data)))
        moved = ctx.emit("ScatterND", [zeros, flat, rows], reduction="add")
    else:  # no ScatterND reduction before opset 16: one_hot(indices)^T @ rows sums duplicate indices
        off_on = ctx.constant(np.array([0, 1], ctx.dtype(data)), "off_on")
        one_hot = ctx.emit("OneHot", [ctx.emit("Reshape", [flat, ctx.ints([-1])]), ctx.dim(data, axis), off_on])
        matrix = ctx.emit("Reshape", [rows, ctx.ints([0, -1])])
        moved = ctx.emit("Reshape", [ctx.emit("Gemm", [one_hot, matrix], transA=1), moved_shape])
    if axis:
        moved = ctx.emit("Transpose", [moved], perm=[int(i) for i in np.argsort([axis, *others])])
    return [moved, None]


def _shape_value(ctx: GradientContext, data: str, head: list[int], axes: list[int]) -> str:
    """int64 [head..., data's dims at `axes`...]: a constant where those dims are static."""
    return shape_value(ctx, [*head, *((data, a) for a in axes)])


def shape_value(ctx: GradientContext, parts: Sequence[int | tuple[str, int]]) -> str:
    """A shape as int64 [len(parts)]: each part a number, or (value, axis) for that dimension of a forward value; a
    constant where every dimension is static."""
    dims = [p if isinstance(p, int) else _static_dim(ctx, *p) for p in parts]
    if all(d is not None for d in dims):
        return ctx.ints([int(d) for d in dims if d is not None], "shape")
    pieces = [ctx.ints([p]) if isinstance(p, int) else ctx.dim(*p) for p in parts]
    return ctx.emit("Concat", pieces, hint="shape", axis=0)


def _static_dim(ctx: GradientContext, value: str, axis: int) -> int | None:
    shape = ctx.shape(value)
    d = shape[axis] if shape is not None else None
    return d if isinstance(d, int) else None


@rule("GatherElements")
def _gather_elements(ctx: GradientContext) -> Grads:
    # Each g element goes back to the data position its index names; duplicate indices add up.
    data, indices = ctx.input(0), ctx.input(1)
    rank = ctx.rank(data)
    if rank is None:
        raise ctx.unsupported("rank", None, "GatherElements' gradient needs the rank of its data")
    axis = int(ctx.attr("axis")) % rank
    index = _non_negative(ctx, indices, data, axis)
    if ctx.opset >= 16:
        zeros = ctx.emit("ConstantOfShape", [ctx.emit("Shape", [data])], value=_zero_tensor(ctx.dtype(data)))
        return [ctx.emit("ScatterElements", [zeros, index, ctx.dy], axis=axis, reduction="add"), None]
    # No ScatterElements reduction before opset 16: g times one_hot(index) along a new axis after `axis`, summed
    # over the index axis: the indices must span the data on the other axes (same size or same symbolic dim).
    data_shape, index_shape = ctx.shape(data), ctx.shape(indices)
    others_differ = (
        data_shape is not None
        and index_shape is not None
        and any(
            d != i and isinstance(d, int) and isinstance(i, int)
            for k, (d, i) in enumerate(zip(data_shape, index_shape, strict=True))
            if k != axis
        )
    )
    if others_differ:
        raise ctx.unsupported("opset", ctx.opset, "before opset 16 its gradient needs indices shaped like the data")
    off_on = ctx.constant(np.array([0, 1], ctx.dtype(data)), "off_on")
    one_hot = ctx.emit("OneHot", [index, ctx.dim(data, axis), off_on], axis=axis + 1)
    spread = ctx.emit("Mul", [ctx.emit("Unsqueeze", [ctx.dy, ctx.ints([axis + 1])]), one_hot])
    return [ctx.reduce("ReduceSum", spread, [axis], keepdims=False), None]


def _non_negative(ctx: GradientContext, indices: str, data: str, axis: int) -> str:
    """`indices` with negative ones counted from the end of `data`'s axis, as int64."""
    constant = ctx.constant_value(indices)
    if constant is not None and np.all(constant >= 0):
        return indices if constant.dtype == np.int64 else ctx.constant(constant.astype(np.int64), "indices")
    as_int64 = indices if ctx.dtype(indices) == np.int64 else ctx.emit("Cast", [indices], to=7)
    negative = ctx.emit("Cast", [ctx.emit("Less", [as_int64, ctx.ints([0])])], to=7)
    return ctx.emit("Add", [as_int64, ctx.emit("Mul", [negative, ctx.dim(data, axis)])])


@rule("Expand")
def _expand(ctx: GradientContext) -> Grads:
    return [ctx.unbroadcast(ctx.dy, ctx.input(0)), None]


@rule("Tile")
def _tile(ctx: GradientContext) -> Grads:
    # g viewed as [r0, d0, r1, d1, ...], summed over the repeat axes
    x, repeats = ctx.input(0), ctx.constant_value(ctx.input(1))
    rank = ctx.rank(x)
    if repeats is None or rank is None:
        raise ctx.unsupported("repeats", "<run-time value>", "Tile's gradient needs constant repeats and a known rank")
    static = ctx.static_shape(x)
    if static is not None:
        view = ctx.ints([v for r, d in zip(repeats.tolist(), static, strict=True) for v in (r, d)], "tile_view")
    else:
        view = ctx.emit(
            "Concat", [p for i, r in enumerate(repeats.tolist()) for p in (ctx.ints([r]), ctx.dim(x, i))], axis=0
        )
    grouped = ctx.emit("Reshape", [ctx.dy, view])
    return [ctx.reduce("ReduceSum", grouped, list(range(0, 2 * rank, 2)), keepdims=False, hint=f"{x}_grad"), None]


@rule("GatherND")
def _gather_nd(ctx: GradientContext) -> Grads:
    # Each slice of g goes back to where its index tuple points (batch coordinates prepended); duplicates add up.
    data, indices = ctx.input(0), ctx.input(1)
    batch = int(ctx.attr("batch_dims"))
    index_shape = ctx.shape(indices)
    depth = index_shape[-1] if index_shape else None
    if not isinstance(depth, int):
        raise ctx.unsupported("indices shape", index_shape, "the gradient needs the index tuples' length statically")
    index = _non_negative_tuples(ctx, indices, data, batch, depth)
    if batch:
        index = ctx.emit("Concat", [*_batch_coordinates(ctx, indices, batch), index], axis=-1)
    zeros = ctx.zeros_like(data)
    if ctx.opset >= 16:
        return [ctx.emit("ScatterND", [zeros, index, ctx.dy], hint=f"{data}_grad", reduction="add"), None]
    if not _distinct_tuples(ctx.constant_value(indices), batch, depth):
        raise ctx.unsupported("opset", ctx.opset, "before opset 16 it needs constant indices without duplicates")
    return [ctx.emit("ScatterND", [zeros, index, ctx.dy], hint=f"{data}_grad"), None]


def _non_negative_tuples(ctx: GradientContext, indices: str, data: str, batch: int, depth: int) -> str:
    """GatherND's index tuples with negative entries counted from the end of their data axis."""
    constant = ctx.constant_value(indices)
    if constant is not None and np.all(constant >= 0):
        return indices
    sizes = shape_value(ctx, [(data, a) for a in range(batch, batch + depth)])
    negative = ctx.emit("Cast", [ctx.emit("Less", [indices, ctx.ints([0])])], to=7)
    return ctx.emit("Add", [indices, ctx.emit("Mul", [negative, sizes])])


def _batch_coordinates(ctx: GradientContext, indices: str, batch: int) -> list[str]:
    """For each of the first `batch` axes of `indices`, each tuple's position along it, shaped [..., 1]."""
    rank = len(ctx.shape(indices) or ())
    tuples = ctx.emit(
        "Concat", [ctx.emit("Slice", [ctx.shape_of(indices), ctx.ints([0]), ctx.ints([-1])]), ctx.ints([1])], axis=0
    )
    zero, one = (ctx.emit("Squeeze", [ctx.ints([v])]) for v in (0, 1))
    coordinates = []
    for axis in range(batch):
        positions = ctx.emit("Range", [zero, ctx.emit("Squeeze", [ctx.dim(indices, axis)]), one])
        along = ctx.emit("Reshape", [positions, ctx.ints([-1 if a == axis else 1 for a in range(rank)])])
        coordinates.append(ctx.emit("Expand", [along, tuples]))
    return coordinates


def _distinct_tuples(constant: np.ndarray | None, batch: int, depth: int) -> bool:
    """Whether constant GatherND indices name no slice twice within a batch entry (non-negative ones only)."""
    if constant is None or np.any(constant < 0):
        return False
    groups = constant.reshape(int(np.prod(constant.shape[:batch], dtype=np.int64)), -1, depth)
    return all(len(np.unique(rows, axis=0)) == len(rows) for rows in groups)


@rule("ScatterND")
def _scatter_nd(ctx: GradientContext) -> Grads:
    # y = data with the slices at `indices` replaced by (or, with reduction add, increased by) updates
    _, indices, updates = ctx.inputs
    g = ctx.dy
    reduction = ctx.attr("reduction") or "none"  # no attribute before opset 16
    if reduction not in ("none", "add"):
        raise ctx.unsupported("reduction", reduction, "expected 'none' or 'add'")
    ddata = dupdates = None
    if ctx.needs_grad(0):
        ddata = g if reduction == "add" else ctx.emit("ScatterND", [g, indices, ctx.zeros_like(updates)])
    if ctx.needs_grad(2):
        dupdates = ctx.emit("GatherND", [g, indices], hint=f"{updates}_grad")
    return [ddata, None, dupdates]


@rule("ScatterElements")
def _scatter_elements(ctx: GradientContext) -> Grads:
    # y = data with the elements at `indices` along `axis` replaced by (reduction add: increased by) updates.
    # With reduction none, ONNX forbids duplicate indices (each duplicate would get its position's gradient).
    _, indices, updates = ctx.inputs
    g, axis = ctx.dy, int(ctx.attr("axis"))
    reduction = ctx.attr("reduction") or "none"  # no attribute before opset 16
    if reduction not in ("none", "add"):
        raise ctx.unsupported("reduction", reduction, "expected 'none' or 'add'")
    ddata = dupdates = None
    if ctx.needs_grad(0):
        zeros = None if reduction == "add" else ctx.zeros_like(updates)
        ddata = g if zeros is None else ctx.emit("ScatterElements", [g, indices, zeros], axis=axis)
    if ctx.needs_grad(2):
        dupdates = ctx.emit("GatherElements", [g, indices], hint=f"{updates}_grad", axis=axis)
    return [ddata, None, dupdates]


@rule("Trilu")
def _trilu(ctx: GradientContext) -> Grads:
    return [ctx.emit("Trilu", [ctx.dy, *ctx.inputs[1:]], upper=int(ctx.attr("upper"))), None]


@rule("SpaceToDepth")
def _space_to_depth(ctx: GradientContext) -> Grads:
    return [ctx.emit("DepthToSpace", [ctx.dy], blocksize=int(ctx.attr("blocksize")), mode="DCR")]


@rule("DepthToSpace")
def _depth_to_space(ctx: GradientContext) -> Grads:
    # DCR undoes SpaceToDepth; CRD moved x viewed as [N, C/b², b, b, H, W] to [N, C/b², H, b, W, b]
    x, g = ctx.input(0), ctx.dy
    block, mode = int(ctx.attr("blocksize")), ctx.attr("mode")
    if mode == "DCR":
        return [ctx.emit("SpaceToDepth", [g], blocksize=block)]
    if mode != "CRD":
        raise ctx.unsupported("mode", mode, "expected 'DCR' or 'CRD'")
    blocks = ctx.emit("Reshape", [g, shape_value(ctx, [0, 0, -1, block, (x, 3), block])])
    return [reshaped_like(ctx, ctx.emit("Transpose", [blocks], perm=[0, 1, 3, 5, 2, 4]), x)]
