"""The one rule for integer pixels that a float input reads, wherever they enter (`Dataset(x, y, input_scale=...)`,
fit, evaluate, predict, `InferenceModel`): at input_scale 1/255 (a model trained on 8-bit pixels) integers must lie
in [0, 255]; at input_scale 1, images of a pixel dtype (uint8, uint16, int16) are read raw, with a warning, unless
the model scales them itself (a Keras-style Rescaling(1 / 255) at the input's start: `rescales_raw_pixels`)."""

from __future__ import annotations

import os
import sys
import types
import warnings
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from onnxtrain._input_scale import is_pixel_rescaling, scale_divisor, value_layers_reached
from onnxtrain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from onnxtrain.functional import Functional

PIXEL_DIVISOR = 255.0
"""The divisor of a model trained on 8-bit pixels (input_scale 1/255): integer inputs must then lie in [0, 255]."""

ScaleOwner = Literal["model", "Dataset"]
"""Whose input_scale scales the integers: the model's (fit, evaluate, predict) or a Dataset's (its construction)."""


class _PixelDtype(NamedTuple):
    """What a pixel dtype holds, for the warning of raw pixels: its pixels' kind and range, and the divisor that
    takes them to `unit`."""

    kind: str
    values: str
    divisor: int
    unit: str


_PIXEL_DTYPES = {
    np.dtype(np.uint8): _PixelDtype("pixels", "0-255", 255, "[0, 1]"),
    np.dtype(np.uint16): _PixelDtype("16-bit pixels", "0-65535", 65535, "[0, 1]"),
    np.dtype(np.int16): _PixelDtype("16-bit pixels", "-32768 to 32767", 32768, "[-1, 1]"),
}
"""The integer dtypes images come in: 8-bit, and 16-bit (medical and scientific images, int16 CT values)."""


def check_integer_pixels(
    x: np.ndarray, input_scale: float, argument: str, owner: ScaleOwner = "model", model_rescales: bool = False
) -> None:
    """Apply the module's rule to integer `x` that a float input reads at `input_scale` (`owner`'s): refuse values
    outside [0, 255] at 1/255 (`check_pixel_range`), warn of raw pixels at 1 (`warn_of_raw_pixels`), except into
    a model that scales raw pixels itself (`model_rescales`: see `rescales_raw_pixels`). Costs one min/max pass for
    integers other than uint8 at 1/255, nothing otherwise.

    Raises:
        InvalidArgumentError: the errors of `check_pixel_range`.
    """
    check_pixel_range(x, input_scale, argument, owner)
    if input_scale == 1.0 and x.dtype in _PIXEL_DTYPES and not model_rescales:
        warn_of_raw_pixels(argument, x.dtype, owner)


def rescales_raw_pixels(graph: Functional) -> list[bool]:
    """Per input of `graph`, in order: whether the model scales that input's raw pixels itself, so it is meant to
    read them: some path from the input reaches Keras' `Rescaling(1 / 255)` (or another scalar scale of at most
    1/127.5), possibly after layers that only move values (RandomFlip, Resizing...) or keep them in their
    value_range, inside nested models too (fit's walk, which refuses such a model on pixels scaled already). An
    input that also feeds other layers unscaled still counts: the model was built for its raw pixels. Each input
    is judged on its own paths: an image input that a Rescaling divides, beside a float `meta` one, is not warned
    of."""
    return [any(is_pixel_rescaling(layer) for layer in value_layers_reached(graph, x)) for x in graph.inputs]


def check_pixel_range(x: np.ndarray, input_scale: float, argument: str, owner: ScaleOwner = "model") -> None:
    """Refuse integer `x` outside [0, 255] where the input_scale is 1/255 (a model trained on 8-bit pixels):
    dividing 16-bit pixels, negative numbers or 300 by 255 would feed values the model never saw, silently.
    Costs nothing for uint8 arrays (always in range) and for other scales.

    Raises:
        InvalidArgumentError: naming the first value outside [0, 255], its index, and how to bring 16-bit pixels
            to 8 bits.
    """
    if x.dtype == np.uint8 or x.dtype.kind not in "iu" or scale_divisor(input_scale) != PIXEL_DIVISOR:
        return
    if x.min() >= 0 and x.max() <= PIXEL_DIVISOR:
        return
    index = np.unravel_index(int(np.flatnonzero((x < 0) | (x > PIXEL_DIVISOR))[0]), x.shape)
    fix = (
        f"16-bit pixels need 8 bits first: pass {argument} >> 8 (uint8), or float32 values {argument} / 65535"
        if x.dtype == np.uint16
        else f"Bring them to [0, 255] first (16-bit pixels: {argument} >> 8), or pass float32 values, which are "
        "used as they are"
    )
    why = (
        "it divides integer inputs by 255, as it was trained on 8-bit pixels"
        if owner == "model"
        else "it divides integer x by 255, which takes 8-bit pixels to [0, 1]"
    )
    raise InvalidArgumentError(
        f"{argument} expects integer pixels in [0, 255]: the {owner}'s input_scale is 1/255 ({why}). Received: "
        f"{argument}[{', '.join(map(str, index))}]={x[index].item()!r} (dtype {x.dtype}). {fix}."
    )


def warn_of_raw_pixels(argument: str, dtype: np.dtype | type = np.uint8, owner: ScaleOwner = "model") -> None:
    """Warn that `argument`, integer pixels of `dtype` (uint8, uint16, int16), goes as it is into a float input at
    input_scale 1, seldom what a model trained on [0, 1] wants (onnxtrain-js' Trainer applies the same rule: it
    warns of uint8, uint16 and int16, and refuses values outside [0, 255] at 1/255). Python shows it once per
    calling line: the warning names the user's line, not onnxtrain's."""
    dtype = np.dtype(dtype)
    pixels = _PIXEL_DTYPES.get(dtype, _PIXEL_DTYPES[np.dtype(np.uint8)])
    n = pixels.divisor
    scale_it = (
        f"give the model input_scale = 1 / {n} (model.input_scale = 1 / {n}, then save or export it again; integer "
        f"inputs are then divided by {n})"
        if owner == "model"
        else f"give the Dataset input_scale=1 / {n} (integer x is then divided by {n})"
    )
    warnings.warn(
        f"{argument} is {dtype} ({pixels.kind} {pixels.values}) and the {owner}'s input_scale is 1, so the model "
        f"reads the raw values ({pixels.values}). If it was trained on values in {pixels.unit}, scale them: "
        f"pass float32 values x / {n}, or {scale_it}. If it was trained on raw values, pass x.astype(np.float32) "
        "to silence this warning.",
        UserWarning,
        stacklevel=_outside_onnxtrain(),
    )


def _outside_onnxtrain() -> int:
    """The `stacklevel` of the first caller outside the onnxtrain package (for the caller of `warnings.warn`)."""
    level = 2  # 1: the function that warns; 2: its caller
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    return level


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
