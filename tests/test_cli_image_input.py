"""What `onnxtrain predict --input` reads of images (`cli/_image_input.py`, through `_data.read_inputs`): one rule
for pixels, the datasets loader's (`_image_decoding.read_image`), for every color mode; a folder read as one batch of
its images at any depth, in sorted order, with their names; and the refusals, naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnxtrain.cli._data import read_input, read_inputs
from onnxtrain.datasets._image_decoding import ImageReading, read_image
from onnxtrain.errors import InvalidArgumentError

Image = pytest.importorskip("PIL.Image")


def _palette_with_transparency(path: Path) -> None:
    image = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16).convert("P")
    image.info["transparency"] = 0
    image.save(path, transparency=0)


def _array(mode: str):
    rng = np.random.default_rng(3)

    def save(path: Path) -> None:
        if mode == "I;16":
            Image.fromarray(rng.integers(0, 65536, (4, 4)).astype(np.uint16)).save(path)
        else:
            shape = (4, 4) if mode == "L" else (4, 4, len(mode))
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)

    return save


IMAGES = {
    "grey": _array("L"),
    "grey_alpha": _array("LA"),
    "rgb": _array("RGB"),
    "rgba": _array("RGBA"),
    "16_bit_grey": _array("I;16"),
    "palette_transparency": _palette_with_transparency,
}


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_predict_reads_an_image_as_the_folder_loader_does(tmp_path, kind, channels):
    IMAGES[kind](tmp_path / "x.png")
    loader = read_image(str(tmp_path / "x.png"), ImageReading(channels, (4, 4), "bilinear"), Image)
    np.testing.assert_array_equal(read_input(tmp_path / "x.png", (4, 4, channels)), loader)
    if channels == 1:  # a model of (height, width) inputs: the same grey pixels
        np.testing.assert_array_equal(read_input(tmp_path / "x.png", (4, 4)), loader[..., 0])


def test_a_folder_is_every_image_in_it_sorted_at_any_depth(tmp_path):
    rng = np.random.default_rng(0)
    names = ["b.png", "a.PNG", "new/c.jpg", "new/deeper/d.bmp", ".e.gif"]
    for name in names:
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(tmp_path / "in" / name)
    (tmp_path / "in" / "notes.txt").write_text("passed over")
    read = read_inputs(tmp_path / "in", (4, 4, 1))
    assert read.names == (".e.gif", "a.PNG", "b.png", "new/c.jpg", "new/deeper/d.bmp")  # sorted by folder, then name
    assert read.x.shape == (5, 4, 4, 1) and read.x.dtype == np.uint8
    for row, name in zip(read.x, read.names, strict=True):
        np.testing.assert_array_equal(row, read_input(tmp_path / "in" / name, (4, 4, 1)))


def _save_grey(path: Path, size: tuple[int, int] = (4, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)).save(path)


def _truncated(folder: Path) -> None:
    _save_grey(folder / "a.png")
    _save_grey(folder / "trunc.png", (16, 16))
    data = (folder / "trunc.png").read_bytes()
    (folder / "trunc.png").write_bytes(data[: len(data) // 2])


def _other_size(folder: Path) -> None:
    _save_grey(folder / "a.png")
    _save_grey(folder / "sub" / "big.png", (5, 7))


def _no_images(folder: Path) -> None:
    folder.mkdir()
    (folder / "notes.txt").write_text("")


REFUSALS = [
    ("empty", lambda folder: folder.mkdir(), (4, 4, 1), r"^--input found no images in '.*in'\. '.*in' is empty\.$"),
    (
        "no_images",
        _no_images,
        (4, 4, 1),
        r"^--input found no images in '.*in'\. '.*in' holds 'notes\.txt'; images are read by suffix: \.bmp",
    ),
    (
        "truncated",
        _truncated,
        (4, 4, 1),
        r"^--input '.*in/trunc\.png' cannot be read as an image: image file is truncated",
    ),
    ("not_images", _other_size, (16,), r"^the model takes \[16\] inputs, not images; pass a \.npy array$"),
]


@pytest.mark.parametrize(("make", "shape", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_folder_predict_cannot_read_is_refused_naming_the_file(tmp_path, make, shape, message):
    make(tmp_path / "in")
    with pytest.raises(InvalidArgumentError, match=message):
        read_inputs(tmp_path / "in", shape)


def test_a_truncated_image_given_alone_is_refused_naming_it(tmp_path):
    _truncated(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"^--input '.*trunc\.png' cannot be read as an image: image file "):
        read_input(tmp_path / "trunc.png", (16, 16, 1))


@pytest.mark.parametrize("shape", [(4, 4, 1), (4, 4), (3, 6, 3)])
def test_a_folder_of_other_sizes_is_resized_as_the_folder_loader_reads_it(tmp_path, shape):
    """`image_dataset_from_directory(labels=None, shuffle=False)` at the model's size, uint8: the same pixels (its
    default bilinear resize), so predict on a folder reads what train on a folder trains on."""
    from onnxtrain.datasets import image_dataset_from_directory

    _other_size(tmp_path / "in")
    _save_grey(tmp_path / "in" / "sub" / "small.png", (2, 3))
    read = read_inputs(tmp_path / "in", shape)
    assert read.names == ("a.png", "sub/big.png", "sub/small.png")
    loader = image_dataset_from_directory(
        tmp_path / "in",
        labels=None,
        shuffle=False,
        image_size=shape[:2],
        color_mode="rgb" if shape[2:] == (3,) else "grayscale",
        scale_pixels=False,
        verbose=False,
    )
    np.testing.assert_array_equal(read.x, np.asarray(loader).reshape(read.x.shape))
    assert [Path(path).relative_to(tmp_path / "in").as_posix() for path in loader.file_paths] == list(read.names)


def test_an_image_of_another_size_given_alone_is_refused_naming_the_fix(tmp_path):
    _save_grey(tmp_path / "big.png", (5, 7))
    with pytest.raises(InvalidArgumentError, match=r"^'.*big\.png' is 7x5 pixels; the model expects 4x4\. Resize it"):
        read_input(tmp_path / "big.png", (4, 4, 1))
