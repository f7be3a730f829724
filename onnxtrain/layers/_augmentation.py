"""Keras 3's random image augmentation layers that move no pixel off its grid: RandomFlip, RandomContrast,
RandomBrightness and RandomCrop (the geometric ones are in `_augmentation_geometric.py`).

Each changes images in the portable engine's training step only and is the identity in evaluation, prediction and
the export (RandomCrop, whose output is smaller, center-crops and resizes there, as Keras' docstring says). Their
random numbers are drawn as Dropout's masks (`_dropout.element_hash`): a pure function of (seed, layer name,
training step, image index in the batch), computed by standard int64 ONNX ops, so a resumed run and any runtime draw
the same. A layer drawing k numbers per image reads the hashes (N, k) and takes their top 24 bits, as `_noise.py`:

    u = (hash // 128) / 2^24   in [0, 1), exact in float32;   a draw in [low, high) = low + u * (high - low)

What is drawn per image and what per batch follows Keras 3 (its `get_random_transformation`): one draw per image for
RandomFlip, RandomContrast and RandomBrightness; one crop offset for the whole batch for RandomCrop. The ort-training
engine refuses these layers, as it refuses Dropout: its graph has no step counter.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import onnx

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._dropout import _seed, element_hash, layer_key
from onnxtrain.layers._image_sampling import check_choice
from onnxtrain.layers._layer import Layer, Shape
from onnxtrain.layers._layout import channels_first, is_channels_first, mark_channels_first, same_layout
from onnxtrain.layers._resizing import image_shape, smart_resize

TOP_BITS = 24
Factor = float | tuple[float, float]


def random_bits(builder: GraphBuilder, x: str, count: int, layer: int, per_image: bool = True) -> str:
    """int64 (N, count) (per image) or (1, count) (per batch): each the top 24 bits of a hash, in [0, 2^24)."""
    h = element_hash(builder, x, (count,), per_image, layer)
    return builder.node("Div", [h, builder.constant(np.int64(128), "top_bits", np.int64)], hint="random_bits")


def uniform(builder: GraphBuilder, x: str, count: int, layer: int) -> str:
    """float32 (N, count): per image of batch `x`, `count` draws uniform in [0, 1) (the module docstring)."""
    bits = builder.node("Cast", [random_bits(builder, x, count, layer)], to=onnx.TensorProto.FLOAT)
    return builder.node("Mul", [bits, builder.constant(np.float32(2.0**-TOP_BITS), "two_to_minus_24")], hint="uniform")


def between(builder: GraphBuilder, draws: str, column: int, low: float, high: float, hint: str) -> str:
    """float32 (N,): column `column` of (N, k) uniform `draws`, mapped to [low, high) as Keras' uniform(minval,
    maxval) maps its draws: u * (high - low) + low."""
    u = builder.node("Gather", [draws, builder.constant(np.int64(column), "column", np.int64)], axis=1)
    scaled = builder.node("Mul", [u, builder.constant(np.float32(high - low), "width")])
    return builder.node("Add", [scaled, builder.constant(np.float32(low), "low")], hint=hint)


def per_image(builder: GraphBuilder, values: str) -> str:
    """(N,) as (N, 1, 1, 1), to broadcast over each image."""
    return builder.node("Reshape", [values, builder.ints([-1, 1, 1, 1], "per_image")])


def factor_range(owner: str, arg: str, value: object, low: float, high: float, low_open: bool = False) -> Factor:
    """Keras' factor: a number, or a pair (lower, upper), each in [low, high] ((low, high] with `low_open`), as
    given: a number as a float, a pair as a tuple of floats."""
    pair = isinstance(value, tuple | list)
    numbers = [as_real(v) for v in value] if isinstance(value, tuple | list) else [as_real(value)]
    inside = [n for n in numbers if n is not None and (low < n if low_open else low <= n) and n <= high]
    if len(inside) != len(numbers) or len(inside) != (2 if pair else 1):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise InvalidArgumentError(
            f"{owner}({arg}=...) expects a number or a pair (lower, upper) of numbers in {interval}. "
            f"Received: {arg}={value!r}"
        )
    return (inside[0], inside[1]) if pair else inside[0]


def symmetric(factor: Factor) -> tuple[float, float]:
    """Keras' (lower, upper) of a factor: a number f is (-|f|, |f|), a pair is sorted."""
    if isinstance(factor, tuple):
        return min(factor), max(factor)
    return -abs(factor), abs(factor)


def config_factor(factor: Factor | None) -> float | list[float] | None:
    return list(factor) if isinstance(factor, tuple) else factor


def checked_value_range(owner: str, value: object, sort: bool = False) -> tuple[float, float]:
    """Keras' value_range: two finite numbers (low, high), low < high; `sort`: a reversed pair is taken sorted."""
    numbers = [as_real(v) for v in value] if isinstance(value, tuple | list) else []
    if len(numbers) != 2 or any(n is None or not abs(n) <= FLOAT32_MAX for n in numbers):
        raise InvalidArgumentError(
            f"{owner}(value_range=...) expects a pair (low, high) of finite numbers. Received: value_range={value!r}"
        )
    low, high = numbers[0], numbers[1]
    assert low is not None and high is not None
    if sort:
        low, high = min(low, high), max(low, high)
    if not low < high:
        raise InvalidArgumentError(
            f"{owner}(value_range=...) expects low < high, the range of the images' values. "
            f"Received: value_range={value!r}"
        )
    return low, high


def _spatial_axes(builder: GraphBuilder, x: str) -> list[int]:
    return [2, 3] if is_channels_first(builder, x) else [1, 2]


class RandomFlip(Layer):
    """Flips each image with probability 1/2 in training: "horizontal" left-right, "vertical" top-bottom,
    "horizontal_and_vertical" both at once (Keras 3 draws one number per image for both, so an image is either
    unchanged or turned by 180 degrees); the identity in evaluation, prediction and the export."""

    accepts_channels_first = True
    keras_data_format = True
    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: int | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.mode = check_choice("RandomFlip", "mode", mode, self.MODES)
        self.seed = _seed("RandomFlip", seed)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return image_shape(self, input_shape)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        if not builder.training:
            return x
        assert self.name is not None, "layers must be built"
        height, width = _spatial_axes(builder, x)
        axes = {"horizontal": [width], "vertical": [height], "horizontal_and_vertical": [height, width]}[self.mode]
        flips = builder.node(
            "LessOrEqual",  # Keras: uniform <= 0.5
            [uniform(builder, x, 1, layer_key(self.name, self.seed)), builder.constant(np.float32(0.5), "half")],
        )
        reversed_axes = [-1] * len(axes)
        flipped = builder.node(
            "Slice",
            [
                x,
                builder.ints(reversed_axes, "starts"),
                builder.ints([np.iinfo(np.int64).min] * len(axes), "ends"),
                builder.ints(axes, "axes"),
                builder.ints(reversed_axes, "steps"),
            ],
            hint="flipped",
        )
        return same_layout(builder, x, builder.node("Where", [per_image(builder, flips), flipped, x], hint="flip"))

    def get_config(self) -> dict[str, Any]:
        return {"mode": self.mode, "seed": self.seed, **super().get_config()}


class _ImageAdjustment(Layer):
    """What RandomContrast and RandomBrightness share: Keras' (factor, value_range, seed) arguments, one draw per
    image in training (`adjust` turns it into the new values), the identity elsewhere. A subclass gives the range
    its factor takes and whether a reversed value_range is sorted (Keras' RandomBrightness sorts it)."""

    accepts_channels_first = True
    keras_data_format = True
    factor_bounds: ClassVar[tuple[float, float]]
    sorts_value_range: ClassVar[bool] = False

    def __init__(
        self,
        factor: Factor,
        value_range: tuple[float, float] = (0, 255),
        seed: int | None = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        owner = type(self).__name__
        self.factor = factor_range(owner, "factor", factor, *self.factor_bounds)
        self.value_range = checked_value_range(owner, value_range, sort=self.sorts_value_range)
        self.seed = _seed(owner, seed)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return image_shape(self, input_shape)

    def adjust(self, builder: GraphBuilder, x: str, draws: str) -> str:
        """The adjusted images of `x` (before clipping), from each image's uniform draw in `draws` (N, 1)."""
        raise NotImplementedError

    def emit(self, builder: GraphBuilder, x: str) -> str:
        if not builder.training:
            return x
        assert self.name is not None, "layers must be built"
        draws = uniform(builder, x, 1, layer_key(self.name, self.seed))
        return same_layout(builder, x, _clipped(builder, self.adjust(builder, x, draws), self.value_range))

    def get_config(self) -> dict[str, Any]:
        return {
            "factor": config_factor(self.factor),
            "value_range": list(self.value_range),
            "seed": self.seed,
            **super().get_config(),
        }


class RandomContrast(_ImageAdjustment):
    """Per image in training, (x - mean) * c + mean, the mean per channel over the image, then clipped to
    `value_range`; c is drawn per image in [1 - lower, 1 + upper]. The identity in evaluation, prediction and the
    export.

    Args:
        factor: a number f in [0, 1], as Keras 3 reads it (lower, upper) = (0, f): c in [1, 1 + f] (Keras'
            docstring says [1 - f, 1 + f]; its code draws this); or a pair (lower, upper) in [0, 1]: c in
            [1 - lower, 1 + upper] (pass (f, f) for [1 - f, 1 + f]).
        value_range: (low, high), the images' range, which the output is clipped to.
        seed: with the layer's name, picks the draws; every step draws new ones.
    """

    factor_bounds = (0.0, 1.0)

    def contrast_range(self) -> tuple[float, float]:
        """The range c is drawn from, as Keras 3 computes it."""
        lower, upper = sorted(self.factor) if isinstance(self.factor, tuple) else (0.0, self.factor)
        return 1.0 - lower, 1.0 + upper

    def adjust(self, builder: GraphBuilder, x: str, draws: str) -> str:
        contrast = per_image(builder, between(builder, draws, 0, *self.contrast_range(), hint="contrast"))
        mean = builder.reduce("ReduceMean", x, _spatial_axes(builder, x), keepdims=True, hint="mean")
        scaled = builder.node("Mul", [builder.node("Sub", [x, mean]), contrast])
        return builder.node("Add", [scaled, mean], hint="adjusted")


class RandomBrightness(_ImageAdjustment):
    """Per image in training, adds d * (high - low), d drawn per image in [lower, upper], then clips to
    `value_range` = (low, high); the identity in evaluation, prediction and the export.

    Args:
        factor: a number f in [-1, 1] (d in [-|f|, |f|]) or a pair (lower, upper) in [-1, 1].
        value_range: (low, high), the images' range (Keras sorts a reversed pair, and so does this).
        seed: with the layer's name, picks the draws; every step draws new ones.
    """

    factor_bounds = (-1.0, 1.0)
    sorts_value_range = True

    def adjust(self, builder: GraphBuilder, x: str, draws: str) -> str:
        delta = between(builder, draws, 0, *symmetric(self.factor), hint="brightness")
        span = builder.constant(np.float32(self.value_range[1] - self.value_range[0]), "span")
        return builder.node("Add", [x, per_image(builder, builder.node("Mul", [delta, span]))], hint="shifted")


def _clipped(builder: GraphBuilder, x: str, limits: tuple[float, float]) -> str:
    low, high = (builder.constant(np.float32(v), name) for v, name in zip(limits, ("low", "high"), strict=True))
    return builder.node("Clip", [x, low, high], hint="clipped")


class RandomCrop(Layer):
    """A random (height, width) window of the images in training, at one offset for the whole batch (Keras 3 draws
    one); an input no larger than that in either dimension, and every input in evaluation, prediction and the
    export, gets Keras' `smart_resize` instead: the largest centered crop of the target's aspect ratio, resized
    (bilinear) to (height, width). (Keras 3.15's code returns the input uncropped at inference, against its
    docstring and its own output shape; tf.keras 2 resized as here.)"""

    accepts_channels_first = True
    keras_data_format = True

    def __init__(
        self, height: int, width: int, seed: int | None = None, name: str | None = None, trainable: bool = True
    ):
        super().__init__(name=name, trainable=trainable)
        self.height = _positive_int("RandomCrop", "height", height)
        self.width = _positive_int("RandomCrop", "width", width)
        self.seed = _seed("RandomCrop", seed)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.height, self.width, image_shape(self, input_shape)[2])

    def emit(self, builder: GraphBuilder, x: str) -> str:
        assert self.input_shape is not None and self.name is not None, "layers must be built"
        (height, width, channels), target = self.input_shape, (self.height, self.width)
        if (height, width) == target:
            return x
        if not (builder.training and height > self.height and width > self.width):
            resized = smart_resize(builder, channels_first(builder, x, 4), (height, width), target)
            return mark_channels_first(builder, resized)
        # The offset in [0, room): floor(u * room) from the top 24 bits in int64, exact (no float32 rounding up).
        bits = random_bits(builder, x, 2, layer_key(self.name, self.seed), per_image=False)
        room = builder.ints([height - self.height + 1, width - self.width + 1], "room")
        offset = builder.node("Div", [builder.node("Mul", [bits, room]), builder.ints([1 << TOP_BITS], "scale")])
        starts = builder.node("Reshape", [offset, builder.ints([2], "two")], hint="starts")
        ends = builder.node("Add", [starts, builder.ints(list(target), "size")])
        axes = builder.ints(_spatial_axes(builder, x), "axes")
        cropped = builder.node("Slice", [x, starts, ends, axes], hint="cropped")
        # The run-time offset leaves the crop's size unknown to shape inference: state it.
        sizes = [channels, *target] if is_channels_first(builder, x) else [*target, channels]
        shape = builder.ints([0, *sizes], "crop_shape")
        return same_layout(builder, x, builder.node("Reshape", [cropped, shape], hint="random_crop"))

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "seed": self.seed, **super().get_config()}
