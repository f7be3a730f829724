"""A folder of class sub-folders as the data of a run or of --data (`cli/_image_folders.py`, through
`_data.DatasetLoader` and `load_run_data`): the pixels against the PNG files read by Pillow (divided by 255 for a new
run's training data, uint8 as stored otherwise), Keras' file order for a training folder and the sorted order for
test data, labels as the loss takes them and by the classes of the training data, and the refusals, each naming
the [data] key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnxtrain.cli._data import DatasetLoader, load_run_data
from onnxtrain.cli._image_folders import ImageTarget, label_mode, saved_target
from onnxtrain.errors import DataFormatError, InvalidArgumentError

Image = pytest.importorskip("PIL.Image")

CLASSES = ("cat", "dog", "eel")
SEED = 7


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _folder(root: Path, classes: tuple[str, ...] = CLASSES, count: int = 3, mode: str = "L") -> Path:
    """root/<class>/<i>.png, count images of 4 x 4 pixels per class, each different."""
    rng = np.random.default_rng(len(str(root)))
    for name in classes:
        for i in range(count):
            shape = (4, 4) if mode == "L" else (4, 4, len(mode))
            _save(root / name / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def _pngs(root: Path) -> tuple[np.ndarray, list[str]]:
    """The reference: each PNG under root/<class>/ as Pillow reads it, sorted by class then name, with its class."""
    paths = sorted(root.glob("*/*.png"))
    return np.stack([np.asarray(Image.open(path)) for path in paths]), [path.parent.name for path in paths]


def _target(input_shape=(4, 4, 1), units=3, loss="sparse_categorical_crossentropy", **more) -> ImageTarget:
    return ImageTarget(input_shape, (units,), loss, seed=SEED, **more)


def test_a_training_folder_is_its_pixels_divided_by_255_in_keras_order(tmp_path):
    _folder(tmp_path / "train")
    data = DatasetLoader(tmp_path, _target()).load("train", "[data] train", "train")
    pixels, classes = _pngs(tmp_path / "train")
    order = np.arange(len(pixels))
    np.random.RandomState(SEED).shuffle(order)  # Keras' shuffle of the sorted files, which fit's validation_split cuts
    assert data.x.dtype == np.float32 and data.input_scale == pytest.approx(1 / 255)
    np.testing.assert_array_equal(data.x, (pixels[order] / np.float32(255))[..., np.newaxis])
    assert data.y.dtype == np.int64 and [CLASSES[i] for i in data.y] == [classes[i] for i in order]
    assert data.class_names == CLASSES


def test_test_data_keeps_its_uint8_pixels_in_sorted_order(tmp_path):
    _folder(tmp_path / "test")
    data = DatasetLoader(tmp_path, _target()).load("test", "[data] test", "test", scale_pixels=False)
    pixels, classes = _pngs(tmp_path / "test")
    assert data.x.dtype == np.uint8 and data.input_scale is None
    np.testing.assert_array_equal(data.x[..., 0], pixels)
    assert [CLASSES[i] for i in data.y] == classes


@pytest.mark.parametrize(
    ("loss", "units", "classes", "expected"),
    [
        ("sparse_categorical_crossentropy", 3, CLASSES, "int"),
        ("softmax_cross_entropy_with_logits", 5, CLASSES, "int"),
        ("categorical_crossentropy", 3, CLASSES, "categorical"),
        ("mse", 3, CLASSES, "categorical"),
        ("binary_crossentropy", 1, ("no", "yes"), "binary"),
        ("binary_crossentropy", 2, ("no", "yes"), "categorical"),  # one unit per class: one-hot
    ],
)
def test_labels_are_what_the_loss_takes(tmp_path, loss, units, classes, expected):
    _folder(tmp_path / "train", classes, count=2)
    assert label_mode(loss, (units,)) == expected
    data = DatasetLoader(tmp_path, _target(units=units, loss=loss)).load("train", "[data] train", "test")
    indices = np.repeat(np.arange(len(classes)), 2)  # the sorted order of test data
    reference = {
        "int": indices,
        "categorical": np.eye(len(classes), dtype=np.float32)[indices],
        "binary": indices.astype(np.float32).reshape(-1, 1),
    }[expected]
    assert data.y.dtype == reference.dtype
    np.testing.assert_array_equal(data.y, reference)


def test_test_and_validation_folders_are_labelled_by_the_training_classes(tmp_path):
    _folder(tmp_path / "train")
    _folder(tmp_path / "test", ("cat", "eel"), count=2)  # no dog: eel is still class 2
    target = _target(loss="categorical_crossentropy")
    data = load_run_data({"train": "train", "test": "test", "validation": "test"}, tmp_path, images=target)
    assert data.test is data.validation
    assert data.test.class_names == CLASSES
    np.testing.assert_array_equal(data.test.y, np.eye(3, dtype=np.float32)[[0, 0, 2, 2]])


def test_a_saved_model_labels_a_folder_by_its_own_classes(tmp_path):
    _folder(tmp_path / "test", ("eel", "dog"), count=1)
    saved = {"input_shape": [4, 4, 1], "output_shape": [3], "compile": {"loss": {"name": "mse"}}, "seed": 1}
    target = saved_target({**saved, "class_names": ["eel", "dog", "cat"]})
    data = DatasetLoader(tmp_path, target).load("test", "--data", "test", scale_pixels=False)
    assert data.class_names == ("eel", "dog", "cat")
    np.testing.assert_array_equal(data.y, np.eye(3, dtype=np.float32)[[0, 1]])  # in the saved model's order


@pytest.mark.parametrize(
    ("input_shape", "mode", "shape"),
    [((4, 4), "L", (4, 4)), ((4, 4, 3), "RGB", (4, 4, 3)), ((4, 4, 4), "RGBA", (4, 4, 4)), ((2, 2, 1), "L", (2, 2, 1))],
)
def test_images_are_read_in_the_shape_and_colors_of_the_model_input(tmp_path, input_shape, mode, shape):
    _folder(tmp_path / "train", mode=mode, count=1)
    data = DatasetLoader(tmp_path, _target(input_shape)).load("train", "[data] train", "test", scale_pixels=False)
    assert data.x.shape == (3, *shape)
    if shape[:2] == (4, 4):  # no resize: the pixels as Pillow reads them
        np.testing.assert_array_equal(data.x.reshape(_pngs(tmp_path / "train")[0].shape), _pngs(tmp_path / "train")[0])


def _three_classes(root: Path) -> None:
    _folder(root / "train")


def _no_class_folder(root: Path) -> None:
    _save(root / "train" / "a.png", np.zeros((4, 4), np.uint8))


def _empty_class(root: Path) -> None:
    _folder(root / "train", ("cat",))
    (root / "train" / "dog").mkdir()


def _damaged(root: Path) -> None:
    _folder(root / "train")
    (root / "train" / "dog" / "1.png").write_bytes(b"not a png")


def _unknown_test_class(root: Path) -> None:
    _folder(root / "train")
    _folder(root / "test", ("cat", "owl"), count=1)


REFUSALS = [
    (
        "no_class_folder",
        _no_class_folder,
        {},
        r"^\[data\] train 'train' holds no class sub-folder: .* It holds 'a\.png'",
    ),
    (
        "empty_class_folder",
        _empty_class,
        {},
        r"^\[data\] train 'train': image_dataset_from_directory found no images in these class folders of "
        r"'.*train': 'dog'",
    ),
    ("damaged_image", _damaged, {}, r"^\[data\] train 'train': '.*train/dog/1\.png' cannot be read as an image"),
    (
        "unknown_test_class",
        _unknown_test_class,
        {},
        r"^\[data\] test 'test' holds class folders that are not classes of the training data \(\[data\] train "
        r"'train'\): 'owl'\. Its classes: 'cat', 'dog', 'eel'",
    ),
    (
        "not_an_image_model",
        _three_classes,
        {"input_shape": (16,)},
        r"^\[data\] train 'train' is a folder of images, .* The model's input: \[16\]$",
    ),
    ("five_channels", _three_classes, {"input_shape": (4, 4, 5)}, r"The model's input: \[4, 4, 5\]$"),
    ("free_size", _three_classes, {"input_shape": (None, None, 1)}, r"The model's input: \[None, None, 1\]$"),
    (
        "too_few_outputs",
        _three_classes,
        {"units": 2},
        r"^\[data\] train 'train' holds 3 classes \('cat', 'dog', 'eel'\), and the model has 2 outputs, one per "
        r"class: give its last layer 3 units\.$",
    ),
    (
        "one_hot_of_other_width",
        _three_classes,
        {"units": 4, "loss": "categorical_crossentropy"},
        r"and the model has 4 outputs, one per class \(one-hot labels\): give its last layer 3 units\.$",
    ),
    (
        "binary_of_three_classes",
        _three_classes,
        {"units": 1, "loss": "binary_crossentropy"},
        r"holds 3 classes .*; a model of one output unit and binary cross-entropy tells 2 classes apart",
    ),
]


@pytest.mark.parametrize(("make", "changes", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_folder_the_model_cannot_train_on_is_refused_naming_the_key(tmp_path, make, changes, message):
    make(tmp_path)
    data = {"train": "train", **({"test": "test"} if (tmp_path / "test").exists() else {})}
    error = DataFormatError if make is _damaged else InvalidArgumentError
    with pytest.raises(error, match=message):
        load_run_data(data, tmp_path, images=_target(**changes))


def test_a_path_that_is_no_file_nor_folder_says_so(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"a \.npz file or a folder of class sub-folders of images\. "):
        DatasetLoader(tmp_path, _target()).load("imgs/train", "[data] train")
    with pytest.raises(InvalidArgumentError, match=r"Received: 'imgs/train', which does not exist$"):
        DatasetLoader(tmp_path, _target()).load("imgs/train", "[data] train")


def test_a_loader_that_knows_no_model_refuses_a_folder(tmp_path):
    _folder(tmp_path / "train")
    with pytest.raises(InvalidArgumentError, match=r"^--data 'train' is a folder; this reads 'fashion-mnist"):
        DatasetLoader(tmp_path).load("train", "--data")
