"""The input scale: the factor that takes a model's integer inputs (uint8 pixels) to the floats it trained on, which
values are one (`valid_input_scale`), the scaling itself (`scale_integers`: 1/n divides by n, bit for bit the
loaders' own `x / 255`), and the mistakes of scaling pixels twice (`rescales_pixels_again`) or augmenting scaled
pixels in the range of raw ones (`refuse_raw_value_ranges`; `refuse_raw_value_ranges_of_model` where the model's
own input_scale scales them), found by walking the layers that keep the values'
scale from a model's start (or, per input, `value_layers_reached`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._checks import as_real
from onnxtrain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from onnxtrain.functional import Functional

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
    Resizing first) or keep them in their value_range (RandomBrightness, RandomContrast), and inside a nested model
    at the start; the walk stops at the first layer of any other kind.
    """
    if data_scale == 1.0:
        return None
    first = _first_value_layer(layers)
    return (str(first.name), float(first.scale)) if is_pixel_rescaling(first) else None  # type: ignore[attr-defined]


def refuse_raw_value_ranges(layers: Sequence[Any], data_scale: float, data: str) -> None:
    """Refuse pixels scaled by `data_scale` to a unit range (at most 1/127.5: a Dataset of input_scale 1/255) for
    a model whose augmentation layers at its start (before any layer that changes values, as for
    `rescales_pixels_again`) take a value_range of raw pixels: Keras' default value_range=(0, 255) of
    RandomBrightness and RandomContrast, whose high is at least 127.5. RandomBrightness(0.2) would then shift
    [0, 1] pixels by up to 51 and RandomContrast would not clip them: the model trains on noise, silently. In
    Keras these layers see the 0-255 pixels (its Rescaling comes after them); here the loaders divide first.
    Refused rather than warned of, as fit refuses a Rescaling of scaled pixels: neither ever trains as meant.

    Args:
        data: what the data are, for the message ("fit's training data").

    Raises:
        InvalidArgumentError: naming every such layer, its value_range and the one that fits the data.
    """
    named, fits = _raw_value_ranges(layers, data_scale)
    if not named:
        return
    raise InvalidArgumentError(
        f"{data} holds pixels already divided by {1 / data_scale:.6g} (input_scale {data_scale:.6g}, as "
        f"fashion_mnist() and image_dataset_from_directory() give), and the model's augmentation layers at its start "
        f"take the range of raw 0-255 pixels: {named}. They would shift and clip the scaled pixels as if they were "
        f"0-255 ones, and the model would train on noise (in Keras these layers see raw pixels, its Rescaling coming "
        f"after them). Give them the data's range, value_range={fits}, or pass unscaled pixels "
        "(image_dataset_from_directory(..., scale_pixels=False)) and put Rescaling(1 / 255) after them."
    )


def refuse_raw_value_ranges_of_model(layers: Sequence[Any], input_scale: float, action: str) -> None:
    """`refuse_raw_value_ranges` where the model's own `input_scale` (at most 1/127.5: `model.input_scale = 1 / 255`
    set on a model that reads uint8 pixels, docs/images.md's route for unscaled ones) scales the pixels: it divides
    them before its first layer, so its augmentation layers left at Keras' value_range=(0, 255) shift [0, 1]
    pixels by up to 127 as surely as after a loader's division. An input_scale says what the model trains on
    (integer inputs times it), so floats given as they are must be in that range too: refused whatever the data's
    dtype, since no data trains such a model as meant.

    Args:
        action: what is refused, for the message ("fit").

    Raises:
        InvalidArgumentError: naming every such layer, its value_range and the one that fits the scaled pixels.
    """
    named, fits = _raw_value_ranges(layers, input_scale)
    if not named:
        return
    raise InvalidArgumentError(
        f"{action}: the model's input_scale is {input_scale:.6g} (1/{1 / input_scale:.6g}: it divides integer pixels "
        f"by {1 / input_scale:.6g} before its first layer, whose layers see the scaled pixels), and its augmentation "
        f"layers at its start take the range of raw 0-255 pixels: {named}. They would shift and clip the scaled "
        "pixels as if they were 0-255 ones, and the model would train on noise. Give them the scaled range, "
        f"value_range={fits}, or leave model.input_scale at 1 and put Rescaling(1 / 255) after them (the model then "
        "reads raw pixels and scales them itself, as in Keras)."
    )


def _raw_value_ranges(layers: Sequence[Any], scale: float) -> tuple[str, str]:
    """For pixels scaled by `scale` to a unit range (at most 1/127.5), the value_range layers at the model's start
    whose range is raw pixels' (high at least 127.5), named as the refusals name them, and the range that fits the
    scaled pixels; ("", "") where there is none, or `scale` is no pixel scaling."""
    if not 0.0 < scale <= 1 / 127.5:
        return "", ""
    raw = [layer for layer in _value_range_layers(layers) if layer.value_range[1] >= 127.5]
    if not raw:
        return "", ""
    named = ", ".join(
        f"{layer.name!r} ({type(layer).__name__}, value_range={_pair(layer.value_range)})" for layer in raw
    )
    return named, _pair(tuple(v * scale for v in raw[0].value_range))


def _pair(values: Sequence[float]) -> str:
    return f"({', '.join(f'{v:.6g}' for v in values)})"


def is_pixel_rescaling(layer: object) -> bool:
    """Keras' Rescaling by one scalar of at most 1/127.5: what takes 0-255 pixels to a unit range."""
    from onnxtrain.layers import Rescaling  # the layers import this module's package

    return isinstance(layer, Rescaling) and np.ndim(layer.scale) == 0 and 0.0 < float(layer.scale) <= 1 / 127.5


def value_layers_reached(graph: Functional, start: object) -> list[object]:
    """The first layers that may change the scale of the values on each path of `graph` from tensor `start` (an
    Input, or a call's output), walking through scale-keeping layers and into nested models."""
    from onnxtrain.functional import Functional

    found: list[object] = []
    frontier, seen = [start], {id(start)}
    while frontier:
        tensor = frontier.pop()
        for node in graph._nodes:
            if not any(x is tensor for x in node.inputs) or id(node) in seen:
                continue
            layer = node.layer
            if isinstance(layer, Functional):
                inner = [
                    found_inside
                    for x, inside in zip(node.inputs, layer.inputs, strict=True)
                    if x is tensor
                    for found_inside in value_layers_reached(layer, inside)
                ]
                if inner:
                    found.extend(inner)
                    continue
            elif not _keeps_scale(layer):
                found.append(layer)
                continue
            seen.add(id(node))
            frontier.append(node)
    return found


def _first_value_layer(layers: Sequence[Any]) -> object | None:
    """The first of `layers` (in order, looking inside nested models) that may change the scale of the values
    (`_keeps_scale`). None when there is none."""
    from onnxtrain.layers import Layer

    for layer in layers:
        nested = getattr(layer, "layers", None)
        if nested is not None and not isinstance(layer, Layer):  # a Model or Sequential (the models import this
            found = _first_value_layer(nested)  # module, so they are told by their layer list, not their class)
            if found is not None:
                return found
        elif not _keeps_scale(layer):
            return layer
    return None


def _value_range_layers(layers: Sequence[Any]) -> list[Any]:
    """The layers with a value_range among those `_first_value_layer` walks past, in order."""
    from onnxtrain.layers import Layer

    found = []
    for layer in layers:
        nested = getattr(layer, "layers", None)
        if nested is not None and not isinstance(layer, Layer):
            found += _value_range_layers(nested)
            if _first_value_layer(nested) is not None:
                break
        elif not _keeps_scale(layer):
            break
        elif _has_value_range(layer):
            found.append(layer)
    return found


def _keeps_scale(layer: object) -> bool:
    """Whether `layer` keeps the values' scale: it only moves them (`_scale_keeping_layers`) or keeps them in its
    value_range (Keras' RandomBrightness and RandomContrast clip to it)."""
    return isinstance(layer, _scale_keeping_layers()) or _has_value_range(layer)


def _has_value_range(layer: object) -> bool:
    value_range = getattr(layer, "value_range", None)
    return isinstance(value_range, tuple | list) and len(value_range) == 2


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
