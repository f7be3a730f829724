"""Keras 3's random geometric augmentations: RandomTranslation, RandomRotation and RandomZoom, each one affine
transform per image in training (`_image_sampling.affine_transform`, Keras' fill modes and interpolations), the
identity in evaluation, prediction and the export.

The numbers are drawn per image as `_augmentation.py` draws them, and the transform rows are Keras' (its
`get_random_transformation` and matrices), each mapping an output pixel (x, y) to the input point it samples:

    RandomTranslation   dy = v * H, dx = w * W            [1, 0, -dx, 0, 1, -dy]: positive moves the image down/right
    RandomRotation      a = v * 360 degrees, c = cos a,   [c, -s, cx - cx c + cy s, s, c, cy - cx s - cy c],
                        s = sin a, (cx, cy) = ((W - 1) / 2, (H - 1) / 2): positive turns counter-clockwise
    RandomZoom          zy = 1 + v, zx = 1 + w (or zy)    [zx, 0, (W - 1) / 2 (1 - zx), 0, zy, (H - 1) / 2 (1 - zy)]:
                                                          above 1 zooms out, below 1 in

with v and w uniform in the layer's (lower, upper) ranges. The sampler computes channels first (a channels-last
input is transposed in training; outside training it passes as it is). A gradient flows through the layers to
those before them (the sampler's GatherElements), so a trainable layer may come first; the ort-training engine refuses
them, as Dropout (no step counter).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._augmentation import Factor, between, config_factor, factor_range, symmetric, uniform
from onnxtrain.layers._dropout import _seed, layer_key
from onnxtrain.layers._image_sampling import FILL_MODES, INTERPOLATIONS, affine_transform, check_choice
from onnxtrain.layers._layer import Layer, Shape
from onnxtrain.layers._layout import channels_first, mark_channels_first
from onnxtrain.layers._resizing import finite_number, image_shape


class _RandomAffine(Layer):
    """What the three layers share: the sampling arguments, the draws and the sampler; a subclass gives
    `draw_count` (numbers per image) and `transform` (the rows, from those draws)."""

    accepts_channels_first = True
    keras_data_format = True
    draw_count = 1

    def _sampling(self, fill_mode: str, interpolation: str, seed: int | None, fill_value: float) -> None:
        owner = type(self).__name__
        self.fill_mode = check_choice(owner, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = check_choice(owner, "interpolation", interpolation, INTERPOLATIONS)
        self.seed = _seed(owner, seed)
        self.fill_value = finite_number(owner, "fill_value", fill_value)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return image_shape(self, input_shape)

    def transform(self, builder: GraphBuilder, draws: str, height: int, width: int) -> str:
        raise NotImplementedError

    def emit(self, builder: GraphBuilder, x: str) -> str:
        if not builder.training:
            return x
        assert self.input_shape is not None and self.name is not None, "layers must be built"
        height, width, _ = self.input_shape
        x = channels_first(builder, x, 4)
        draws = uniform(builder, x, self.draw_count, layer_key(self.name, self.seed))
        rows = self.transform(builder, draws, height, width)
        sampled = affine_transform(
            builder, x, rows, self.input_shape, self.interpolation, self.fill_mode, self.fill_value
        )
        return mark_channels_first(builder, sampled)

    def get_config(self) -> dict[str, Any]:
        return {
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "seed": self.seed,
            "fill_value": self.fill_value,
            **super().get_config(),
        }


def _rows(builder: GraphBuilder, columns: list[str | float]) -> str:
    """(N, 6) transform rows from six (N,) values or numbers (a number repeated for every image)."""
    like = next(c for c in columns if isinstance(c, str))
    shape = builder.node("Shape", [like])
    parts = []
    for column in columns:
        if not isinstance(column, str):
            column = builder.node("Expand", [builder.constant(np.float32(column), "entry"), shape])
        parts.append(builder.node("Unsqueeze", [column, builder.ints([1], "axis")]))
    return builder.node("Concat", parts, hint="transform", axis=1)


def _scaled(builder: GraphBuilder, value: str, factor: float, hint: str) -> str:
    return builder.node("Mul", [value, builder.constant(np.float32(factor), "factor")], hint=hint)


class RandomTranslation(_RandomAffine):
    """Shifts each image in training by a fraction of its height and width drawn per image (module docstring),
    filling the uncovered part per `fill_mode`; the identity in evaluation, prediction and the export.

    Args:
        height_factor, width_factor: a number f in [-1, 1] (a shift in [-|f|, |f|] of the size) or a pair
            (lower, upper) in [-1, 1]; positive moves the image down (right).
        fill_mode: "reflect", "wrap", "constant" or "nearest" (module docstring of `_image_sampling.py`).
        interpolation: "bilinear" or "nearest".
        seed: with the layer's name, picks the draws; every step draws new ones.
        fill_value: what "constant" fills with.
    """

    draw_count = 2

    def __init__(
        self,
        height_factor: Factor,
        width_factor: Factor,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.height_factor = factor_range("RandomTranslation", "height_factor", height_factor, -1.0, 1.0)
        self.width_factor = factor_range("RandomTranslation", "width_factor", width_factor, -1.0, 1.0)
        self._sampling(fill_mode, interpolation, seed, fill_value)

    def transform(self, builder: GraphBuilder, draws: str, height: int, width: int) -> str:
        dy = _scaled(builder, between(builder, draws, 0, *symmetric(self.height_factor), hint="v"), height, "dy")
        dx = _scaled(builder, between(builder, draws, 1, *symmetric(self.width_factor), hint="w"), width, "dx")
        minus_dx, minus_dy = builder.node("Neg", [dx]), builder.node("Neg", [dy])
        return _rows(builder, [1.0, 0.0, minus_dx, 0.0, 1.0, minus_dy])

    def get_config(self) -> dict[str, Any]:
        return {
            "height_factor": config_factor(self.height_factor),
            "width_factor": config_factor(self.width_factor),
            **super().get_config(),
        }


class RandomRotation(_RandomAffine):
    """Turns each image in training about its center by an angle drawn per image (module docstring), filling the
    corners per `fill_mode`; the identity in evaluation, prediction and the export.

    Args:
        factor: a fraction of a full turn: a number f in [-1, 1] (an angle in [-|f|, |f|] * 360 degrees) or a
            pair (lower, upper) in [-1, 1]; positive turns counter-clockwise.
        fill_mode, interpolation, seed, fill_value: as RandomTranslation's.
    """

    def __init__(
        self,
        factor: Factor,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.factor = factor_range("RandomRotation", "factor", factor, -1.0, 1.0)
        self._sampling(fill_mode, interpolation, seed, fill_value)

    def transform(self, builder: GraphBuilder, draws: str, height: int, width: int) -> str:
        lower, upper = symmetric(self.factor)
        degrees = between(builder, draws, 0, lower * 360.0, upper * 360.0, hint="degrees")
        angle = _scaled(builder, degrees, math.pi / 180.0, "radians")
        cos, sin = builder.node("Cos", [angle]), builder.node("Sin", [angle])
        cx, cy = (builder.constant(np.float32(0.5 * (size - 1)), "center") for size in (width, height))
        minus_sin = builder.node("Neg", [sin])

        def offset(center: str, first: str, second: str) -> str:  # Keras' a2 = cx - cx a0 - cy a1, in its order
            reduced = builder.node("Sub", [center, builder.node("Mul", [cx, first])])
            return builder.node("Sub", [reduced, builder.node("Mul", [cy, second])], hint="offset")

        return _rows(builder, [cos, minus_sin, offset(cx, cos, minus_sin), sin, cos, offset(cy, sin, cos)])

    def get_config(self) -> dict[str, Any]:
        return {"factor": config_factor(self.factor), **super().get_config()}


class RandomZoom(_RandomAffine):
    """Zooms each image in training about its center by factors drawn per image (module docstring), filling per
    `fill_mode` where it zooms out; the identity in evaluation, prediction and the export.

    Args:
        height_factor: a number f in (-1, 1] (a zoom in 1 + [-|f|, |f|]) or a pair (lower, upper) in (-1, 1]:
            positive zooms out, negative in.
        width_factor: the same for the width, or None: the height's draw (the aspect ratio kept).
        fill_mode, interpolation, seed, fill_value: as RandomTranslation's.
    """

    draw_count = 2

    def __init__(
        self,
        height_factor: Factor,
        width_factor: Factor | None = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        self.height_factor = factor_range("RandomZoom", "height_factor", height_factor, -1.0, 1.0, low_open=True)
        self.width_factor = (
            None
            if width_factor is None
            else factor_range("RandomZoom", "width_factor", width_factor, -1.0, 1.0, low_open=True)
        )
        self._sampling(fill_mode, interpolation, seed, fill_value)

    def transform(self, builder: GraphBuilder, draws: str, height: int, width: int) -> str:
        lower, upper = symmetric(self.height_factor)
        zoom_y = between(builder, draws, 0, 1.0 + lower, 1.0 + upper, hint="zoom_y")
        zoom_x = zoom_y
        if self.width_factor is not None:
            lower, upper = symmetric(self.width_factor)
            zoom_x = between(builder, draws, 1, 1.0 + lower, 1.0 + upper, hint="zoom_x")
        offsets = []
        for zoom, size in ((zoom_x, width), (zoom_y, height)):
            shrink = builder.node("Sub", [builder.constant(np.float32(1.0), "one"), zoom])
            offsets.append(_scaled(builder, shrink, (size - 1.0) / 2.0, "offset"))
        return _rows(builder, [zoom_x, 0.0, offsets[0], 0.0, zoom_y, offsets[1]])

    def get_config(self) -> dict[str, Any]:
        return {
            "height_factor": config_factor(self.height_factor),
            "width_factor": config_factor(self.width_factor),
            **super().get_config(),
        }
