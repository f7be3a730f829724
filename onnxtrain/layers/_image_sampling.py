"""Keras' `affine_transform` in standard ONNX ops: each output pixel samples the input image at a point an affine
transform gives, with Keras' fill modes and interpolations (what RandomTranslation, RandomRotation and RandomZoom
compute, `_augmentation_geometric.py`).

As Keras 3 (its JAX backend: `jax.scipy.ndimage.map_coordinates`, order 0 or 1), for output pixel (row y, column x)
and a transform row [a0, a1, a2, b0, b1, b2] (Keras' rows have 8 numbers; the last two are 0 outside TensorFlow):

    x' = a0 x + a1 y + a2        y' = b0 x + b1 y + b2          (input column and row, in pixels)

"nearest" reads the pixel at (round(y'), round(x')), halves rounded away from zero; "bilinear" weighs the four
pixels around (y', x') by (1 - fy, fy) x (1 - fx, fx), fy = y' - floor(y'). A pixel index i outside [0, size) is
read per `fill_mode` (Keras' `(d c b a | a b c d | ...)` pictures):

    "reflect"   reflected about the edge: -1 -> 0, -2 -> 1, size -> size - 1 (period 2 size)
    "wrap"      i mod size
    "nearest"   clipped to [0, size - 1]
    "constant"  `fill_value` instead of a pixel

Each tap is a GatherElements of the images as (N, C, H * W), weighted and summed, so a gradient flows back to the
images (GatherElements, Mul and Add have autodiff rules); none flows to the transform, as in Keras. Channels first,
with every per-pixel quantity (N, 1, H * W): ONNX Runtime broadcasts those over the channels fast, and its
GatherElements is several times faster than Gather of pixel rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._shapes import Shape

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")

# One interpolation tap along an axis: the pixel index read (int64, fixed per the fill mode), its weight (float32;
# None: 1) and whether the index lies inside the image (float32 1 or 0; None: always, for every mode but
# "constant").
Tap = tuple[str, str | None, str | None]


def affine_transform(
    builder: GraphBuilder,
    images: str,
    transform: str,
    shape: Shape,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> str:
    """Keras' `affine_transform(images, transform, interpolation, fill_mode, fill_value)` (module docstring).

    Args:
        builder: the graph's builder.
        images: a float32 (N, C, H, W) value, channels first.
        transform: a float32 (N, 6) or (N, 8) value, one Keras transform row per image (columns past 6 unread).
        shape: (H, W, C), the images' static size (Keras' order).
        interpolation: one of INTERPOLATIONS.
        fill_mode: one of FILL_MODES.
        fill_value: the value "constant" reads outside the image.

    Returns:
        The float32 (N, C, H, W) sampled images.
    """
    height, width, channels = shape
    pixels = height * width
    with builder.scope("affine"):
        a0, a1, a2, b0, b1, b2 = (_column(builder, transform, i) for i in range(6))
        grid = np.indices((height, width), dtype=np.float32).reshape(2, 1, 1, pixels)
        rows, columns = builder.constant(grid[0], "y"), builder.constant(grid[1], "x")
        # JAX's order of the sums (its einsum over (row, column), then the offset), so the roundings agree.
        y = builder.node("Add", [_dot(builder, rows, b1, columns, b0), b2], hint="source_y")
        x = builder.node("Add", [_dot(builder, rows, a1, columns, a0), a2], hint="source_x")
        y_taps = _taps(builder, y, height, interpolation, fill_mode)
        x_taps = _taps(builder, x, width, interpolation, fill_mode)
        flat = builder.node("Reshape", [images, builder.ints([0, channels, pixels], "flat")], hint="flat")
        per_channel = builder.ints([1, channels, 1], "per_channel")
        total, missed = None, None  # the sum of the taps; the weight of those outside the image ("constant")
        for y_index, y_weight, y_valid in y_taps:
            row_start = builder.node("Mul", [y_index, _int64(builder, width)], hint="row_start")
            for x_index, x_weight, x_valid in x_taps:
                index = builder.node("Add", [row_start, x_index], hint="pixel")
                index = builder.node("Expand", [index, per_channel], hint="pixel")  # (N, C, H * W)
                value = builder.node("GatherElements", [flat, index], hint="sampled", axis=2)
                weight = _product(builder, y_weight, x_weight)
                valid = _product(builder, y_valid, x_valid)
                if valid is not None:  # Keras reads fill_value there: weight * fill, added once below
                    outside = builder.node("Sub", [_float(builder, 1.0), valid])
                    share = outside if weight is None else builder.node("Mul", [weight, outside])
                    missed = share if missed is None else builder.node("Add", [missed, share])
                    weight = valid if weight is None else builder.node("Mul", [weight, valid], hint="weight")
                if weight is not None:
                    value = builder.node("Mul", [weight, value], hint="weighted")
                total = value if total is None else builder.node("Add", [total, value], hint="sample")
        assert total is not None
        if missed is not None and fill_value != 0.0:
            fill = builder.node("Mul", [missed, _float(builder, fill_value)], hint="fill")
            total = builder.node("Add", [total, fill], hint="sample")
        return builder.node("Reshape", [total, builder.ints([0, channels, height, width], "images")], hint="sampled")


def _column(builder: GraphBuilder, transform: str, i: int) -> str:
    """Column `i` of the (N, k) transform as (N, 1, 1), to broadcast over an image's (1, H * W)."""
    picked = builder.node("Gather", [transform, builder.ints([i], "column")], hint="coefficient", axis=1)
    return builder.node("Unsqueeze", [picked, builder.ints([2], "axis")], hint="coefficient")


def _dot(builder: GraphBuilder, rows: str, row_weight: str, columns: str, column_weight: str) -> str:
    return builder.node("Add", [builder.node("Mul", [rows, row_weight]), builder.node("Mul", [columns, column_weight])])


def _taps(builder: GraphBuilder, coordinate: str, size: int, interpolation: str, fill_mode: str) -> list[Tap]:
    """The pixels an interpolation reads along one axis at float32 `coordinate` (N, 1, H * W), as JAX's
    map_coordinates takes them: the nearest one (halves away from zero), or two (floor and floor + 1)."""
    if interpolation == "nearest":
        index = _as_index(builder, _rounded(builder, coordinate))
        fixed, valid = _fixed(builder, index, size, fill_mode)
        return [(fixed, None, valid)]
    lower = builder.node("Floor", [coordinate])
    upper_weight = builder.node("Sub", [coordinate, lower], hint="upper_weight")
    lower_weight = builder.node("Sub", [_float(builder, 1.0), upper_weight], hint="lower_weight")
    lower_index = _as_index(builder, lower)
    (lower_fixed, upper_fixed), (lower_valid, upper_valid) = _fixed_pair(builder, lower_index, size, fill_mode)
    return [(lower_fixed, lower_weight, lower_valid), (upper_fixed, upper_weight, upper_valid)]


def _rounded(builder: GraphBuilder, value: str) -> str:
    """`value` rounded to the nearest whole number, halves away from zero (XLA's round, which JAX's nearest uses;
    ONNX's Round takes halves to even). Exact: |v| - floor(|v|) is."""
    magnitude = builder.node("Abs", [value])
    whole = builder.node("Floor", [magnitude])
    up = _as_float(
        builder, builder.node("GreaterOrEqual", [builder.node("Sub", [magnitude, whole]), _float(builder, 0.5)])
    )
    return builder.node("Mul", [builder.node("Sign", [value]), builder.node("Add", [whole, up])], hint="rounded")


def _fixed(builder: GraphBuilder, index: str, size: int, fill_mode: str) -> tuple[str, str | None]:
    """The index (int64) that `fill_mode` reads for pixel `index` along an axis of `size`, and whether the pixel
    is inside the image (float32 1 or 0; None but for "constant", which reads `fill_value` outside)."""
    if fill_mode == "wrap":
        return builder.node("Mod", [index, _int64(builder, size)], hint="wrapped"), None
    if fill_mode == "reflect":
        return _reflected(builder, builder.node("Mod", [index, _int64(builder, 2 * size)]), size), None
    clipped = builder.node("Min", [builder.node("Max", [index, _int64(builder, 0)]), _int64(builder, size - 1)])
    if fill_mode == "nearest":
        return clipped, None
    inside = builder.node("Equal", [index, clipped], hint="inside")  # clipping moved it otherwise
    return clipped, _as_float(builder, inside)


def _fixed_pair(
    builder: GraphBuilder, lower: str, size: int, fill_mode: str
) -> tuple[tuple[str, str], tuple[str | None, str | None]]:
    """`_fixed` of pixels `lower` and `lower + 1`, with one Mod for both (ONNX Runtime's int64 Mod is slow)."""
    upper = builder.node("Add", [lower, _int64(builder, 1)])
    if fill_mode not in ("wrap", "reflect"):
        (lower_fixed, lower_valid), (upper_fixed, upper_valid) = (
            _fixed(builder, i, size, fill_mode) for i in (lower, upper)
        )
        return (lower_fixed, upper_fixed), (lower_valid, upper_valid)
    period = size if fill_mode == "wrap" else 2 * size
    first = builder.node("Mod", [lower, _int64(builder, period)])  # in [0, period)
    last = _as_int(builder, builder.node("Equal", [first, _int64(builder, period - 1)]))
    second = builder.node("Sub", [builder.node("Add", [first, _int64(builder, 1)]), _scaled(builder, last, period)])
    if fill_mode == "reflect":
        first, second = _reflected(builder, first, size), _reflected(builder, second, size)
    return (first, second), (None, None)


def _reflected(builder: GraphBuilder, index: str, size: int) -> str:
    """JAX's reflect of `index` in [0, 2 size): itself in [0, size), else 2 size - 1 - index."""
    beyond = _as_int(builder, builder.node("GreaterOrEqual", [index, _int64(builder, size)]))
    turned = builder.node("Sub", [_int64(builder, 2 * size - 1), builder.node("Mul", [index, _int64(builder, 2)])])
    return builder.node("Add", [index, builder.node("Mul", [beyond, turned])], hint="reflected")


def _scaled(builder: GraphBuilder, value: str, factor: int) -> str:
    return builder.node("Mul", [value, _int64(builder, factor)])


def _as_index(builder: GraphBuilder, whole: str) -> str:
    return builder.node("Cast", [whole], hint="index", to=onnx.TensorProto.INT64)


def _as_int(builder: GraphBuilder, flag: str) -> str:
    return builder.node("Cast", [flag], to=onnx.TensorProto.INT64)


def _as_float(builder: GraphBuilder, flag: str) -> str:
    return builder.node("Cast", [flag], to=onnx.TensorProto.FLOAT)


def _int64(builder: GraphBuilder, value: int) -> str:
    """An int64 scalar constant, emitted once per graph."""
    return builder.shared(f"image_sampling.int64.{value}", lambda: builder.constant(np.int64(value), "int64", np.int64))


def _float(builder: GraphBuilder, value: float) -> str:
    """A float32 scalar constant, emitted once per graph."""
    return builder.shared(f"image_sampling.float.{value!r}", lambda: builder.constant(np.float32(value), "float"))


def _product(builder: GraphBuilder, a: str | None, b: str | None) -> str | None:
    present = [v for v in (a, b) if v is not None]
    return builder.node("Mul", present, hint="weight") if len(present) == 2 else (present[0] if present else None)


def check_choice(owner: str, arg: str, value: object, choices: Sequence[str]) -> str:
    """`value` when it is one of `choices` (Keras' strings), else InvalidArgumentError naming them."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgumentError(f"{owner}({arg}=...) expects one of {list(choices)}. Received: {arg}={value!r}")
    return value
