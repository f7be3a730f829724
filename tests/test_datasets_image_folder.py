"""image_dataset_from_directory: Keras 3's file order, labels and validation split (a fixture of Keras' own indexing,
tools/keras_image_folder_fixtures.py), the pixels against Pillow's own conversions and resizes, the refusals, and a
folder of images that trains a CNN and names its classes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from onnxtrain.datasets import Dataset, image_dataset_from_directory
from onnxtrain.errors import DataFormatError, InvalidArgumentError, InvalidTypeError, RuntimeSetupError

Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parent.parent
KERAS = json.loads((ROOT / "tests" / "data" / "keras" / "image_folder_index.json").read_text())
QUIET = {"verbose": False, "image_size": (2, 2), "color_mode": "grayscale", "scale_pixels": False}


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _keras_layout(root: Path) -> None:
    """The fixture's folder tree, each image one grey level that tells which file it is: 10 * (its place + 1)."""
    for place, name in enumerate(KERAS["layout"]):
        if name.endswith(".txt"):  # not an image: passed over
            (root / name).write_text("")
        else:
            _save(root / name, np.full((3, 3), 10 * (place + 1), np.uint8))
    for link, target in KERAS["links"].items():
        (root / link).symlink_to(target, target_is_directory=True)


def _files(images: np.ndarray) -> list[str]:
    """The fixture's files that `images` (read by `_keras_layout`'s rule) are, in order; a linked image by its link."""
    places = np.rint(images.reshape(len(images), -1).mean(axis=1) / 10).astype(int) - 1
    return [KERAS["layout"][place] for place in places]


@pytest.mark.parametrize("case", sorted(KERAS["cases"]))
def test_files_labels_and_split_are_keras(case, tmp_path):
    expected = KERAS["cases"][case]
    _keras_layout(tmp_path)
    data = image_dataset_from_directory(tmp_path, **expected["arguments"], **QUIET)
    images = data.x if isinstance(data, Dataset) else data
    linked = {f"dog/linked/{Path(name).name}": name for name in KERAS["layout"] if name.startswith(".hidden/")}
    assert _files(images) == [linked.get(name, name) for name in expected["files"]]
    assert [Path(path).relative_to(tmp_path).as_posix() for path in data.file_paths] == expected["files"]  # Keras'
    assert all(path.startswith(str(tmp_path)) for path in data.file_paths)  # os.path.join(directory, ...), as Keras
    if expected["labels"] is None:
        assert isinstance(data, np.ndarray)
    else:
        assert data.y.tolist() == expected["labels"]
        assert list(data.class_names) == expected["class_names"]


def test_both_subsets_are_the_training_and_validation_calls(tmp_path):
    _keras_layout(tmp_path)
    split = {"validation_split": 0.3, "seed": 7}
    train, val = image_dataset_from_directory(tmp_path, subset="both", **split, **QUIET)
    assert _files(train.x) == KERAS["cases"]["training"]["files"]
    assert _files(val.x) == KERAS["cases"]["validation"]["files"]
    assert train.class_names == val.class_names == ("Bird", "cat", "dog")
    for part, case in ((train, "training"), (val, "validation")):
        assert [Path(path).relative_to(tmp_path).as_posix() for path in part.file_paths] == KERAS["cases"][case][
            "files"
        ]


def test_file_paths_name_the_file_of_each_prediction_without_labels(tmp_path):
    """Keras' `dataset.file_paths` on the images of labels=None (a numpy array here): row i was read from
    file_paths[i]; a slice or a computation of them holds no files (None / a plain array), nor does a split Dataset."""
    _keras_layout(tmp_path)
    images = image_dataset_from_directory(tmp_path, labels=None, seed=3, **QUIET)
    assert len(images.file_paths) == len(images) == len(KERAS["cases"]["no_labels_shuffled"]["files"])
    for path, row in zip(images.file_paths, images, strict=True):
        np.testing.assert_array_equal(row[..., 0], np.asarray(Image.open(path).convert("L").resize((2, 2))))
    assert images[:2].file_paths is None
    assert type(images / 255) is np.ndarray and type(images.max()) is np.uint8
    named = image_dataset_from_directory(tmp_path, **QUIET)
    assert named.file_paths is not None and named.split(0.5)[0].file_paths is None
    assert Dataset(np.zeros((2, 1)), np.zeros(2)).file_paths is None


def test_label_modes(tmp_path):
    for place, name in enumerate(["a/1.png", "a/2.png", "b/1.png"]):
        _save(tmp_path / name, np.full((2, 2), place, np.uint8))
    shown = {**QUIET, "shuffle": False}
    ints = image_dataset_from_directory(tmp_path, **shown)
    categorical = image_dataset_from_directory(tmp_path, label_mode="categorical", **shown)
    binary = image_dataset_from_directory(tmp_path, label_mode="binary", **shown)
    images = image_dataset_from_directory(tmp_path, label_mode=None, **shown)
    assert ints.y.dtype == np.int64 and ints.y.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(categorical.y, np.eye(2, dtype=np.float32)[[0, 0, 1]])
    assert binary.y.dtype == np.float32 and binary.y.tolist() == [[0.0], [0.0], [1.0]]
    np.testing.assert_array_equal(images, ints.x)
    given = image_dataset_from_directory(tmp_path, labels=[2, 0, 1], **shown)
    assert given.y.tolist() == [2, 0, 1] and given.class_names == ("0", "1", "2")


def test_pixels_are_pillows_resize_and_conversions(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    _save(tmp_path / "a" / "x.png", rgb)
    _save(tmp_path / "a" / "y.bmp", rng.integers(0, 256, (3, 9, 3), dtype=np.uint8))  # another size
    read = {"verbose": False, "shuffle": False, "scale_pixels": False, "image_size": (4, 6)}
    source = Image.fromarray(rgb)
    for interpolation, filter_ in [
        ("bilinear", Image.Resampling.BILINEAR),
        ("nearest", Image.Resampling.NEAREST),
        ("bicubic", Image.Resampling.BICUBIC),
        ("area", Image.Resampling.BOX),
        ("lanczos3", Image.Resampling.LANCZOS),
    ]:
        data = image_dataset_from_directory(tmp_path, interpolation=interpolation, **read)
        assert data.x.shape == (2, 4, 6, 3) and data.x.dtype == np.uint8
        np.testing.assert_array_equal(data.x[0], np.asarray(source.resize((6, 4), filter_)), err_msg=interpolation)
    bilinear = Image.Resampling.BILINEAR
    grey = image_dataset_from_directory(tmp_path, color_mode="grayscale", **read)
    np.testing.assert_array_equal(grey.x[0, ..., 0], np.asarray(source.convert("L").resize((6, 4), bilinear)))
    rgba = image_dataset_from_directory(tmp_path, color_mode="rgba", **read)
    np.testing.assert_array_equal(rgba.x[0], np.asarray(source.convert("RGBA").resize((6, 4), bilinear)))


def test_unit_pixels_by_default_with_input_scale(tmp_path):
    _save(tmp_path / "a" / "x.png", np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    raw = image_dataset_from_directory(tmp_path, image_size=(3, 4), color_mode="grayscale", verbose=False,
                                       scale_pixels=False)  # fmt: skip
    unit = image_dataset_from_directory(tmp_path, image_size=(3, 4), color_mode="grayscale", verbose=False)
    assert raw.x.dtype == np.uint8 and raw.input_scale is None
    assert unit.x.dtype == np.float32 and unit.input_scale == 1 / 255
    np.testing.assert_array_equal(unit.x, raw.x.astype(np.float32) / np.float32(255))


def test_crop_and_pad_to_the_aspect_ratio(tmp_path):
    wide = np.random.default_rng(1).integers(0, 256, (6, 10), dtype=np.uint8)
    _save(tmp_path / "a" / "x.png", wide)
    read = {"verbose": False, "color_mode": "grayscale", "scale_pixels": False, "image_size": (4, 4)}
    cropped = image_dataset_from_directory(tmp_path, crop_to_aspect_ratio=True, **read)
    # Keras' smart_resize of 6 x 10 to 4 x 4: the centred 6 x 6 window, columns 2-7
    expected = Image.fromarray(wide[:, 2:8]).resize((4, 4), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(cropped.x[0, ..., 0], np.asarray(expected))
    padded = image_dataset_from_directory(tmp_path, pad_to_aspect_ratio=True, **read)
    square = np.zeros((10, 10), np.uint8)
    square[2:8] = wide  # Keras' ops.image.resize: 2 rows of zeros above and below
    expected = Image.fromarray(square).resize((4, 4), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(padded.x[0, ..., 0], np.asarray(expected))


def test_transparency_and_16_bit_grey(tmp_path):
    rgba = np.array([[[200, 100, 50, 0], [200, 100, 50, 128], [200, 100, 50, 255]]], np.uint8)
    _save(tmp_path / "a" / "x.png", rgba)
    sixteen = np.array([[0, 257, 65535]], np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "a" / "y.png")  # mode I;16
    read = {"verbose": False, "shuffle": False, "scale_pixels": False, "image_size": (1, 3)}
    rgb = image_dataset_from_directory(tmp_path, **read)
    composited = (rgba[..., :3].astype(int) * rgba[..., 3:] + 127) // 255  # on black
    np.testing.assert_array_equal(rgb.x[0], composited)
    np.testing.assert_array_equal(rgb.x[1], np.repeat(np.array([[[0], [1], [255]]]), 3, axis=-1))
    kept = image_dataset_from_directory(tmp_path, color_mode="rgba", **read)
    np.testing.assert_array_equal(kept.x[0], rgba)


def test_prints_what_it_found_as_keras(tmp_path, capsys):
    _keras_layout(tmp_path)
    image_dataset_from_directory(tmp_path, validation_split=0.3, subset="both", seed=7, image_size=2)
    assert capsys.readouterr().out.splitlines() == [
        "Found 12 files belonging to 3 classes.",
        "Using 9 files for training.",
        "Using 3 files for validation.",
    ]


def _two_classes(root: Path) -> Path:
    for name in ("a/1.png", "a/2.png", "b/1.png", "b/2.png"):
        _save(root / name, np.zeros((2, 2), np.uint8))
    return root


BAD_ARGUMENTS = [
    (
        {"color_mode": "gray"},
        InvalidArgumentError,
        r"color_mode=\.\.\.\) expects one of \['grayscale', 'rgb', 'rgba'\]. Received: color_mode='gray'",
    ),
    (
        {"label_mode": "sparse"},
        InvalidArgumentError,
        r"label_mode=\.\.\.\) expects one of \['int', 'categorical', 'binary', None\]. Received: label_mode='sparse'",
    ),
    (
        {"subset": "train", "validation_split": 0.5, "seed": 1},
        InvalidArgumentError,
        r"expects one of \['training', 'validation', 'both', None\]. Received: subset='train'",
    ),
    (
        {"validation_split": 1.5, "subset": "training", "seed": 1},
        InvalidArgumentError,
        r"validation_split=\.\.\.\) expects None or a float in \(0, 1\). Received: validation_split=1.5",
    ),
    ({"validation_split": "0.2", "subset": "training", "seed": 1}, InvalidTypeError, r"Received: '0.2'"),
    (
        {"validation_split": 0.5},
        InvalidArgumentError,
        r"validation_split and subset together .* Received: validation_split=0.5, subset=None",
    ),
    ({"subset": "training"}, InvalidArgumentError, r"validation_split and subset together"),
    ({"validation_split": 0.5, "subset": "both"}, InvalidArgumentError, r"needs a seed"),
    (
        {"validation_split": 0.1, "subset": "both", "seed": 1},
        InvalidArgumentError,
        r"of 4 images leaves the validation subset empty",
    ),
    (
        {"interpolation": "gaussian"},
        InvalidArgumentError,
        r"TensorFlow filter that Pillow.* lacks. Use one of \['bilinear'",
    ),
    (
        {"interpolation": "cubic"},
        InvalidArgumentError,
        r"interpolation=\.\.\.\) expects one of \['bilinear'.* Received: interpolation='cubic'",
    ),
    (
        {"image_size": (0, 4)},
        InvalidArgumentError,
        r"image_size=\.\.\.\) expects \(height, width\).* Received: image_size=\(0, 4\)",
    ),
    ({"seed": -1}, InvalidArgumentError, r"seed=\.\.\.\) expects None or an int in \[0, 2\*\*32 - 1\]. Received: -1"),
    (
        {"batch_size": 32},
        InvalidArgumentError,
        r"batch_size=\.\.\.\) is not taken.* model\.fit\(train, batch_size=32\)",
    ),
    ({"format": "tf"}, InvalidArgumentError, r"format=\.\.\.\) is Keras' choice .* Received: format='tf'"),
    (
        {"data_format": "channels_first"},
        InvalidArgumentError,
        r"channels-last.* Received: data_format='channels_first'",
    ),
    ({"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, InvalidArgumentError, r"not both"),
    ({"shuffle": "yes"}, InvalidArgumentError, r"shuffle=\.\.\.\) expects a bool. Received: shuffle='yes'"),
    (
        {"labels": "folders"},
        InvalidArgumentError,
        r"labels=\.\.\.\) expects 'inferred', None, or a list .* Received: labels='folders'",
    ),
    ({"labels": [0, 1]}, InvalidArgumentError, r"'.*' holds 4 images. Received: 2 labels"),
    ({"labels": [0, 1, 1.5, 0]}, InvalidArgumentError, r"Received: a label 1.5"),
    ({"labels": [0, 1, 0, 1], "class_names": ["a", "b"]}, InvalidArgumentError, r"needs labels='inferred'"),
    (
        {"class_names": ["a", "c"]},
        InvalidArgumentError,
        r"expects names of sub-folders of '.*' \('a', 'b'\). Received: 'c'",
    ),
    ({"class_names": ["a", "a"]}, InvalidArgumentError, r"each name once. Received: \['a'\]"),
    ({"label_mode": "binary", "class_names": ["a"]}, InvalidArgumentError, r"exactly 2 classes. Received: 1"),
]


@pytest.mark.parametrize(("arguments", "error", "message"), BAD_ARGUMENTS)
def test_refuses_bad_arguments_naming_them(tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        image_dataset_from_directory(_two_classes(tmp_path), verbose=False, **arguments)


def _images_at_the_top(root: Path) -> None:
    _save(root / "x.png", np.zeros((2, 2), np.uint8))


def _an_empty_class(root: Path) -> None:
    _two_classes(root)
    (root / "empty").mkdir()
    (root / "empty" / "photo.webp").write_bytes(b"")


def _no_images(root: Path) -> None:
    for name in ("a", "b"):
        (root / name).mkdir()
        (root / name / "notes.txt").write_text("")


def _corrupt(root: Path) -> None:
    _two_classes(root)
    (root / "b" / "2.png").write_bytes(b"not an image")


def _truncated(root: Path) -> None:
    _save(root / "a" / "1.png", np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    data = (root / "a" / "1.png").read_bytes()
    (root / "a" / "1.png").write_bytes(data[: len(data) // 2])


BAD_FOLDERS = [
    ("missing", FileNotFoundError, r"Received: '.*missing', which does not exist"),
    (
        _images_at_the_top,
        InvalidArgumentError,
        r"one sub-folder of images per class. Received: no sub-folder. .*'x.png' directly in it \(pass labels=None",
    ),
    (_an_empty_class, InvalidArgumentError, r"no images in these class folders of '.*': 'empty'. .*holds 'photo.webp'"),
    (_no_images, InvalidArgumentError, r"no images in any class folders of '.*': 'a', 'b'"),
    (_corrupt, DataFormatError, r"'.*b/2.png' cannot be read as an image: Pillow does not recognise its format"),
    (_truncated, DataFormatError, r"'.*a/1.png' cannot be read as an image: .*truncated"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD_FOLDERS)
def test_refuses_bad_folders_naming_what_is_wrong(tmp_path, make, error, message):
    folder = tmp_path / "images"
    if callable(make):
        folder.mkdir()
        make(folder)
    else:
        folder = tmp_path / make
    with pytest.raises(error, match=message):
        image_dataset_from_directory(folder, verbose=False)


def test_refuses_a_file_and_a_folder_without_images(tmp_path):
    with pytest.raises(NotADirectoryError, match="which is a file"):
        image_dataset_from_directory(_save(tmp_path / "x.png", np.zeros((1, 1), np.uint8)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match=re.escape(f"found no images in '{tmp_path / 'empty'}'")):
        image_dataset_from_directory(tmp_path / "empty", labels=None)


def test_without_pillow_names_the_pip_command(tmp_path, monkeypatch):
    folder = _two_classes(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` then raises ImportError
    with pytest.raises(RuntimeSetupError, match="reads image files with Pillow, which is not installed: pip install"):
        image_dataset_from_directory(folder)


@pytest.mark.slow
def test_a_folder_of_images_trains_a_cnn_that_names_its_classes(tmp_path):
    from onnxtrain import InferenceModel, Sequential
    from onnxtrain.layers import Conv2D, Dense, Flatten, Input

    rng = np.random.default_rng(0)
    for channel, name in enumerate(["blue", "green", "red"][::-1]):  # red is channel 0
        for index in range(8):
            pixels = rng.integers(0, 60, (6 + index % 3, 8, 3), dtype=np.uint8)  # sizes differ
            pixels[..., channel] += 180
            _save(tmp_path / "colors" / name / f"{index}.png", pixels)
    train = image_dataset_from_directory(tmp_path / "colors", image_size=(8, 8), seed=1, verbose=False)
    model = Sequential([Input(8, 8, 3), Conv2D(4, 3), Flatten(), Dense(3, activation="linear")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(train, epochs=1, batch_size=8, verbose=0)
    assert model.class_names == ("blue", "green", "red") and model.input_scale == 1 / 255
    model.fit(train, epochs=20, batch_size=8, verbose=0)  # more steps, to tell every image's class
    raw = image_dataset_from_directory(
        tmp_path / "colors", image_size=(8, 8), shuffle=False, labels=None, scale_pixels=False, verbose=False
    )
    named = [model.class_names[index] for index in model.predict(raw)]  # uint8 pixels, divided by the model
    assert named == ["blue"] * 8 + ["green"] * 8 + ["red"] * 8
    exported = InferenceModel.load(model.export(tmp_path / "colors.onnx"))
    assert tuple(exported.class_names) == ("blue", "green", "red")
    np.testing.assert_array_equal(exported.predict(raw), model.predict(raw))


@pytest.mark.slow
def test_the_docs_examples_run(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    for name in ("daisy", "rose", "tulip"):
        for index in range(5):
            size = (rng.integers(5, 12), rng.integers(5, 12), 3)
            _save(tmp_path / "flowers" / name / f"{index}.jpg", rng.integers(0, 256, size, dtype=np.uint8))
    for index in range(2):
        _save(tmp_path / "new_photos" / f"{index}.png", rng.integers(0, 256, (9, 7, 3), dtype=np.uint8))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "images.md").read_text(), re.S)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for index, block in enumerate(blocks):
        exec(compile(block, f"docs/images.md[python block {index}]", "exec"), namespace)  # the docs' own code
    assert namespace["train"].class_names == ("daisy", "rose", "tulip")  # type: ignore[attr-defined]
    assert namespace["photos"].shape == (2, 64, 64, 3)  # type: ignore[attr-defined]
