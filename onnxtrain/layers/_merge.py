"""The merge layers, Keras' multi-input layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Each is called on a list of tensors (`Add()([a, b])`, see `layers/_layer.py`). Shapes follow Keras: the
elementwise merges broadcast per-example shapes as numpy does (aligned at the last axis, a size-1 axis stretches; a
lower-rank input gains axes after the batch axis), Concatenate needs equal shapes but on its axis, and Dot is Keras'
`batch_dot`. Axes (`axis`, `axes`) count the batch axis as 0, as in Keras.

Layout: an elementwise merge or Concatenate of channels-first values (after a convolution) stays channels-first when
every input is (Concatenate's axis moves with the channels); otherwise the inputs are read channels-last.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Mask, Shape, describe, format_shape
from onnxtrain.layers._layout import channels_last, is_channels_first, mark_channels_first

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): Dot(normalize=True) divides by at least this norm


class _Merge(Layer):
    """A layer of several inputs; subclasses say how many it takes and implement `output_shape_of` and `emit`, and
    `compute_mask` where Keras 3 passes a mask on (Dot drops it, as Keras' does)."""

    multi_input = True
    accepts_channels_first = True  # every merge reads its inputs' layout itself (see `_common_layout`)
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = None

    def compute_output_shape(self, input_shapes: list[Shape]) -> Shape:  # type: ignore[override]
        count = "exactly 2" if self.max_inputs == 2 else f"at least {self.min_inputs}"
        is_list = isinstance(input_shapes, list | tuple) and all(isinstance(s, tuple) for s in input_shapes)
        if not is_list:
            raise InvalidArgumentError(
                f"{type(self).__name__} is a merge layer: it is called on a list of {count} tensors, e.g. "
                f"{type(self).__name__}()([a, b]), so a Sequential model cannot hold it. Received: input shape "
                f"{input_shapes!r}"
            )
        if len(input_shapes) < self.min_inputs or (self.max_inputs and len(input_shapes) > self.max_inputs):
            raise InvalidArgumentError(
                f"{describe(self)} takes a list of {count} tensors. Received: "
                f"{len(input_shapes)} ({_shapes(input_shapes)})"
            )
        return self.output_shape_of(list(input_shapes))

    def output_shape_of(self, input_shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def emit(self, builder: GraphBuilder, xs: list[str]) -> str:  # type: ignore[override]
        raise NotImplementedError


class _Elementwise(_Merge):
    """A merge of same-shaped (or broadcastable) inputs, element by element; masked inputs give the union of their
    masks (Keras 3's merges: an OR, and no mask where an input has none)."""

    def output_shape_of(self, input_shapes: list[Shape]) -> Shape:
        return broadcast_shapes(self, input_shapes)

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        masks = mask if isinstance(mask, list) else [mask]
        if any(m is None for m in masks):
            return None
        return _chain(builder, "Or", [m for m in masks if m is not None])

    def emit(self, builder: GraphBuilder, xs: list[str]) -> str:  # type: ignore[override]
        xs, first = _common_layout(builder, self, xs)
        y = self.combine(builder, xs)
        return mark_channels_first(builder, y) if first else y

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        raise NotImplementedError


def _chain(builder: GraphBuilder, op_type: str, xs: list[str]) -> str:
    """`op_type` applied left to right, as Keras does (Add and Mul: ONNX's variadic Sum has no gradient rule)."""
    y = xs[0]
    for x in xs[1:]:
        y = builder.node(op_type, [y, x], hint=op_type.lower())
    return y


class Add(_Elementwise):
    """The sum of its inputs: `Add()([a, b, ...])`."""

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        return _chain(builder, "Add", xs)


class Subtract(_Elementwise):
    """The difference of its two inputs: `Subtract()([a, b])` is a - b."""

    max_inputs = 2

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        return builder.node("Sub", xs, hint="sub")


class Multiply(_Elementwise):
    """The elementwise product of its inputs."""

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        return _chain(builder, "Mul", xs)


class Average(_Elementwise):
    """The elementwise mean of its inputs: their sum divided by how many there are, as Keras computes it."""

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        return builder.node("Div", [_chain(builder, "Add", xs), builder.constant(float(len(xs)), "count")], "mean")


class Maximum(_Elementwise):
    """The elementwise maximum of its inputs."""

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        return builder.node("Max", xs, hint="max")


class Minimum(_Elementwise):
    """The elementwise minimum of its inputs."""

    def combine(self, builder: GraphBuilder, xs: list[str]) -> str:
        return builder.node("Min", xs, hint="min")


class Concatenate(_Merge):
    """Its inputs joined along `axis` (batch axis 0, as in Keras: -1, the default, is the channels).

    Args:
        axis: the axis to join; every other axis must be the same size in every input.
    """

    def __init__(self, axis: int = -1, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise InvalidTypeError(f"Concatenate(axis=...) expects an int. Received: axis={axis!r}")
        self.axis = int(axis)

    def _batched_axis(self, rank: int) -> int:
        """`axis` as an index of the batched shape (rank `rank` + 1), in 1..rank."""
        if not -(rank + 1) <= self.axis <= rank or self.axis % (rank + 1) == 0:
            raise InvalidArgumentError(
                f"{describe(self)} got axis={self.axis} for inputs of rank {rank + 1} (batch "
                f"included): it expects an axis in 1..{rank} or -{rank}..-1 (axis 0 is the batch)."
            )
        return self.axis % (rank + 1)

    def output_shape_of(self, input_shapes: list[Shape]) -> Shape:
        ranks = {len(shape) for shape in input_shapes}
        if len(ranks) != 1:
            raise ShapeError(f"{describe(self)} expects inputs of one rank. Received: {_shapes(input_shapes)}")
        axis = self._batched_axis(ranks.pop()) - 1
        others = {shape[:axis] + shape[axis + 1 :] for shape in input_shapes}
        if len(others) != 1:
            raise ShapeError(
                f"{describe(self)} expects inputs of the same shape except on the concatenation "
                f"axis {self.axis}. Received: {_shapes(input_shapes)}"
            )
        first = input_shapes[0]
        return (*first[:axis], sum(shape[axis] for shape in input_shapes), *first[axis + 1 :])

    def emit(self, builder: GraphBuilder, xs: list[str]) -> str:  # type: ignore[override]
        assert self.input_shapes is not None, "layers must be built"
        rank = len(self.input_shapes[0]) + 1
        axis = self._batched_axis(rank - 1)
        xs, first = _common_layout(builder, self, xs)
        if not first:
            return builder.node("Concat", xs, hint="concat", axis=axis)
        moved = 1 if axis == rank - 1 else axis + 1  # channels-first order: (N, C, spatial...)
        return mark_channels_first(builder, builder.node("Concat", xs, hint="concat", axis=moved))

    def compute_mask(self, builder: GraphBuilder, x: Any, mask: Mask | list[Mask]) -> Mask:
        """Keras 3's: each input's mask over its values (all True where it has none), joined along `axis`, then
        any over the last axis: along the features, the union of the masks; along the steps, the masks joined."""
        masks = mask if isinstance(mask, list) else [mask]
        present = [m for m in masks if m is not None]
        if not present:
            return None
        assert self.input_shapes is not None, "layers must be built"
        rank = len(self.input_shapes[0]) + 1
        axis = self._batched_axis(rank - 1)
        if axis == rank - 1:  # the features: any input without a mask makes every step count
            if len(present) < len(masks):
                return builder.node("Or", [present[0], builder.node("Not", [present[0]])], hint="all_steps")
            return _chain(builder, "Or", present)
        batch = builder.node("Slice", [builder.node("Shape", [present[0]]), builder.ints([0]), builder.ints([1])])
        full = [
            m
            if m is not None
            else builder.node(
                "Expand",
                [
                    builder.constant(np.array(True), "true", np.bool_),
                    builder.node("Concat", [batch, builder.ints(shape[:-1], "steps")], axis=0),
                ],
                hint="all_steps",
            )
            for m, shape in zip(masks, self.input_shapes, strict=True)
        ]
        return builder.node("Concat", full, hint="mask", axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().get_config()}


class Dot(_Merge):
    """The dot product of two inputs' samples along one axis of each: Keras' `batch_dot`.

    `Dot(axes=1)([a, b])` of two (N, 8) inputs is (N, 1): each row of `a` dotted with the same row of `b`.
    Inputs (N, 3, 5) and (N, 10, 3) with `axes=(1, 2)` give (N, 5, 10). The output keeps the first input's other
    axes, then the second's.

    Args:
        axes: one axis for both inputs, or (axis of the first, axis of the second); the batch axis 0 is not one.
        normalize: L2-normalize each sample along its axis first (the output is then the cosine similarity).
    """

    accepts_channels_first = False
    max_inputs = 2

    def __init__(
        self,
        axes: int | tuple[int, int] | list[int],
        normalize: bool = False,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        single = isinstance(axes, int | np.integer) and not isinstance(axes, bool)
        pair = [axes, axes] if single else axes
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or any(isinstance(a, bool) or not isinstance(a, int | np.integer) for a in pair)
        ):
            raise InvalidArgumentError(f"Dot(axes=...) expects an int or a pair of ints. Received: axes={axes!r}")
        if not isinstance(normalize, bool):
            raise InvalidTypeError(f"Dot(normalize=...) expects a bool. Received: normalize={normalize!r}")
        self.axes: int | list[int] = int(pair[0]) if single else [int(a) for a in pair]  # type: ignore[arg-type]
        self.normalize = normalize

    def _batched_axes(self, input_shapes: list[Shape]) -> tuple[int, int]:
        pair = [self.axes, self.axes] if isinstance(self.axes, int) else self.axes
        resolved = []
        for axis, shape in zip(pair, input_shapes, strict=True):
            rank = len(shape) + 1
            if not -rank <= axis < rank or axis % rank == 0:
                raise InvalidArgumentError(
                    f"{describe(self)} got axes={self.axes!r} for inputs of shape {_shapes(input_shapes)}: "
                    f"each axis must be in 1..{rank - 1} or -{rank - 1}..-1 for its input (axis 0 is the batch)."
                )
            resolved.append(axis % rank)
        return resolved[0], resolved[1]

    def output_shape_of(self, input_shapes: list[Shape]) -> Shape:
        first, second = input_shapes
        a, b = self._batched_axes(input_shapes)
        if first[a - 1] != second[b - 1]:
            raise ShapeError(
                f"{describe(self)} expects the dotted axes to be the same size. Received: size "
                f"{first[a - 1]} at axis {a} of {format_shape(first)}, size {second[b - 1]} at axis {b} of "
                f"{format_shape(second)}"
            )
        shape = first[: a - 1] + first[a:] + second[: b - 1] + second[b:]
        return shape or (1,)

    def emit(self, builder: GraphBuilder, xs: list[str]) -> str:  # type: ignore[override]
        assert self.input_shapes is not None and self.output_shape is not None, "layers must be built"
        (x, y), (x_shape, y_shape) = xs, self.input_shapes
        a, b = self._batched_axes(self.input_shapes)
        if self.normalize:
            x, y = _l2_normalized(builder, x, a), _l2_normalized(builder, y, b)
        # x: the dotted axis last, then (N, rest, k); y: the dotted axis after the batch, then (N, k, rest).
        x = _transposed(builder, x, [i for i in range(len(x_shape) + 1) if i != a] + [a])
        y = _transposed(builder, y, [0, b] + [i for i in range(1, len(y_shape) + 1) if i != b])
        k = x_shape[a - 1]
        x_rest = math.prod(x_shape) // k
        y_rest = math.prod(y_shape) // k
        x = x if len(x_shape) == 2 else _reshaped(builder, x, [0, x_rest, k])
        y = y if len(y_shape) == 2 else _reshaped(builder, y, [0, k, y_rest])
        product = builder.node("MatMul", [x, y], hint="batch_dot")
        return (
            product if self.output_shape == (x_rest, y_rest) else _reshaped(builder, product, [0, *self.output_shape])
        )

    def get_config(self) -> dict[str, Any]:
        return {"axes": self.axes, "normalize": self.normalize, **super().get_config()}


def broadcast_shapes(layer: Layer, shapes: list[Shape]) -> Shape:
    """Keras' shape of an elementwise merge: numpy broadcasting of the per-example shapes."""
    rank = max(len(shape) for shape in shapes)
    result = []
    for dims in zip(*[(1,) * (rank - len(shape)) + shape for shape in shapes], strict=True):
        sizes = set(dims) - {1}
        if len(sizes) > 1:
            raise ShapeError(
                f"{describe(layer)} expects inputs of the same shape (or a size-1 axis "
                f"where they differ, which is broadcast). Received: {_shapes(shapes)}"
            )
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def _common_layout(builder: GraphBuilder, layer: Layer, xs: list[str]) -> tuple[list[str], bool]:
    """The inputs in one layout: channels-first when every input is and they have one rank; else channels-last,
    each lower-rank input given size-1 axes after the batch (Keras' expand_dims at axis 1). Returns (values,
    whether channels-first)."""
    assert layer.input_shapes is not None, "layers must be built"
    ranks = [len(shape) + 1 for shape in layer.input_shapes]
    if len(set(ranks)) == 1 and all(is_channels_first(builder, x) for x in xs):
        return xs, True
    rank = max(ranks)
    values = []
    for x, r in zip(xs, ranks, strict=True):
        x = channels_last(builder, x, r)
        if r < rank:
            axes = builder.ints(np.arange(1, rank - r + 1), "expand_axes")
            x = builder.node("Unsqueeze", [x, axes], hint="expand")
        values.append(x)
    return values, False


def _transposed(builder: GraphBuilder, x: str, perm: list[int]) -> str:
    return x if perm == sorted(perm) else builder.node("Transpose", [x], hint="transpose", perm=perm)


def _reshaped(builder: GraphBuilder, x: str, shape: list[int]) -> str:
    """`x` reshaped to `shape`, whose leading 0 keeps the batch size (ONNX Reshape copies a 0 from the input)."""
    target = builder.ints(shape, "shape")
    return builder.node("Reshape", [x, target], hint="reshape")


def _l2_normalized(builder: GraphBuilder, x: str, axis: int) -> str:
    """x / max(||x||, epsilon) along `axis`, Keras' `normalize` (which computes x * min(rsqrt(sum x^2), 1/eps)).

    The bound is taken before the square root, sqrt(max(sum x^2, epsilon^2)): the same value, and a gradient that
    never meets Sqrt's infinite slope at 0 (ONNX Runtime's gradient graph made NaN of 0 * inf there, for an
    all-zero row such as a dead ReLU's)."""
    squares = builder.reduce("ReduceSum", builder.node("Mul", [x, x], hint="square"), [axis], keepdims=True)
    bounded = builder.node("Max", [squares, builder.constant(np.float32(KERAS_EPSILON**2), "epsilon_squared")])
    return builder.node("Div", [x, builder.node("Sqrt", [bounded], hint="norm")], hint="normalized")


def _shapes(shapes: list[Shape]) -> str:
    return ", ".join(format_shape(shape) if isinstance(shape, tuple) else repr(shape) for shape in shapes)
