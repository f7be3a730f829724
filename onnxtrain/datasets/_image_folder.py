"""`image_dataset_from_directory`: a folder of class sub-folders of images as an in-memory Dataset, with Keras'
arguments and Keras' file order and validation split (torchvision's ImageFolder for PyTorch users)."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxtrain._checks import as_real, check_bool
from onnxtrain._input_scale import scale_integers
from onnxtrain._keyword_arguments import shown_value
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

from ._dataset import Dataset
from ._image_decoding import CHANNELS, RESAMPLING, ImageReading, pillow, read_image
from ._image_index import ImageIndex, index_images, split_subset

_CALLER = "image_dataset_from_directory"
_LABEL_MODES = ("int", "categorical", "binary", None)
_SUBSETS = ("training", "validation", "both", None)
_KERAS_INTERPOLATIONS = ("lanczos5", "gaussian", "mitchellcubic")  # Keras' (TensorFlow's), which Pillow lacks
_MAX_SEED = 2**32 - 1  # numpy's RandomState, which Keras' shuffle uses, takes seeds up to this


class ImageArray(np.ndarray):
    """The images of ``image_dataset_from_directory(labels=None)``: a numpy array of them, whose ``file_paths`` lists
    the file each row was read from (Keras' ``dataset.file_paths``), so predictions can be matched to files. A
    slice of it has no ``file_paths`` (None), and a computation on it (``images / 2``, ``images.sum()``) gives a
    plain numpy array or number."""

    file_paths: list[str] | None

    def __array_finalize__(self, obj: Any) -> None:
        self.file_paths = None  # set by the loader only: a slice no longer holds the files in order

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        result = np.asarray(array)  # a computation's result is plain numbers (numpy's scalar for a reduction)
        return result[()] if return_scalar else result


ImageData = Dataset | ImageArray
"""What one subset is: a Dataset of images and labels, or an array of images alone (no labels); either has the
subset's ``file_paths``."""


def image_dataset_from_directory(
    directory: str | os.PathLike[str],
    labels: str | Sequence[int] | np.ndarray | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = None,
    image_size: int | tuple[int, int] | list[int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    format: str | None = None,
    verbose: bool | int = True,
    *,
    scale_pixels: bool = True,
) -> ImageData | tuple[ImageData, ImageData]:
    """The images of a folder of class sub-folders, read into memory: Keras'
    ``keras.utils.image_dataset_from_directory`` with its arguments, for fit, evaluate and predict.

    ``directory/<class name>/<images>``: each sub-folder (not starting with ".") is a class, in sorted order
    (upper case first), label 0, 1, ...; its images may be nested at any depth. Images are ``.bmp .gif .jpeg .jpg
    .png`` of any case; other files are passed over. All are read with Pillow (``pip install pillow``) and resized
    to ``image_size``, so images of different sizes make one ``(N, height, width, channels)`` array.

    Pixels: by default float32 in [0, 1] (uint8 values / 255) in a Dataset of ``input_scale`` 1/255, as
    ``fashion_mnist()`` gives them, so a model of default settings trains on them as they are, adopts the scale at
    its first fit, and then reads raw uint8 images (predict, export) divided by 255 too. Keras gives the 0-255
    values and its models start with ``Rescaling(1. / 255)``: drop that layer here, or it divides a second time.
    ``scale_pixels=False`` gives the uint8 values as read, no input_scale: then set ``model.input_scale = 1 / 255``
    before fit (integers are divided at fit, predict and in the export), or keep Keras' Rescaling layer.

    Batches: the whole set is one in-memory Dataset and fit batches it, so ``batch_size`` belongs to fit
    (``model.fit(train, batch_size=32)``); a value here is refused rather than ignored. Order: the files in Keras'
    order for the same ``seed`` (sorted, then ``np.random.RandomState(seed)``'s shuffle), so the validation subset
    holds the same files as Keras'; fit shuffles the training examples at each epoch (``fit(shuffle=True)``).

    Args:
        directory: the folder.
        labels: ``"inferred"`` (from the sub-folders), ``None`` (images alone, from the whole folder tree), or one
            int class index per image, in the order of the sorted file paths (the class names are then "0", "1",
            ... up to the largest label).
        label_mode: ``"int"`` (int64 class indices, for sparse_categorical_crossentropy), ``"categorical"``
            (float32 one-hot, for categorical_crossentropy), ``"binary"`` (float32 0/1 of shape (N, 1), two classes,
            for binary_crossentropy), or ``None`` (images alone).
        class_names: the sub-folders to read, in the order of their labels (default: all, sorted). Only with
            ``labels="inferred"``.
        color_mode: ``"grayscale"`` (1 channel), ``"rgb"`` (3) or ``"rgba"`` (4). Transparency is composited on
            black for grayscale and rgb, as ``onnxtrain predict`` reads an image; 16-bit grey becomes 8-bit.
        batch_size: Keras' batching; only None here (see above).
        image_size: (height, width), or an int for a square.
        shuffle: order the files with ``seed`` (Keras' shuffle); False keeps them sorted, class by class.
        seed: the shuffle's seed, an int in [0, 2**32 - 1]; needed with ``validation_split`` and shuffle, so that
            a call for each subset cuts the same split. None: a random one.
        validation_split: the fraction of files (after the shuffle) kept for validation: the last
            ``int(validation_split * N)``.
        subset: ``"training"``, ``"validation"`` or ``"both"`` (a tuple (training, validation)); with
            ``validation_split`` only.
        interpolation: the resize filter: ``"bilinear"``, ``"nearest"``, ``"bicubic"``, ``"area"`` (Pillow's box
            filter) or ``"lanczos3"``. Keras' ``"lanczos5"``, ``"gaussian"`` and ``"mitchellcubic"`` are
            TensorFlow's, which Pillow lacks.
        follow_links: walk into folders reached through symbolic links inside the class folders.
        crop_to_aspect_ratio: cut the largest centred window of ``image_size``'s aspect ratio before resizing.
        pad_to_aspect_ratio: pad with black, centred, to ``image_size``'s aspect ratio before resizing.
        data_format: None or ``"channels_last"``: onnxtrain's images are (height, width, channels).
        format: Keras' choice of a tf.data or grain dataset; only None here.
        verbose: print how many files and classes were found, as Keras does.
        scale_pixels: (onnxtrain's) float32 pixels / 255 with input_scale 1/255 (True), or uint8 (False).

    Returns:
        A Dataset (x: (N, height, width, channels); y per ``label_mode``; ``class_names`` set, which fit gives the
        model, so predict's classes, ``onnxtrain predict`` and the export's metadata name them); without labels an
        array of the images (an ``ImageArray``, a numpy array). ``subset="both"``: a tuple (training, validation).
        Each has Keras' ``file_paths``: the path of each image's file (``os.path.join(directory, ...)``), in the
        order of the rows, so ``zip(images.file_paths, model.predict(images))`` names the file of each prediction.

    Raises:
        FileNotFoundError, NotADirectoryError: ``directory`` does not exist, or is a file.
        InvalidArgumentError: an argument value Keras refuses too (naming the valid ones), a folder without class
            sub-folders, a class folder without images, no images at all, a split that leaves a subset empty.
        InvalidTypeError: an argument of the wrong type.
        DataFormatError: an image file that cannot be read (naming it).
        RuntimeSetupError: Pillow is not installed.

    Example:
        >>> train, val = image_dataset_from_directory(
        ...     "flowers", image_size=(64, 64), validation_split=0.2, subset="both", seed=1337
        ... )  # doctest: +SKIP
        >>> model.fit(train, validation_data=val, epochs=10, batch_size=32)  # doctest: +SKIP
    """
    folder = _folder(directory)
    labels, label_mode = _checked_labels(labels, label_mode, class_names)
    channels = _choice("color_mode", color_mode, tuple(CHANNELS))
    _refuse_keras_only(batch_size, data_format, format)
    size = _image_size(image_size)
    shuffle = check_bool(_CALLER, "shuffle", shuffle)
    split, subset = _split(validation_split, subset, shuffle, seed)
    reading = ImageReading(
        CHANNELS[channels],
        size,
        _interpolation(interpolation),
        check_bool(_CALLER, "crop_to_aspect_ratio", crop_to_aspect_ratio),
        check_bool(_CALLER, "pad_to_aspect_ratio", pad_to_aspect_ratio),
    )
    if reading.crop_to_aspect_ratio and reading.pad_to_aspect_ratio:
        raise InvalidArgumentError(
            f"{_CALLER} takes crop_to_aspect_ratio=True or pad_to_aspect_ratio=True, not both. Received: both True"
        )
    follow = check_bool(_CALLER, "follow_links", follow_links)
    scale = check_bool(_CALLER, "scale_pixels", scale_pixels)
    loud = _verbose(verbose)
    image_module = pillow(_CALLER)  # refused before the folder is walked
    if shuffle and seed is None:
        seed = int(np.random.randint(1_000_000))  # Keras' draw, from numpy's global generator
    index = index_images(folder, labels, class_names, shuffle, seed, follow, _CALLER)
    if label_mode == "binary" and index.class_names is not None and len(index.class_names) != 2:
        raise InvalidArgumentError(
            f"{_CALLER}(label_mode='binary') expects exactly 2 classes. Received: {len(index.class_names)}, "
            f"class_names={list(index.class_names)}. Use label_mode='int' or 'categorical' for more."
        )
    if loud:
        classes = "" if index.class_names is None else f" belonging to {len(index.class_names)} classes"
        print(f"Found {len(index.paths)} files{classes}.")
    subsets = ("training", "validation") if subset == "both" else (subset,)
    parts = [split_subset(index, split, part, _CALLER) for part in subsets]
    if loud and split is not None:
        for part, name in zip(parts, subsets, strict=True):
            print(f"Using {len(part.paths)} files for {name}.")
    read = [_subset_data(part, reading, image_module, label_mode, scale) for part in parts]
    return (read[0], read[1]) if subset == "both" else read[0]


def _subset_data(
    index: ImageIndex, reading: ImageReading, image_module: Any, label_mode: str | None, scale: bool
) -> ImageData:
    height, width = reading.size
    pixels = np.empty((len(index.paths), height, width, reading.channels), dtype=np.uint8)
    for row, path in enumerate(index.paths):
        pixels[row] = read_image(path, reading, image_module)
    input_scale = 1 / 255 if scale else None
    if index.labels is None or label_mode is None:
        images = (scale_integers(pixels, input_scale) if input_scale is not None else pixels).view(ImageArray)
        images.file_paths = list(index.paths)
        return images
    names = index.class_names
    assert names is not None  # labels come with their class names
    y: np.ndarray = index.labels
    if label_mode == "categorical":
        y = np.eye(len(names), dtype=np.float32)[y]
    elif label_mode == "binary":
        y = y.astype(np.float32).reshape(-1, 1)
    dataset = Dataset(pixels, y, class_names=names, input_scale=input_scale)
    dataset.file_paths = list(index.paths)
    return dataset


def _folder(directory: Any) -> str:
    if not isinstance(directory, str | os.PathLike):
        raise InvalidTypeError(
            f"{_CALLER}(directory=...) expects a folder path (str or pathlib.Path). "
            f"Received: {type(directory).__name__}"
        )
    return os.fspath(directory)


def _checked_labels(labels: Any, label_mode: Any, class_names: Any) -> tuple[Any, str | None]:
    """labels and label_mode, None for both when either is None (images alone, as Keras); class_names checked."""
    label_mode = _choice("label_mode", label_mode, _LABEL_MODES)
    if isinstance(labels, str) and labels != "inferred":
        raise InvalidArgumentError(
            f"{_CALLER}(labels=...) expects 'inferred', None, or a list of int labels, one per image. "
            f"Received: labels={labels!r}"
        )
    if class_names is not None:
        if not (isinstance(labels, str) and labels == "inferred"):
            raise InvalidArgumentError(
                f"{_CALLER}(class_names=...) picks the class sub-folders, so it needs labels='inferred'. "
                f"Received: class_names={class_names!r} with labels={shown_value(labels)}"
            )
        if isinstance(class_names, str) or not isinstance(class_names, Sequence):
            raise InvalidTypeError(
                f"{_CALLER}(class_names=...) expects a list of sub-folder names. Received: {class_names!r}"
            )
        if not class_names or not all(isinstance(name, str) for name in class_names):
            raise InvalidArgumentError(
                f"{_CALLER}(class_names=...) expects a non-empty list of sub-folder names (str). "
                f"Received: {class_names!r}"
            )
        repeated = sorted({name for name in class_names if list(class_names).count(name) > 1})
        if repeated:
            raise InvalidArgumentError(
                f"{_CALLER}(class_names=...) expects each name once. Received: {repeated} more than once"
            )
    if labels is None or label_mode is None:
        return None, None
    return labels, label_mode


def _refuse_keras_only(batch_size: Any, data_format: Any, format: Any) -> None:
    if batch_size is not None:
        raise InvalidArgumentError(
            f"{_CALLER}(batch_size=...) is not taken: onnxtrain reads all the images into one in-memory Dataset, "
            "and fit batches it. Drop batch_size here and pass it to fit, e.g. model.fit(train, batch_size="
            f"{batch_size if isinstance(batch_size, int) else 32}). Received: batch_size={batch_size!r}"
        )
    if data_format not in (None, "channels_last"):
        why = "onnxtrain's images are channels-last, (N, height, width, channels)" + (
            "; its models take that layout too" if data_format == "channels_first" else ""
        )
        raise InvalidArgumentError(
            f"{_CALLER}(data_format=...) expects None or 'channels_last': {why}. Received: data_format={data_format!r}"
        )
    if format is not None:
        raise InvalidArgumentError(
            f"{_CALLER}(format=...) is Keras' choice between a tf.data and a grain dataset; onnxtrain returns an "
            f"in-memory Dataset, which fit, evaluate and predict take. Drop format=. Received: format={format!r}"
        )


def _image_size(image_size: Any) -> tuple[int, int]:
    sides = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    if (
        isinstance(sides, tuple | list)
        and len(sides) == 2
        and all(isinstance(side, numbers.Integral) and not isinstance(side, bool) and int(side) > 0 for side in sides)
    ):
        return int(sides[0]), int(sides[1])
    raise InvalidArgumentError(
        f"{_CALLER}(image_size=...) expects (height, width), two positive ints, or one int for a square. "
        f"Received: image_size={image_size!r}"
    )


def _split(validation_split: Any, subset: Any, shuffle: bool, seed: Any) -> tuple[float | None, str | None]:
    """validation_split and subset checked as Keras checks them (a split of 0 is no split), and the seed."""
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= _MAX_SEED
    ):
        raise InvalidArgumentError(f"{_CALLER}(seed=...) expects None or an int in [0, 2**32 - 1]. Received: {seed!r}")
    subset = _choice("subset", subset, _SUBSETS)
    split: float | None = None
    if validation_split is not None:
        split = as_real(validation_split)
        if split is None:
            raise InvalidTypeError(
                f"{_CALLER}(validation_split=...) expects None or a float in (0, 1). Received: {validation_split!r}"
            )
        if split != 0.0 and not 0.0 < split < 1.0:
            raise InvalidArgumentError(
                f"{_CALLER}(validation_split=...) expects None or a float in (0, 1). "
                f"Received: validation_split={validation_split!r}"
            )
        split = split or None
    if (split is None) != (subset is None):
        raise InvalidArgumentError(
            f"{_CALLER} takes validation_split and subset together ('training', 'validation' or 'both'), or "
            f"neither. Received: validation_split={validation_split!r}, subset={subset!r}"
        )
    if split is not None and shuffle and seed is None:
        raise InvalidArgumentError(
            f"{_CALLER}(validation_split={validation_split!r}) with shuffle=True needs a seed (e.g. seed=1337), so "
            "that the training and validation subsets (one call each) cut the same shuffle and share no file."
        )
    return split, subset


def _interpolation(interpolation: Any) -> str:
    if isinstance(interpolation, str) and interpolation.lower() in _KERAS_INTERPOLATIONS:
        raise InvalidArgumentError(
            f"{_CALLER}(interpolation={interpolation!r}) is a TensorFlow filter that Pillow, which reads the "
            f"images here, lacks. Use one of {list(RESAMPLING)}."
        )
    name = interpolation.lower() if isinstance(interpolation, str) else interpolation
    return _choice("interpolation", name, tuple(RESAMPLING))


def _verbose(verbose: Any) -> bool:
    if isinstance(verbose, bool | np.bool_) or (isinstance(verbose, numbers.Integral) and verbose in (0, 1, 2)):
        return bool(verbose)
    raise InvalidArgumentError(f"{_CALLER}(verbose=...) expects a bool (or 0, 1, 2). Received: verbose={verbose!r}")


def _choice(argument: str, value: Any, choices: tuple[str | None, ...]) -> Any:
    if isinstance(value, str | None) and value in choices:
        return value
    raise InvalidArgumentError(
        f"{_CALLER}({argument}=...) expects one of {list(choices)}. Received: {argument}={shown_value(value)}"
    )
