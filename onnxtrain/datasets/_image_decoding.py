"""One image file as uint8 pixels (height, width, channels) of a color mode and size (`read_image`): Pillow's
decoding (imported when first needed, `pillow`), the color conversions, and Keras' crop or pad to the aspect ratio
before the resize."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from onnxtrain._bounded_read import open_regular
from onnxtrain.errors import DataFormatError, RuntimeSetupError

CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
"""Keras' color modes and the channels each gives."""

RESAMPLING = {"bilinear": "BILINEAR", "nearest": "NEAREST", "bicubic": "BICUBIC", "area": "BOX", "lanczos3": "LANCZOS"}
"""Keras' interpolations that Pillow has (`Image.Resampling` names): area is Pillow's box filter, lanczos3 its
Lanczos (a = 3). Keras' lanczos5, gaussian and mitchellcubic have none."""

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def pillow(caller: str) -> ModuleType:
    """Pillow's `PIL.Image`, imported on first use: onnxtrain needs it only to read image files.

    Raises:
        RuntimeSetupError: Pillow is not installed (naming the pip command).
    """
    try:
        from PIL import Image
    except ImportError as e:
        raise RuntimeSetupError(
            f"{caller} reads image files with Pillow, which is not installed: pip install 'onnxtrain[images]' (or "
            "pip install pillow)"
        ) from e
    return Image


@dataclass(frozen=True)
class ImageReading:
    """How every image of a folder is read: its color mode's channels, the (height, width) it is resized to, the
    Pillow filter of the resize, and Keras' crop or pad to the target's aspect ratio first."""

    channels: int
    size: tuple[int, int]
    interpolation: str
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False


def read_image(path: str, reading: ImageReading, image_module: ModuleType) -> np.ndarray:
    """The pixels of the image file `path`, uint8 ``(height, width, channels)`` as `reading` says.

    Colors: see `converted`. Geometry, as Keras: with `crop_to_aspect_ratio` the largest centred window of the
    target's aspect ratio is cut out, with `pad_to_aspect_ratio` the image is centred on black (transparent for
    rgba) of that aspect ratio; then it is resized (Pillow's filters, which smooth when they shrink, as
    torchvision's resize does; Keras' TensorFlow resize does not, so its pixels differ slightly). An image of the
    target size is taken as it is. An animated GIF gives its first frame.

    Raises:
        DataFormatError: naming the file that cannot be read as an image (unknown format, damaged, truncated, not a
            regular file, unreadable), or whose values have no 8-bit meaning (a floating-point or 32-bit image).
    """
    try:
        with open_regular(Path(path)) as file, image_module.open(file) as image:
            image.load()  # decode now: a truncated or damaged file fails here, not later
            colored = converted(image, reading.channels, path, image_module)
    except DataFormatError:
        raise
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as e:
        unknown = isinstance(e, image_module.UnidentifiedImageError)
        why = "Pillow does not recognise its format (not an image, or a damaged one)" if unknown else _reason(e)
        raise DataFormatError(f"'{path}' cannot be read as an image: {why}. Replace or remove the file.") from e
    pixels = np.asarray(_resized(colored, reading, image_module))
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def converted(image: Any, channels: int, source: str, image_module: ModuleType) -> Any:
    """A Pillow `image` in the mode of `channels` ("L", "RGB" or "RGBA"): the one rule by which onnxtrain reads an
    image, in a folder (`read_image`) and in `onnxtrain predict --input` (`cli._image_input.image_pixels`):

    - 16-bit grey (Pillow modes "I;16*", and "I" within 0-65535): each value v becomes round(v / 257), the nearest
      8-bit level; Pillow's own conversion would clip at 255.
    - Transparency (an alpha band, or a palette or colour key marked transparent) for grayscale and rgb:
      composited on black, each colour times alpha / 255, rounded, so a transparent pixel reads 0. (Keras and
      torchvision drop the alpha band instead, which differs where pixels are not opaque.) rgba keeps it.
    - Anything else: Pillow's conversion (grey is ITU-R 601-2 luma, L = R * 299/1000 + G * 587/1000 + B * 114/1000).

    Raises:
        DataFormatError: a floating-point image (mode "F"), or a 32-bit one with values beyond 16 bits.
    """
    mode = _MODES[channels]
    if image.mode == "F":
        raise DataFormatError(
            f"'{source}' is a floating-point image (Pillow mode 'F'), whose range has no 8-bit meaning. Save it as "
            "an 8- or 16-bit image."
        )
    if image.mode == "I" or image.mode.startswith("I;16"):
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataFormatError(
                f"'{source}' is a 32-bit integer image (Pillow mode {image.mode!r}) with values in "
                f"[{values.min()}, {values.max()}], beyond 16 bits. Save it as an 8- or 16-bit image."
            )
        grey = ((values + 128) // 257).astype(np.uint8)  # round(v / 257): 257 is odd, so there are no ties
        return image_module.fromarray(grey).convert(mode)
    transparent = any(band in ("A", "a") for band in image.getbands()) or "transparency" in image.info
    if transparent and channels != 4:
        rgba = np.asarray(image.convert("RGBA")).astype(np.uint32)
        colour = (rgba[..., :3] * rgba[..., 3:] + 127) // 255  # round(c * alpha / 255)
        return image_module.fromarray(colour.astype(np.uint8)).convert(mode)
    return image.convert(mode)


def _resized(image: Any, reading: ImageReading, image_module: ModuleType) -> Any:
    height, width = image.height, image.width
    target_height, target_width = reading.size
    if reading.crop_to_aspect_ratio:  # Keras' smart_resize: the largest centred window of the target's ratio
        crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
        crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
        top, left = int(float(height - crop_height) / 2), int(float(width - crop_width) / 2)
        image = image.crop((left, top, left + crop_width, top + crop_height))
    elif reading.pad_to_aspect_ratio:  # Keras' ops.image.resize: as many rows (columns) of 0 on either side
        top = int(float(max(height, int(float(width * target_height) / target_width)) - height) / 2)
        left = int(float(max(width, int(float(height * target_width) / target_height)) - width) / 2)
        if top or left:
            canvas = image_module.new(image.mode, (width + 2 * left, height + 2 * top))
            canvas.paste(image, (left, top))
            image = canvas
    if image.size == (target_width, target_height):
        return image
    filter_ = getattr(image_module.Resampling, RESAMPLING[reading.interpolation])
    return image.resize((target_width, target_height), filter_)


def _reason(error: BaseException) -> str:
    """An error's own words, without Python's "[Errno 13]" prefix."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
