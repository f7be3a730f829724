"""What the command line reads: the datasets a run config or --data names ("fashion-mnist[:train|:test]", a .npz
file or a folder of class sub-folders of images), the .npy array, image or folder of images that `onnxtrain predict`
reads, and the saved models the other commands load."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from onnxtrain._input_scale import refuse_raw_value_ranges, refuse_raw_value_ranges_of_model, rescales_pixels_again
from onnxtrain._npy_file import read_npy, read_npz
from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain.cli._image_folders import ImageTarget, load_image_folder
from onnxtrain.cli._image_input import IMAGE_SUFFIXES, INPUT_EXPECTED, read_image_folder, read_image_input
from onnxtrain.cli._image_input import image_pixels as image_pixels  # predict's pixels, by the datasets' rule
from onnxtrain.errors import (
    DataFormatError,
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    OnnxtrainError,
    ShapeError,
    listing,
)
from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE
from onnxtrain.saving import resolve_model_directory

if TYPE_CHECKING:
    from onnxtrain.datasets import Dataset
    from onnxtrain.sequential import Sequential

SAVED_MODEL = (
    "a saved model directory (the model/ folder `onnxtrain train` or `onnxtrain finetune` writes, or the run folder "
    "that holds it)"
)
LISTED_ENTRIES = 10  # error messages name at most this many files of a folder


def naming_the_option(error: OnnxtrainError, option: str, value: str) -> OnnxtrainError:
    """`error` about an array (`x`, `dataset.x`), naming the command-line option that gave it."""
    return type(error)(f"{option} {value!r} does not fit the model: {error}")


class DatasetLoader:
    """Resolves data specs: "fashion-mnist[:train|:test]", a .npz file with arrays `x`, `y` (and optionally
    `class_names`), or a folder of class sub-folders of images, read for the model `images` describes (its input
    size and channels, the labels its loss takes, its classes: `_image_folders`). uint8 `x` (a folder's pixels too)
    is taken as pixels and divided by 255, like fashion_mnist(), for the data a new model trains on; data a model is
    evaluated or validated on keeps its integers, which the model scales by its own input_scale, as predict does
    (`load(..., scale_pixels=False)`). Relative paths are taken from `base`; Fashion-MNIST is read once however many
    splits are asked for."""

    def __init__(self, base: Path, images: ImageTarget | None = None):
        self.base = base
        self.images = images
        self._fashion: Any = None

    def absolute(self, spec: str) -> str:
        """`spec` with a relative file path taken from `base`; "fashion-mnist[:split]" as it is."""
        if not isinstance(spec, str) or spec.partition(":")[0] == "fashion-mnist" or Path(spec).is_absolute():
            return spec
        return str(self.base / spec)

    def load(self, spec: str, argument: str, default_split: str = "train", scale_pixels: bool = True) -> Dataset:
        """The dataset `spec` names; `argument` (e.g. "data.train", "--data") heads any error message.

        Args:
            default_split: "train" for data a model trains on, "test" for data it is tested or validated on:
                fashion-mnist's split without one, and whether a folder's files are shuffled (with the seed of
                `images`, so that fit's validation_split holds out a random fraction, not the last class) or kept
                in sorted order.
            scale_pixels: divide a .npz's uint8 x by 255 and mark the dataset input_scale 1/255, which a model
                trained on it adopts. False (`onnxtrain evaluate`): keep integer x as stored, so that the model
                reads it with its own input_scale, exactly as `onnxtrain predict`, `InferenceModel.predict` and
                the export read the same pixels (for a model of input_scale 1/255 the numbers are the same bit
                for bit; one of input_scale 1 reads them raw, 0-255, and warns).
        """
        from onnxtrain.datasets import Dataset, fashion_mnist

        expected = (
            f"{argument} expects 'fashion-mnist[:train|:test]', a .npz file or a folder of class sub-folders of "
            f"images. Received: {spec!r}"
        )
        if not isinstance(spec, str) or not spec:
            raise InvalidArgumentError(expected)
        name, _, split = spec.partition(":")
        if name == "fashion-mnist":
            split = split or default_split
            if split not in ("train", "test"):
                raise InvalidArgumentError(
                    f"{argument}: fashion-mnist has the splits train and test. Received: {spec!r}"
                )
            if self._fashion is None:
                self._fashion = fashion_mnist()
            return self._fashion[0 if split == "train" else 1]
        path = Path(self.absolute(spec))
        if path.is_dir():
            training = default_split == "train"
            named = f"{argument} {spec!r}"
            return load_image_folder(path, named, self.images, training=training, scale_pixels=scale_pixels)
        if path.suffix.lower() != ".npz":
            raise InvalidArgumentError(expected + ("" if os.path.lexists(path) else ", which does not exist"))
        # Headers are checked against the file and MAX_DATA_BYTES before any array is allocated; never a pickle.
        arrays = read_npz(path, f"{argument}: '{path}'", DataFormatError)
        if "x" not in arrays or "y" not in arrays:
            raise InvalidArgumentError(f"{argument}: '{path}' needs arrays named x and y. Found: {sorted(arrays)}")
        x, y = arrays["x"], arrays["y"]
        if x.ndim and y.ndim and len(x) != len(y):
            raise ShapeError(
                f"{argument}: '{path}' holds {len(x)} examples in x but {len(y)} labels in y "
                f"(x.shape={x.shape}, y.shape={y.shape}); a dataset has one label per example"
            )
        try:
            names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else None
            if x.dtype == np.uint8 and scale_pixels:  # pixels: train on [0, 1]; the model then scales raw uint8
                x = np.divide(x, np.float32(255), dtype=np.float32)
                return Dataset(x, y, class_names=names, input_scale=1 / 255)
            return Dataset(x, y, class_names=names)
        except (InvalidArgumentError, InvalidTypeError) as e:  # Dataset's rules, naming the file they apply to
            raise type(e)(f"{argument}: '{path}' is not a dataset: {e}") from e


class RunData(NamedTuple):
    """The datasets of a config's [data] table; validation may be the test set itself."""

    train: Dataset
    test: Dataset | None
    validation: Dataset | None


def refuse_scaling_twice(model: Any, data: RunData, source: str) -> None:
    """Refuse pixels this module divided by 255 (uint8 .npz, a folder of images, fashion-mnist) for a model that
    divides them again before any layer changes values (fit's rule, `rescales_pixels_again`), which would leave the
    model training on pixels / 65025; and augmentation layers left at Keras' value_range=(0, 255) for pixels divided
    by 255, by this module or (integers kept, --resume) by the model's own input_scale (`refuse_raw_value_ranges`,
    `refuse_raw_value_ranges_of_model`)."""
    scale_of_data = data.train.input_scale
    twice = None if scale_of_data is None else rescales_pixels_again(model.layers, scale_of_data)
    if twice is not None:
        name, scale = twice
        # (a .npz may hold float32 pixels instead, which are taken as they are; a folder's are always uint8)
        keep = ", or store x as float32 values 0-255 in the .npz (which are taken as they are)" * (".npz" in source)
        raise InvalidArgumentError(
            f"{source}: its x are pixels, which onnxtrain train divides by 255 (as fashion_mnist() does), and the "
            f"model's first layer {name!r}, Rescaling(scale={scale:.6g}), divides them again: the model would "
            f"train on pixels / 65025. Remove that Rescaling layer{keep}."
        )
    if scale_of_data is not None:  # augmentation layers left at Keras' value_range=(0, 255): fit's rule too
        refuse_raw_value_ranges(model.layers, scale_of_data, source)
    else:  # the integers kept (--resume), which the model's own input_scale divides: fit's rule for that too
        refuse_raw_value_ranges_of_model(model.layers, model.input_scale, source)


def load_run_data(
    data: dict[str, Any],
    base: Path,
    names: dict[str, str] | None = None,
    scale_train_pixels: bool = True,
    images: ImageTarget | None = None,
) -> RunData:
    """The datasets a config's [data] table names (`train` required; `validation = "test"` reuses the test set),
    folders of images read for the model `images` describes, test and validation folders labelled by the classes
    of the training data. Errors name an entry as "[data] train", or as `names` says (`{"train": "--data"}`).

    Integer pixels follow one rule, fit's and `onnxtrain evaluate`'s: the training data of a new model is divided
    by 255 and marked input_scale 1/255, which the model adopts; the test and validation data keep their integers
    as stored, which the model reads with its own input_scale (so a model trained on floats reads them raw, and
    warns, as `onnxtrain evaluate` does). `scale_train_pixels` False (--resume: the model's input_scale is set):
    the training data too keeps its integers."""
    if "train" not in data:
        raise InvalidArgumentError("the config needs [data] train = 'fashion-mnist' or a .npz file")
    loader = DatasetLoader(base, images)
    name = {key: f"[data] {key}" for key in ("train", "test", "validation")} | (names or {})
    train = loader.load(data["train"], name["train"], "train", scale_pixels=scale_train_pixels)
    if images is not None:
        loader.images = images.with_classes_of(train, f"{name['train']} {data['train']!r}")
    test = loader.load(data["test"], name["test"], "test", scale_pixels=False) if "test" in data else None
    validation = data.get("validation")
    if validation == "test":
        if test is None:
            raise InvalidArgumentError("[data] validation = 'test' needs [data] test")
        return RunData(train, test, test)
    if validation is not None:
        return RunData(train, test, loader.load(validation, name["validation"], "test", scale_pixels=False))
    return RunData(train, test, None)


class PredictInput(NamedTuple):
    """What `onnxtrain predict --input` reads: the batch, and the file name of each example where it read a folder
    of images (None: a .npy array or one image, whose examples are numbered)."""

    x: np.ndarray | dict[str, np.ndarray]
    names: tuple[str, ...] | None


def read_input(path: Path, input_shape: tuple[int, ...]) -> np.ndarray | dict[str, np.ndarray]:
    """The --input of `onnxtrain predict` (see `read_inputs`), without the file names of a folder's images."""
    return read_inputs(path, input_shape).x


def read_inputs(path: Path, input_shape: tuple[int, ...], input_names: Sequence[str] = ("input",)) -> PredictInput:
    """The --input of `onnxtrain predict`: a .npy array as stored; a .npz of one array per model input, named
    after them (`input_names`; a model of one input also takes the `x` of a training .npz, or its only array);
    an image as uint8 grey, RGB or RGBA pixels
    shaped to `input_shape` (the model's input without the batch axis) by the rule `image_dataset_from_directory`
    reads images with (16-bit images are brought to 8 bits, transparent pixels are composited on black), not
    resized; or a folder: every image in it, at any depth, in sorted order, each read as one image is, with its
    path inside the folder.

    Raises:
        InvalidArgumentError: a missing file (or a link to one), another suffix, a file Pillow cannot read as an
            image, a model that does not take images, an image of the wrong size, or one `image_pixels` refuses,
            a folder without images; a .npy for a model of several inputs, a .npz without an array per input.
        DataFormatError: a .npy file that is not an array numpy wrote, a .npz that is not a numpy archive.
        RuntimeSetupError: an image, without Pillow installed.
    """
    _refuse_missing_input(path)
    suffix = path.suffix.lower()
    if suffix == ".npz" and not path.is_dir():
        return PredictInput(_read_npz_inputs(path, input_names), None)
    if len(input_names) > 1:  # one array, an image or a folder of them cannot feed several inputs
        raise InvalidArgumentError(
            f"--input '{path}': the model takes {len(input_names)} inputs {list(input_names)}; pass a .npz of one "
            f"array per input, named after it: np.savez('inputs.npz', {', '.join(f'{n}=...' for n in input_names)})"
        )
    if path.is_dir():
        return PredictInput(*read_image_folder(path, input_shape))
    if suffix == ".npy":
        return PredictInput(read_npy(path, DataFormatError), None)
    if suffix not in IMAGE_SUFFIXES:
        raise InvalidArgumentError(f"{INPUT_EXPECTED}. Received: '{path}'")
    return PredictInput(read_image_input(path, input_shape), None)


def _read_npz_inputs(path: Path, input_names: Sequence[str]) -> np.ndarray | dict[str, np.ndarray]:
    """The arrays of a .npz --input: {input name: array} for every input of the model; for a model of one input,
    its named array, the `x` of a training .npz, or the archive's only array."""
    arrays = read_npz(path, f"--input '{path}'", DataFormatError)
    if all(name in arrays for name in input_names):
        return {name: arrays[name] for name in input_names} if len(input_names) > 1 else arrays[input_names[0]]
    if len(input_names) == 1 and ("x" in arrays or len(arrays) == 1):
        return arrays["x"] if "x" in arrays else next(iter(arrays.values()))
    one_input = " (or an `x`, as a training .npz holds)" if len(input_names) == 1 else ""
    raise InvalidArgumentError(
        f"--input '{path}' expects one array per model input, named after it: {list(input_names)}{one_input}. "
        f"Received: arrays {sorted(arrays)}"
    )


def _refuse_missing_input(path: Path) -> None:
    """Refuse an --input that is no file or folder to read: a missing path, or a link to one (one clear line, not
    the system's "[Errno 2] No such file or directory")."""
    if path.is_file() or path.is_dir():
        return
    if path.is_symlink():
        what = f"a link to '{os.readlink(path)}', which does not exist"
    elif os.path.lexists(path):
        return  # a FIFO or a device: the readers refuse it by kind
    else:
        what = "does not exist" if path.parent.is_dir() else f"does not exist (nor does the folder '{path.parent}')"
        raise InvalidArgumentError(f"{INPUT_EXPECTED}. Received: '{path}', which {what}")
    raise InvalidArgumentError(f"{INPUT_EXPECTED}. Received: '{path}', which is {what}")


# --- saved models ------------------------------------------------------------------------------------------
def saved_model_dir(path: str, needs: str) -> Path:
    """The saved model directory `path` names (a model.onnx beside its config.json names its folder).

    Raises:
        InvalidArgumentError: an .onnx file without a config.json beside it.
        ModelFileError: a missing folder, or one that lacks config.json or model.onnx (naming a few of its files).
    """
    directory = Path(path)
    if directory.suffix.lower() == ".onnx" and directory.is_file():
        if (directory.parent / CONFIG_FILE).is_file():
            return directory.parent
        if not _parses_as_onnx(directory):
            raise InvalidArgumentError(
                f"'{path}' is not an ONNX file (it does not parse as an ONNX ModelProto) nor a saved model "
                f"directory; this needs {needs}"
            )
        raise InvalidArgumentError(
            f"'{path}' is an inference-only ONNX file (no layer config, loss or optimizer); this needs {needs}"
        )
    directory = saved_model_folder(directory)
    check_saved_model(directory, needs)
    return directory


def is_saved_model(directory: Path) -> bool:
    """Whether `directory` holds a saved model's config.json and model.onnx."""
    return (directory / CONFIG_FILE).is_file() and (directory / MODEL_FILE).is_file()


def _parses_as_onnx(path: Path) -> bool:
    """Whether the file `path` parses as an ONNX model (read through the size-checked gate)."""
    from onnxtrain._onnx_file import read_onnx_model

    try:
        read_onnx_model(path, f"'{path}'")
    except (OnnxtrainError, OSError, ValueError):
        return False
    return True


def check_saved_model(directory: Path, needs: str) -> None:
    """Refuse a folder that is not a saved model, naming only its first few files (it may hold thousands)."""
    folder = resolve_model_directory(directory)  # also finishes a save that was killed part-way
    missing = [name for name in (CONFIG_FILE, MODEL_FILE) if not (folder / name).is_file()]
    if missing:
        raise ModelFileError(
            f"'{directory}' is not a saved onnxtrain model: {missing[0]} is missing (it holds "
            f"{listing(sorted(p.name for p in folder.iterdir()), LISTED_ENTRIES)}); this needs {needs}."
        )


def refuse_several_outputs(saved: dict[str, Any], model: str, command: str, python: str) -> None:
    """Refuse a saved model of several outputs (its config.json, `saved`) for a command that reads one label array
    per example: a .npz holds one y, and a model of several outputs needs one per output. `python` names the
    method of the Python API that does what `command` does."""
    layers = saved.get("output_layers") or []
    # a model of a dict of outputs saves {key: layer reference}, as Keras 3 does; otherwise a list of references
    outputs = list(layers) if isinstance(layers, dict) else [str(layer[0]) for layer in layers]
    if len(outputs) > 1:
        raise InvalidArgumentError(
            f"{command} takes a model of one output; '{model}' has {len(outputs)} outputs {outputs}, and a .npz "
            f"holds one label array y. Use the Python API, which takes one per output: model.{python}(x, "
            + "{"
            + ", ".join(f"{name!r}: y_{name}" for name in outputs)
            + "})"
        )


def saved_optimizer(directory: Path) -> dict[str, Any]:
    """`optimizer=` the saved compile settings name, so that load_model starts it fresh instead of resuming it:
    evaluate and export need no optimizer state, and the state one engine saved cannot move to another."""
    from onnxtrain import optimizers
    from onnxtrain.model_files import read_config as read_saved_config

    try:
        settings = read_saved_config(directory / CONFIG_FILE).get("compile") or {}
        return {"optimizer": optimizers.get(settings["optimizer"])}
    except (OnnxtrainError, LookupError, TypeError, ValueError):
        return {}  # an uncompiled save, or a damaged one: load_model reports what is wrong


def load_compiled(directory: Path, engine: str | None, command: str, resume: bool = False) -> Sequential:
    """The saved model compiled with `engine`, or with the engine it was trained with, and a fresh optimizer
    (`resume`: the saved optimizer and its state, where the save holds it).

    Where the recorded engine is ort-training and the installed onnxruntime cannot train (an inference-only
    install), load_model compiles with the portable engine, which computes the same steps, and warns: warnings
    of the load become one-line notes on stderr, printed once the model has loaded.
    """
    from onnxtrain.loading import load_model

    options = {} if resume else saved_optimizer(directory)
    if engine is not None:
        options["engine"] = engine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(directory, **options)
    for warning in caught:
        print(f"onnxtrain {command}: note: {' '.join(str(warning.message).split())}", file=sys.stderr)
    return model
