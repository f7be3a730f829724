"""The input scale: the factor that takes a model's integer inputs (uint8 pixels) to the floats it trained on, which
values are one (`valid_input_scale`), the scaling itself (`scale_integers`: 1/n divides by n, bit for bit the
loaders' own `x / 255`), and the mistake of scaling twice (`rescales_pixels_again`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxtrain._checks import as_real

INPUT_SCALE_RANGE = (float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))
"""An input scale is a float32 normal number: smaller ones flush to zero in ORT's float mode, larger overflow."""


def valid_input_scale(value: object) -> float | None:
    """`value` as a float when it can scale inputs: a real number in INPUT_SCALE_RANGE, not a bool; else None."""
    scale = as_real(value)
    low, high = INPUT_SCALE_RANGE
    return scale if scale is not None and low <= scale <= high else None


def scale_divisor(input_scale: float) -> float | None:
    """n when `input_scale` is 1/n for a whole n > 1 that float32 holds exactly (255.0 for 1/255), else None.

    1/n is recognised as Python computes it (1 / 49 is 0.02040816326530612, whose own inverse is not exactly 49)
    and as float32 holds it (np.float32(1 / 255)).
    """
    if not 2.0**-25 < input_scale < 1.0:  # n in (1, 2**24], with room for rounding; also refuses NaN
        return None
    n = round(1.0 / input_scale)
    if not 1 < n <= 2**24:
        return None
    return float(n) if input_scale in (1.0 / n, float(np.float32(1.0 / n))) else None


def scale_integers(x: np.ndarray, input_scale: float) -> np.ndarray:
    """Integer (or bool) `x` as float32 times `input_scale`: a new array.

    A scale of 1/n for a whole n (1/255) divides by n instead. That is how the dataset loaders and the usual
    `x / 255.0` make their floats, so raw pixels reach the model as exactly the values it trained on:
    multiplying by float32(1/255) differs from them in the last bit for 126 of the 256 byte values.
    """
    floats = x.astype(np.float32)
    if input_scale == 1.0:
        return floats
    divisor = scale_divisor(input_scale)
    if divisor is not None:
        return np.divide(floats, np.float32(divisor), out=floats)
    with np.errstate(over="ignore"):  # products beyond float32 become inf, which the callers refuse by name
        return np.multiply(floats, np.float32(input_scale), out=floats)


def rescales_pixels_again(layers: Sequence[Any], data_scale: float) -> tuple[str, float] | None:
    """(the layer's name, its scale) when data already scaled by `data_scale` (a Dataset of input_scale 1/255, as
    `fashion_mnist()` and `image_dataset_from_directory()` give) meets a model that divides it again before any
    layer changes values: Keras' `Rescaling(1 / 255)`, or any scalar scale of at most 1/127.5, which takes 0-255
    values to a unit range. The model would train on pixels / 65025. None otherwise.

    The Rescaling may come after layers that only move values (Keras' tutorials put RandomFlip, RandomRotation or
    Resizing first) and inside a nested model at the start; the walk stops at the first layer of any other kind.
    """
    from onnxtrain.layers import Rescaling  # the layers import this module's package

    if data_scale == 1.0:
        return None
    first = _first_value_layer(layers)
    if not isinstance(first, Rescaling) or np.ndim(first.scale) != 0:
        return None
    scale = float(first.scale)
    return (str(first.name), scale) if 0.0 < scale <= 1 / 127.5 else None


def _first_value_layer(layers: Sequence[Any]) -> object | None:
    """The first of `layers` (in order, looking inside nested models) that may change the scale of the values:
    neither an Input nor a layer that only moves, resizes, crops or pads them. None when there is none."""
    from onnxtrain.layers import Layer

    for layer in layers:
        nested = getattr(layer, "layers", None)
        if nested is not None and not isinstance(layer, Layer):  # a Model or Sequential (the models import this
            found = _first_value_layer(nested)  # module, so they are told by their layer list, not their class)
            if found is not None:
                return found
        elif not isinstance(layer, _scale_keeping_layers()):
            return layer
    return None


def _scale_keeping_layers() -> tuple[type, ...]:
    """Layers whose outputs are input values moved, interpolated, repeated or padded with zeros: they keep the
    values' scale, so a Rescaling after them still meets the data's own pixels."""
    from onnxtrain import layers

    return (
        layers.Input,
        layers.RandomFlip,
        layers.RandomCrop,
        layers.RandomTranslation,
        layers.RandomRotation,
        layers.RandomZoom,
        layers.Resizing,
        layers.CenterCrop,
        layers.Reshape,
        layers.Permute,
        layers.Flatten,
        layers.Cropping1D,
        layers.Cropping2D,
        layers.Cropping3D,
        layers.ZeroPadding1D,
        layers.ZeroPadding2D,
        layers.ZeroPadding3D,
        layers.UpSampling1D,
        layers.UpSampling2D,
        layers.UpSampling3D,
    )
