"""A folder of class sub-folders of images as the data a command reads (`[data] train = "imgs/train"`, `--data`):
`image_dataset_from_directory` at the size and color mode of the model's input, labelled as the model's loss takes
labels, against the classes the model (or its training data) already names."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain.cli._image_input import image_channels
from onnxtrain.errors import InvalidArgumentError, OnnxtrainError, listing

if TYPE_CHECKING:
    from onnxtrain.datasets import Dataset

COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}
LISTED = 10  # messages name at most this many classes
_SEEDS = 2**32  # image_dataset_from_directory's seeds: [0, 2**32 - 1]


@dataclass(frozen=True)
class ImageTarget:
    """What a folder of images is read for.

    Attributes:
        input_shape: the model's input without the batch axis, None where it has none (several inputs).
        output_shape: its output without the batch axis, None where it has none.
        loss: the model's loss (a name, a config or a Loss; None: not compiled): it decides the labels.
        seed: the shuffle of a training folder's files (Keras' for this seed), so that fit's validation_split
            holds out a random fraction, not the last class.
        class_names: the classes labels index, in order (the saved model's, or the training data's); None: the
            folder's sub-folders, sorted.
        classes_from: what `class_names` come from, for messages ("the saved model").
    """

    input_shape: tuple[Any, ...] | None
    output_shape: tuple[Any, ...] | None
    loss: Any
    seed: int = 0
    class_names: tuple[str, ...] | None = None
    classes_from: str = ""

    def with_classes_of(self, data: Dataset, source: str) -> ImageTarget:
        """This target, its labels to index the classes of the training data `data` (named `source`) where it
        names none itself: test and validation folders are labelled as the training data is."""
        if self.class_names is not None or not data.class_names:
            return self
        return replace(self, class_names=tuple(data.class_names), classes_from=f"the training data ({source})")


def model_target(model: Any, loss: Any, seed: int | None) -> ImageTarget:
    """The target of a model in memory (a run's new model, finetune's), to be compiled with `loss`."""
    try:
        input_shape, output_shape = model.input_shape, model.output_shape
    except (OnnxtrainError, TypeError):  # not built (no Input layer)
        input_shape = output_shape = None
    names = model.class_names
    return ImageTarget(
        _one_shape(input_shape),
        _one_shape(output_shape),
        loss,
        seed=int(seed or 0),
        class_names=tuple(names) if names else None,
        classes_from="the model",
    )


def saved_target(saved: dict[str, Any]) -> ImageTarget:
    """The target of a saved model, from its config.json (`saved`): its input and output shapes, loss, seed and
    class names."""
    names = saved.get("class_names")
    return ImageTarget(
        _one_shape(saved.get("input_shape")),
        _one_shape(saved.get("output_shape")),
        (saved.get("compile") or {}).get("loss"),
        seed=int(saved.get("seed") or 0),
        class_names=tuple(str(n) for n in names) if names else None,
        classes_from="the saved model",
    )


def _one_shape(value: Any) -> tuple[Any, ...] | None:
    """A shape (a tuple or a list of sides, as a saved config.json holds it), or None for the shapes of a model of
    several inputs or outputs (a list of them)."""
    if isinstance(value, tuple | list) and all(side is None or isinstance(side, int) for side in value):
        return tuple(value)
    return None


def label_mode(loss: Any, output_shape: tuple[Any, ...] | None) -> str:
    """The labels `loss` takes, in image_dataset_from_directory's words: "int" (class indices) for a loss of class
    indices (sparse categorical / softmax cross-entropy, and no loss), "binary" (0 / 1) for binary cross-entropy
    of one output unit, "categorical" (one-hot, shaped like the output) for any other."""
    from onnxtrain import losses

    if loss is None:
        return "int"
    resolved = losses.get(loss)
    if resolved.classification:
        return "int"
    if resolved.binary and tuple(output_shape or ()) == (1,):
        return "binary"
    return "categorical"


def load_image_folder(
    path: Path, named: str, target: ImageTarget | None, *, training: bool, scale_pixels: bool
) -> Dataset:
    """The folder of class sub-folders `path` (named `named` in messages: "[data] train 'imgs/train'") as a Dataset
    for `target`'s model: images resized to its input's (height, width), grey, RGB or RGBA as its channels say;
    labels as its loss takes them, indexing `target.class_names` where it names classes; a `training` folder's
    files shuffled with `target.seed` (test and validation data keep the sorted order, class by class).

    Pixels as `load` reads a .npz: `scale_pixels` float32 / 255 with input_scale 1/255, else uint8 as stored.

    Raises:
        InvalidArgumentError: a model that does not take images, sub-folders that are not classes of the model,
            more classes than the model has outputs, and image_dataset_from_directory's refusals (no class
            sub-folders, a class folder without images...), each naming `named`.
        DataFormatError: an image file that cannot be read, naming it.
        RuntimeSetupError: Pillow is not installed.
    """
    from onnxtrain.datasets import Dataset, image_dataset_from_directory

    if target is None:  # every command that reads data names its model; a caller that does not cannot read images
        raise InvalidArgumentError(f"{named} is a folder; this reads 'fashion-mnist[:train|:test]' or a .npz file")
    shape = _image_shape(named, target.input_shape)
    mode = label_mode(target.loss, target.output_shape)
    class_folders = _class_folders(path, named, target)
    try:
        read = image_dataset_from_directory(
            path,
            class_names=class_folders,
            color_mode=COLOR_MODES[image_channels(shape) or 1],
            image_size=(shape[0], shape[1]),
            shuffle=training,
            seed=target.seed % _SEEDS if training else None,
            verbose=False,
            scale_pixels=scale_pixels,
        )
    except OnnxtrainError as e:
        raise _naming(e, named) from e
    assert isinstance(read, Dataset)  # labels inferred, one subset
    found = read.class_names or ()
    classes = target.class_names if target.class_names is not None else found
    _check_outputs(named, classes, mode, target)
    y = np.array([classes.index(name) for name in found], dtype=np.int64)[read.y]  # the folders present, reindexed
    if mode == "categorical":
        y = np.eye(len(classes), dtype=np.float32)[y]
    elif mode == "binary":
        y = y.astype(np.float32).reshape(-1, 1)
    return Dataset(read.x.reshape(len(read.x), *shape), y, class_names=classes, input_scale=read.input_scale)


def _image_shape(named: str, input_shape: tuple[Any, ...] | None) -> tuple[int, ...]:
    """The model's input shape where it takes images of a fixed size; refused otherwise."""
    shape = input_shape or ()
    fixed = all(isinstance(side, int) and side > 0 for side in shape[:2])
    if image_channels(shape) is None or not fixed:
        received = "several inputs, or none" if input_shape is None else f"{list(shape)}"
        raise InvalidArgumentError(
            f"{named} is a folder of images, which are read at the size of the model's input: it needs an input of "
            "shape (height, width, channels) with 1 (grey), 3 (RGB) or 4 (RGBA) channels, or (height, width) for "
            f"grey. The model's input: {received}"
        )
    return tuple(int(side) for side in shape)


def _class_folders(path: Path, named: str, target: ImageTarget) -> list[str] | None:
    """The class folders of `path` to read, in the order of `target.class_names` (None: all, sorted). Refused: a
    folder without sub-folders (a folder of images alone is predict's), a folder of a class the model does not
    know (its images would get another class's label)."""
    try:
        entries = sorted(os.listdir(path))
    except OSError:
        return None  # the loader names what is wrong with the folder
    folders = [name for name in entries if (path / name).is_dir() and not name.startswith(".")]
    if not folders:
        raise InvalidArgumentError(
            f"{named} holds no class sub-folder: data to train or evaluate on is a folder of one sub-folder of "
            f"images per class, named by the class (train/cat/1.png, train/dog/2.png). It holds "
            f"{listing(entries, LISTED)}. (`onnxtrain predict --input FOLDER` reads images without classes.)"
        )
    if target.class_names is None:
        return None
    unknown = [name for name in folders if name not in target.class_names]
    if unknown:
        raise InvalidArgumentError(
            f"{named} holds class folders that are not classes of {target.classes_from}: {listing(unknown, LISTED)}. "
            f"Its classes: {listing(target.class_names, LISTED)}; each sub-folder must be one of them."
        )
    return [name for name in target.class_names if name in folders]


def _check_outputs(named: str, classes: tuple[str, ...], mode: str, target: ImageTarget) -> None:
    """Refuse classes the model's output cannot tell apart: more classes than its outputs (class indices), other
    than its outputs (one-hot), other than 2 (binary cross-entropy of one unit)."""
    shape = target.output_shape or ()
    units = shape[0] if len(shape) == 1 and isinstance(shape[0], int) else None
    count = len(classes)
    held = f"{named} holds {count} classes ({listing(classes, LISTED)})"
    if mode == "binary" and count != 2:
        raise InvalidArgumentError(
            f"{held}; a model of one output unit and binary cross-entropy tells 2 classes apart. Use 2 class "
            f"folders, or an output of {count} units and loss sparse_categorical_crossentropy."
        )
    if units is not None and (count > units if mode == "int" else mode == "categorical" and count != units):
        raise InvalidArgumentError(
            f"{held}, and the model has {units} outputs, one per class{' (one-hot labels)' * (mode != 'int')}: "
            f"give its last layer {count} units."
        )


def _naming(error: OnnxtrainError, named: str) -> OnnxtrainError:
    """`error` of the loader, as an error of its type that names the config key or option that gave the folder."""
    message = f"{named}: {error}"
    try:
        return type(error)(message)
    except TypeError:  # an error type whose constructor takes more than the message
        return InvalidArgumentError(message)
