"""Dropout and SpatialDropout1D/2D/3D, with masks that are a pure function of (seed, layer, step, element): computed by
standard int64 ONNX ops from the training step, so a resumed run and any other runtime draw the same masks.

ONNX's Dropout and Random*Like draw from a generator seeded by an attribute, which no run can resume and no other
runtime reproduces, so they are not used.

The mask (every value an int64; P = 2^31 - 1, a prime; Q = 2^30):

    scramble(v, c) = r_k(...r_1((v * 48271 + c_0) mod P)),  r_i(v) = (v * v + c_i) mod P  (products < 2^62)
    layer          = scramble(crc32(layer name) + seed * 7919, LAYER)   a constant of the graph
    step_key       = scramble(step mod P + layer, STEP)                 per step: a scalar
    row[n]         = scramble(n + step_key, ROW) mod Q                  per example n
    local[i]       = scramble(i, LOCAL) mod Q    i: the element's index within its example, in Keras' channels-last
                                                 order of the noise shape (a constant: ONNX Runtime folds it)
    keep[n, i]     = (row[n] + local[i])^2 mod P >= ceil(rate * P)

Per element that is an Add, a Mul, a Mod and a comparison, then the mask (0 or 1 / (1 - rate)) and the product.
The hash before the comparison, (row[n] + local[i])^2 mod P, is `element_hash`: GaussianNoise and GaussianDropout
(`_noise.py`) draw their uniforms from it too.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import onnx

from onnxtrain._checks import as_real
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._layer import Layer, Shape, describe, format_shape
from onnxtrain.layers._layout import is_channels_first, same_layout

P = (1 << 31) - 1
Q = 1 << 30
MULTIPLIER = 48271  # MINSTD's: spreads consecutive inputs before the first squaring
SEED_MULTIPLIER = 7919
# Round constants, odd and below P; each stage has its own, so the stages are different functions.
LAYER = (0x2545F491, 0x1B873593, 0x4CF5AD43)
STEP = (0x68E31DA4, 0x3C6EF372, 0x5BD1E995, 0x27D4EB2F)
ROW = (0x165667B1, 0x7FEB352D, 0x46A3F6E5, 0x2C1B3C6D)
LOCAL = (0x297A2D39, 0x0B4B82E5, 0x21F0AAAD, 0x735A2D97, 0x0CD1B54F)


def scramble_number(v: int, constants: Sequence[int]) -> int:
    """`scramble` of the module docstring, for one Python int (the layer's constant)."""
    v = (v * MULTIPLIER + constants[0]) % P
    for c in constants[1:]:
        v = (v * v + c) % P
    return v


def layer_key(name: str, seed: int | None) -> int:
    """The constant that makes a layer's masks its own: from its name (unique in a model) and its seed."""
    return scramble_number((zlib.crc32(name.encode()) + (seed or 0) * SEED_MULTIPLIER) % P, LAYER)


def _rate(owner: str, value: object, arg: str = "rate") -> float:
    """A fraction of values dropped (Dropout's `rate`, MultiHeadAttention's `dropout`): a number in [0, 1)."""
    number = as_real(value)
    if number is None or not 0.0 <= number < 1.0:
        raise InvalidArgumentError(f"{owner}({arg}=...) expects a number in [0, 1). Received: {arg}={value!r}")
    return number


def _seed(owner: str, seed: object) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise InvalidArgumentError(f"{owner}(seed=...) expects None or an int >= 0. Received: seed={seed!r}")
    return None if seed is None else int(seed)


class Dropout(Layer):
    """Sets a fraction `rate` of the inputs to 0 in training and scales the others by 1 / (1 - rate); the identity
    in evaluation, prediction and the export.

    Args:
        rate: the fraction dropped, in [0, 1).
        noise_shape: Keras' shape of the mask, batch included, broadcast over the input: None (one draw per
            element) or one entry per input axis, each None (the input's size), 1 (shared along that axis) or the
            input's size. `(None, 1, 1, C)` drops whole channels of (N, H, W, C) images.
        seed: with the layer's name, picks the masks; every step draws new ones (see the module docstring).
    """

    accepts_channels_first = True

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = type(self).__name__
        self.rate = _rate(owner, rate)
        if noise_shape is not None and (
            not isinstance(noise_shape, list | tuple)
            or any(d is not None and (isinstance(d, bool) or not isinstance(d, int | np.integer)) for d in noise_shape)
        ):
            raise InvalidArgumentError(
                f"{owner}(noise_shape=...) expects None or a list of ints and Nones. Received: "
                f"noise_shape={noise_shape!r}"
            )
        self.noise_shape = None if noise_shape is None else tuple(None if d is None else int(d) for d in noise_shape)
        self.seed = _seed(owner, seed)

    def _mask_shape(self, input_shape: Shape) -> tuple[bool, Shape]:
        """(one draw per example?, the mask's per-example shape, channels last)."""
        if self.noise_shape is None:
            return True, input_shape
        if len(self.noise_shape) != len(input_shape) + 1 or self.noise_shape[0] not in (None, 1):
            raise ShapeError(
                f"{describe(self)} got noise_shape={list(self.noise_shape)}, which does not "
                f"broadcast over inputs of shape {format_shape(input_shape)}: expected {len(input_shape) + 1} "
                "entries, the first None or 1."
            )
        dims = []
        for d, n in zip(self.noise_shape[1:], input_shape, strict=True):
            if d not in (None, 1, n):
                raise ShapeError(
                    f"{describe(self)} got noise_shape={list(self.noise_shape)}: each entry "
                    f"must be None, 1 or the input's size. Received: input shape {format_shape(input_shape)}."
                )
            dims.append(n if d is None else d)
        return self.noise_shape[0] is None, tuple(dims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._mask_shape(input_shape)
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        if not builder.training or self.rate == 0.0:
            return x
        assert self.input_shape is not None and self.name is not None, "layers must be built"
        per_example, shape = self._mask_shape(self.input_shape)
        mask = keep_mask(builder, x, shape, per_example, self.rate, layer_key(self.name, self.seed))
        return same_layout(builder, x, builder.node("Mul", [x, mask], hint="dropped"))

    def get_config(self) -> dict[str, Any]:
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {"rate": self.rate, "noise_shape": noise, "seed": self.seed, **super().get_config()}


class _SpatialDropout(Dropout):
    """Drops whole feature maps: one draw per (example, channel) of (N, *spatial, C) inputs, kept maps scaled by
    1 / (1 - rate). The identity in evaluation, prediction and the export."""

    spatial_axes: ClassVar[tuple[str, ...]]

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, trainable: bool = True):
        super().__init__(rate, None, seed, name, trainable)

    def _mask_shape(self, input_shape: Shape) -> tuple[bool, Shape]:
        if len(input_shape) != len(self.spatial_axes) + 1:
            axes = ", ".join(self.spatial_axes)
            raise ShapeError(
                f"{describe(self)} expects inputs of shape [None, {axes}, channels]. "
                f"Received: input shape {format_shape(input_shape)}."
            )
        return True, (*(1 for _ in self.spatial_axes), input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["noise_shape"]
        return config


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (N, steps, C) sequences: one draw per (example, channel), as Keras'."""

    spatial_axes = ("steps",)


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of (N, H, W, C) images: one draw per (example, channel), as Keras'."""

    keras_data_format = True
    spatial_axes = ("height", "width")


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of (N, D, H, W, C) inputs: one draw per (example, channel), as Keras'."""

    keras_data_format = True
    spatial_axes = ("depth", "height", "width")


def keep_mask(builder: GraphBuilder, x: str, shape: Shape, per_example: bool, rate: float, layer: int) -> str:
    """The float32 mask (0 or 1 / (1 - rate)) for value `x` of this training step, in `x`'s layout, broadcasting
    over it: shape (N or 1, *shape) channels last, transposed to channels first where `x` is.

    `shape` is the mask's per-example shape (channels last); `per_example`: one draw per example, else one shared.
    """
    with builder.scope("mask"):
        h = element_hash(builder, x, shape, per_example, layer)
        keep = builder.node("GreaterOrEqual", [h, _int64(builder, math.ceil(rate * P), "threshold")], hint="keep")
        # Cast and Mul, not Where(keep, scale, 0): ONNX Runtime's Where is the slower of the two.
        kept = builder.node("Cast", [keep], hint="kept", to=onnx.TensorProto.FLOAT)
        return builder.node("Mul", [kept, builder.constant(np.float32(1.0 / (1.0 - rate)), "scale")], hint="mask")


def _int64(builder: GraphBuilder, value: int, hint: str) -> str:
    return builder.shared(f"dropout.int64.{value}", lambda: builder.constant(np.int64(value), hint, np.int64))


def element_hash(builder: GraphBuilder, x: str, shape: Shape, per_example: bool, layer: int, stream: int = 0) -> str:
    """The int64 `hash[n, i] = (row[n] + local[i])^2 mod P` of the module docstring, in [0, P), for value `x` of this
    training step: shape (N or 1, *shape) channels last, transposed to channels first where `x` is.

    `stream` s draws another set of values from the same rows: element i reads local[s * size + i] (size: the
    elements of `shape`), which no other stream reads. Stream 0 is Dropout's mask; the noise layers (`_noise.py`)
    read streams 0 and 1.
    """
    rank = len(shape) + 1

    def const(value: int, hint: str) -> str:
        return _int64(builder, value, hint)

    def scramble(v: str, constants: Sequence[int], hint: str) -> str:
        v = builder.node("Add", [builder.node("Mul", [v, const(MULTIPLIER, "multiplier")]), const(constants[0], "c")])
        v = builder.node("Mod", [v, const(P, "p")], hint=hint)
        for c in constants[1:]:
            v = builder.node("Mul", [v, v])
            v = builder.node("Mod", [builder.node("Add", [v, const(c, "c")]), const(P, "p")], hint=hint)
        return v

    step = builder.node("Mod", [builder.training_step(), const(P, "p")])
    step_key = scramble(builder.node("Add", [step, const(layer, "layer")]), STEP, "step_key")
    if per_example:
        n = builder.node("Gather", [builder.node("Shape", [x]), const(0, "batch_axis")], hint="batch")
        first = builder.first_row()  # a share of the batch (a split step) numbers its rows from there
        start, stop = (const(0, "zero"), n) if first is None else (first, builder.node("Add", [first, n]))
        examples = builder.node("Range", [start, stop, const(1, "one")], hint="examples")
    else:
        examples = builder.constant(np.zeros(1, np.int64), "examples", np.int64)
    row = scramble(builder.node("Add", [examples, step_key]), ROW, "row")
    row = builder.node("Mod", [row, const(Q, "q")])
    row = builder.node("Reshape", [row, builder.constant(np.array([-1] + [1] * (rank - 1)), "rows", np.int64)])
    # The per-example index, channels last: from constants only, so ONNX Runtime folds it (and its scramble).
    size = math.prod(shape)
    first_index, stop_index = const(stream * size, "first_index"), const((stream + 1) * size, "stop_index")
    index = builder.node("Range", [first_index, stop_index, const(1, "one")], hint="index")
    index = builder.node("Reshape", [index, builder.constant(np.array(shape), "shape", np.int64)])
    if is_channels_first(builder, x) and rank > 2:
        index = builder.node("Transpose", [index], hint="index_cf", perm=[rank - 2, *range(rank - 2)])
    local = builder.node("Mod", [scramble(index, LOCAL, "local"), const(Q, "q")])
    key = builder.node("Add", [row, local], hint="key")
    return builder.node("Mod", [builder.node("Mul", [key, key]), const(P, "p")], hint="hash")
