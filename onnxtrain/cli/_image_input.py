"""The images `onnxtrain predict --input` reads: one image file, or every image of a folder as one batch, as the
model's input takes them. Pixels follow the one rule `image_dataset_from_directory` reads a folder with
(`datasets._image_decoding.converted`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain._bounded_read import open_regular
from onnxtrain.datasets._image_decoding import RESAMPLING, converted, pillow
from onnxtrain.datasets._image_index import index_images
from onnxtrain.errors import DataFormatError, InvalidArgumentError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
INPUT_EXPECTED = (
    f"--input expects a .npy array, a .npz of arrays named after the model's inputs, an image file "
    f"({', '.join(IMAGE_SUFFIXES)}) or a folder of images"
)
FOLDER_INTERPOLATION = "bilinear"
"""The resize filter of a folder's images of another size than the model's: `image_dataset_from_directory`'s
default, which `train` on a folder uses."""
IMAGE_CHANNELS = (1, 3, 4)
"""The channels of the images a model may take: grey, RGB, RGBA."""


def image_channels(input_shape: Any) -> int | None:
    """The channels of the images a model of per-example `input_shape` takes: 1 for (height, width) and (height,
    width, 1), 3 (RGB) or 4 (RGBA) for (height, width, 3 or 4); None for a model that takes no images."""
    shape = tuple(input_shape) if isinstance(input_shape, tuple | list) else ()
    if not all(side is None or isinstance(side, int) for side in shape):  # the shapes of several inputs
        return None
    if len(shape) == 2:
        return 1
    if len(shape) == 3 and shape[2] in IMAGE_CHANNELS:
        return int(shape[2])
    return None


def read_image_input(path: Path, input_shape: tuple[int, ...], resize: bool = False) -> np.ndarray:
    """The image file `path` as uint8 pixels shaped to `input_shape` (the model's input without the batch axis),
    read by `image_pixels`; an image of another size resized to it where `resize` (as the folder loader resizes:
    `FOLDER_INTERPOLATION`), else refused.

    Raises:
        InvalidArgumentError: a model that does not take images, a file that is gone, not a regular file, or not
            one Pillow can read as an image (naming it), an image of another size (without `resize`), or one
            `image_pixels` refuses.
        RuntimeSetupError: Pillow is not installed.
    """
    channels = image_channels(input_shape)
    image_module = pillow("onnxtrain predict")
    if channels is None:
        raise InvalidArgumentError(f"the model takes {list(input_shape)} inputs, not images; pass a .npy array")
    try:
        file = open_regular(path)  # a FIFO is refused, not waited on
    except FileNotFoundError as e:  # it went between the check and the read
        raise InvalidArgumentError(f"{INPUT_EXPECTED}. Received: '{path}', which does not exist") from e
    except ValueError as e:  # not a regular file
        raise InvalidArgumentError(f"{INPUT_EXPECTED}. Received: '{path}': {e}") from e
    except OSError as e:
        raise InvalidArgumentError(f"--input '{path}' cannot be read: {_reason(e)}. {INPUT_EXPECTED}.") from e
    with file:
        try:
            with image_module.open(file) as image:
                pixels = image_pixels(image, channels, str(path))
        except InvalidArgumentError:
            raise
        except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as e:  # damaged, truncated
            unknown = isinstance(e, image_module.UnidentifiedImageError)
            why = "Pillow does not recognise its format (not an image, or a damaged one)" if unknown else _reason(e)
            raise InvalidArgumentError(f"--input '{path}' cannot be read as an image: {why}. {INPUT_EXPECTED}.") from e
    if pixels.shape[:2] != tuple(input_shape[:2]) and resize:  # the converted image, resized as the loader does
        filter_ = getattr(image_module.Resampling, RESAMPLING[FOLDER_INTERPOLATION])
        pixels = np.asarray(image_module.fromarray(pixels).resize((input_shape[1], input_shape[0]), filter_))
    if pixels.shape[:2] != tuple(input_shape[:2]):
        height, width = pixels.shape[:2]
        raise InvalidArgumentError(
            f"'{path}' is {width}x{height} pixels; the model expects {input_shape[1]}x{input_shape[0]}. "
            "Resize it first."
        )
    return pixels.reshape(input_shape)


def read_image_folder(folder: Path, input_shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every image of `folder`, at any depth (Keras' suffixes, any case), as one batch, in sorted order (by folder,
    then file name: `image_dataset_from_directory(labels=None)`'s), each read by `read_image_input` and resized to
    the model's (height, width) where it differs, as `image_dataset_from_directory` (and `train` on a folder) read
    them: the same pixels as ``image_dataset_from_directory(folder, labels=None, shuffle=False,
    image_size=(height, width), scale_pixels=False)``; with their paths inside `folder` ("cat.png", "new/dog.jpg"),
    by which predict names its rows.

    Raises:
        InvalidArgumentError: a folder without images (saying what it holds), and `read_image_input`'s errors,
            naming the file.
    """
    if image_channels(input_shape) is None:  # before the folder is walked
        raise InvalidArgumentError(f"the model takes {list(input_shape)} inputs, not images; pass a .npy array")
    paths = index_images(str(folder), None, None, False, None, False, "--input").paths
    pixels = np.stack([read_image_input(Path(path), input_shape, resize=True) for path in paths])
    return pixels, tuple(os.path.relpath(path, folder) for path in paths)


def image_pixels(image: Any, channels: int, source: str) -> np.ndarray:
    """The uint8 pixels of a Pillow `image`: (height, width) grey for `channels` 1, (height, width, 3) RGB or
    (height, width, 4) RGBA for 3 or 4, by `image_dataset_from_directory`'s rule (`_image_decoding.converted`):
    16-bit grey rounded to 8 bits (round(v / 257)), transparency composited on black for grey and RGB, otherwise
    Pillow's conversion. `source` names the image in messages.

    Raises:
        InvalidArgumentError: a floating-point image (mode "F"), or a 32-bit one with values beyond 16 bits.
    """
    try:
        return np.asarray(converted(image, channels, source, pillow("onnxtrain predict")))
    except DataFormatError as e:  # predict's way out besides the loader's: the values as a .npy array
        raise InvalidArgumentError(f"{e} Or pass the values as a .npy array, scaled as the model was trained.") from e


def _reason(error: BaseException) -> str:
    """An error's own words, without Python's "[Errno 13]" prefix."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
