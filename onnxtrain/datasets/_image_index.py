"""Which image files a folder holds and their labels, in Keras' order (`index_images`), and Keras' training /
validation cut of them (`split_subset`): the part of `image_dataset_from_directory` that reads no image."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, listing

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
"""Keras' ALLOWLIST_FORMATS: the suffixes (of any case) read as images; other files are passed over."""

LISTED = 5  # error messages name at most this many folders or files


@dataclass(frozen=True)
class ImageIndex:
    """Image files (paths as `os.path.join(directory, ...)` gives them, Keras' `file_paths`) and their labels (None
    without labels), with the class names the labels index (None without labels)."""

    paths: list[str]
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None

    def subset(self, rows: slice) -> ImageIndex:
        labels = None if self.labels is None else self.labels[rows]
        return ImageIndex(self.paths[rows], labels, self.class_names)


def index_images(
    directory: str,
    labels: Any,
    class_names: Sequence[str] | None,
    shuffle: bool,
    seed: int | None,
    follow_links: bool,
    caller: str,
) -> ImageIndex:
    """The images of `directory`, as Keras' `index_directory` lists them.

    With ``labels="inferred"`` each sub-folder whose name does not start with "." is a class, in sorted order (or
    the order of `class_names`, some of them), and holds the images of its class at any depth; images directly in
    `directory` are not read. With ``labels=None`` or a list of int labels, every image under `directory` is read.
    Files are ordered by folder path, then file name (sorted strings: upper case first); ``shuffle`` permutes them
    with ``np.random.RandomState(seed).shuffle``, as Keras does, so a seed picks the same order and, with
    `split_subset`, the same validation files as Keras. Folders reached through a link are walked only with
    `follow_links` (a class folder given as a link is always read).

    Raises:
        FileNotFoundError, NotADirectoryError: `directory` does not exist or is not a folder.
        InvalidArgumentError: no class folder, a class folder or the whole folder without images, class_names
            that are not sub-folders, labels that do not match the files.
    """
    root = Path(directory)
    if not root.exists():
        raise FileNotFoundError(
            f"{caller}(directory=...) expects a folder of images. Received: '{directory}', which does not exist"
        )
    if not root.is_dir():
        raise NotADirectoryError(
            f"{caller}(directory=...) expects a folder of images. Received: '{directory}', which is a file"
        )
    if isinstance(labels, str):  # "inferred", as the caller checked
        return _index_classes(directory, class_names, shuffle, seed, follow_links, caller)
    paths = _image_files(directory, "", follow_links)
    if not paths:
        raise InvalidArgumentError(f"{caller} found no images in '{directory}'. {_what_is_there(directory)}")
    given = None if labels is None else _given_labels(labels, len(paths), directory, caller)
    names = None if given is None else tuple(str(label) for label in range(int(given.max()) + 1))
    return _shuffled(ImageIndex(paths, given, names), shuffle, seed)


def split_subset(index: ImageIndex, validation_split: float | None, subset: str | None, caller: str) -> ImageIndex:
    """Keras' cut: the last ``int(validation_split * len)`` files are the validation subset, the others the
    training subset; no cut without `validation_split`.

    Raises:
        InvalidArgumentError: a cut that leaves a subset empty (Keras would give an empty training subset).
    """
    if validation_split is None or subset is None:
        return index
    count = len(index.paths)
    cut = int(validation_split * count)
    if cut == 0:
        raise InvalidArgumentError(
            f"{caller}(validation_split={validation_split}) of {count} images leaves the validation subset empty "
            f"(int({validation_split} * {count}) = 0 images). Use a validation_split of at least {1 / count:.3g}, "
            "or more images."
        )
    return index.subset(slice(None, count - cut) if subset == "training" else slice(count - cut, None))


def _index_classes(
    directory: str,
    class_names: Sequence[str] | None,
    shuffle: bool,
    seed: int | None,
    follow_links: bool,
    caller: str,
) -> ImageIndex:
    folders = sorted(
        name
        for name in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, name)) and not name.startswith(".")
    )
    if not folders:
        raise InvalidArgumentError(
            f"{caller}(labels='inferred') expects '{directory}' to hold one sub-folder of images per class. "
            f"Received: no sub-folder. {_what_is_there(directory)}"
        )
    if class_names is not None:
        unknown = [name for name in class_names if name not in folders]
        if unknown:
            raise InvalidArgumentError(
                f"{caller}(class_names=...) expects names of sub-folders of '{directory}' "
                f"({listing(folders, LISTED)}). Received: {listing(unknown, LISTED)}, which are not"
            )
        folders = list(class_names)
    paths: list[str] = []
    counts = []
    for folder in folders:
        found = _image_files(directory, folder, follow_links)
        paths += found
        counts.append(len(found))
    empty = [folder for folder, count in zip(folders, counts, strict=True) if count == 0]
    if empty:
        where = "any" if len(empty) == len(folders) else "these"
        raise InvalidArgumentError(
            f"{caller} found no images in {where} class folders of '{directory}': {listing(empty, LISTED)}. "
            f"A class needs images ({', '.join(IMAGE_EXTENSIONS)}, any case). "
            f"{_what_is_there(os.path.join(directory, empty[0]))} Remove the folder, or name the classes to read "
            "with class_names=[...]."
        )
    labels = np.repeat(np.arange(len(folders), dtype=np.int64), counts)
    return _shuffled(ImageIndex(paths, labels, tuple(folders)), shuffle, seed)


def _image_files(directory: str, folder: str, follow_links: bool) -> list[str]:
    """The image files at any depth in `directory`'s sub-folder `folder` ("": `directory` itself), sorted by folder
    path then file name, as paths `os.path.join(directory, folder, path inside folder)`: Keras' `iter_valid_files`
    and `index_subdirectory`."""
    top = os.path.join(directory, folder)
    found = []
    for root, _, files in sorted(os.walk(top, followlinks=follow_links), key=lambda walked: walked[0]):
        found += [os.path.join(root, file) for file in sorted(files) if file.lower().endswith(IMAGE_EXTENSIONS)]
    return [os.path.join(directory, folder, os.path.relpath(path, top)) for path in found]


def _given_labels(labels: Any, count: int, directory: str, caller: str) -> np.ndarray:
    expected = (
        f"{caller}(labels=...) expects 'inferred', None, or one int class index (>= 0) per image, in the order of "
        "the sorted file paths"
    )
    if isinstance(labels, str) or not isinstance(labels, Sequence | np.ndarray):
        raise InvalidTypeError(f"{expected}. Received: labels={labels!r}")
    values = list(labels)
    wrong = [value for value in values if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral)]
    if wrong or any(value < 0 for value in values):
        shown = wrong[0] if wrong else min(values)
        raise InvalidArgumentError(f"{expected}. Received: a label {shown!r}")
    if len(values) != count:
        raise InvalidArgumentError(f"{expected}: '{directory}' holds {count} images. Received: {len(values)} labels")
    return np.asarray(values, dtype=np.int64)


def _shuffled(index: ImageIndex, shuffle: bool, seed: int | None) -> ImageIndex:
    if not shuffle:
        return index
    order = np.arange(len(index.paths))
    np.random.RandomState(seed).shuffle(order)  # Keras' global shuffle: the same draws for the same seed
    labels = None if index.labels is None else index.labels[order]
    return ImageIndex([index.paths[i] for i in order], labels, index.class_names)


def _what_is_there(folder: str) -> str:
    """What `folder` holds instead of images, for an error message: a few of its files and sub-folders."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError as e:
        return f"It cannot be listed ({e.strerror or e})."
    files = [name for name in entries if not os.path.isdir(os.path.join(folder, name))]
    folders = [name + "/" for name in entries if os.path.isdir(os.path.join(folder, name))]
    if not entries:
        return f"'{folder}' is empty."
    images = [name for name in files if name.lower().endswith(IMAGE_EXTENSIONS)]
    if images:
        shown = f"{listing(images, LISTED)} directly in it (pass labels=None to read them without labels)"
    else:
        shown = listing(files + folders, LISTED)
    return f"'{folder}' holds {shown}; images are read by suffix: {', '.join(IMAGE_EXTENSIONS)}."
