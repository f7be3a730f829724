"""Mistakes the command line refuses in one clear line, naming what it received and what it expects: an --input that
is no file or an empty folder (`_data.read_input`), an OUT that cannot be written (export, bundle:
`_output_folder.check_writable_place`), a config whose model has no trainable parameter
(`_config_model.refuse_training_nothing`), and a system error that reaches `main` unexplained."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain._artifacts_folder import _probe_write
from onnxtrain.cli import main
from onnxtrain.cli._advice import error_text
from onnxtrain.cli._data import read_input
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input

pytest.importorskip("PIL.Image")

EXPECTED = re.escape(
    "--input expects a .npy array, a .npz of arrays named after the model's inputs, an image file (.png, .jpg, "
    ".jpeg, .bmp, .gif) or a folder of images. Received: "
)


def _make_dangling_link(folder: Path) -> Path:
    os.symlink(folder / "gone.png", folder / "link.png")
    return folder / "link.png"


def _make_folder(folder: Path) -> Path:
    (folder / "images.png").mkdir()
    return folder / "images.png"


def _make_text(folder: Path) -> Path:
    (folder / "notes.png").write_text("not an image")
    return folder / "notes.png"


def _make_fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.png")
    return folder / "pipe.png"


# --- an --input that is no file to read ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing.png", EXPECTED + r"'.*missing\.png', which does not exist$"),
        (lambda folder: folder / "missing.npy", EXPECTED + r"'.*missing\.npy', which does not exist$"),
        (
            lambda folder: folder / "gone" / "x.png",
            EXPECTED + r"'.*x\.png', which does not exist \(nor does the folder '.*gone'\)$",
        ),
        (_make_dangling_link, EXPECTED + r"'.*link\.png', which is a link to '.*gone\.png', which does not exist$"),
        (_make_folder, r"^--input found no images in '.*images\.png'\. '.*images\.png' is empty\.$"),
        (
            _make_text,
            r"^--input '.*notes\.png' cannot be read as an image: Pillow does not recognise its format \(not an "
            r"image, or a damaged one\)\. --input expects",
        ),
        (_make_fifo, EXPECTED + r"'.*pipe\.png': it is not a regular file"),  # refused, not waited on
    ],
    ids=["missing_image", "missing_npy", "missing_folder", "dangling_link", "empty_folder", "not_an_image", "fifo"],
)
def test_an_input_that_is_no_readable_file_is_refused_naming_it(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        read_input(path, (4, 4, 1))
    assert "Errno" not in str(caught.value)


def test_an_input_that_vanishes_before_it_is_read_is_refused_as_missing(tmp_path, monkeypatch):
    from onnxtrain.cli import _data

    (tmp_path / "x.png").write_bytes(b"")
    monkeypatch.setattr(_data, "_refuse_missing_input", lambda path: None)  # as if it went after the check
    os.unlink(tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match=EXPECTED + r"'.*x\.png', which does not exist$"):
        read_input(tmp_path / "x.png", (4, 4, 1))


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.png"), "No such file or directory: 'x.png'"),
        (OSError(errno.EPERM, "Could not save 'm': Operation not permitted."), "Could not save 'm': Operation not "
         "permitted."),
        (OSError("no errno"), "no errno"),
        (ValueError("a value"), "a value"),
    ],
)  # fmt: skip
def test_the_error_line_leaves_out_pythons_errno_prefix(error, text):
    assert error_text(error) == text


# --- an OUT that cannot be written: refused once, before the model loads ----------------------------------------
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    with Sequential.of(Input(4), Dense(2), seed=1) as model:
        model.compile(optimizer="sgd", loss="mse")
        return Path(model.save(tmp_path / "saved"))


@pytest.fixture
def immutable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that refuses writes as an immutable one does (EPERM), for every user, root too."""
    from onnxtrain import _artifacts_folder

    folder = tmp_path / "immutable"
    folder.mkdir()

    def refuse(place: Path) -> None:
        if Path(place) == folder:
            raise OSError(errno.EPERM, os.strerror(errno.EPERM), str(place))
        _probe_write(place)

    monkeypatch.setattr(_artifacts_folder, "_probe_write", refuse)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "out", "argument", "untouched"),
    [("export", "m.onnx", "OUT.onnx", "exported"), ("bundle", "b", "OUT_DIR", "written")],
)
def test_an_unwritable_out_is_refused_in_one_line_said_once(
    saved, immutable, capsys, command, out, argument, untouched
):
    assert main([command, str(saved), str(immutable / out)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"onnxtrain {command}: error: {argument} got '{immutable / out}', which cannot be created: '{immutable}' is "
        "not writable (operation not permitted: an immutable folder, see lsattr, or a security policy); pass a "
        f"folder you can write to. Nothing was {untouched}.\n"
    )
    assert err.lower().count("operation not permitted") == 1
    assert os.listdir(immutable) == []


@pytest.mark.slow
def test_export_over_a_file_in_an_unwritable_folder_names_the_folder(saved, immutable, capsys):
    (immutable / "m.onnx").write_bytes(b"old")
    assert main(["export", str(saved), str(immutable / "m.onnx"), "--overwrite"]) == 1
    assert capsys.readouterr().err == (
        f"onnxtrain export: error: OUT.onnx got '{immutable}' (the folder of '{immutable / 'm.onnx'}'), which is not "
        "writable (operation not permitted: an immutable folder, see lsattr, or a security policy); pass a folder "
        "you can write to. Nothing was exported.\n"
    )
    assert (immutable / "m.onnx").read_bytes() == b"old"


# --- a model with no trainable parameter -------------------------------------------------------------------------
FLATTEN_ONLY = [{"type": "Input", "shape": [2, 2]}, {"type": "Flatten"}]
FROZEN = [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 4, "trainable": False}]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    x = np.random.default_rng(0).normal(size=(8, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=x.reshape(8, 4))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(folder: Path, layers: list[dict[str, object]]) -> str:
    (folder / "c.json").write_text(json.dumps({"layers": layers, "loss": "mse", "data": {"train": "train.npz"}}))
    return "c.json"


@pytest.mark.parametrize(
    ("layers", "why", "fix"),
    [
        (FLATTEN_ONLY, r"none of its layers \(Flatten\) has weights", "Add one, e.g."),
        (
            FROZEN,
            r"every weight of its layers \(Dense\) is frozen \(20 parameters, trainable = false\)",
            "Set trainable = true on a layer with weights, or add one, e.g.",
        ),
    ],
    ids=["no_weights", "all_frozen"],
)
def test_a_config_whose_model_trains_nothing_is_refused_before_training(folder, capsys, layers, why, fix):
    assert main(["train", _config(folder, layers), "--output", "out", "--verbose", "0"]) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert re.fullmatch(
        r"onnxtrain train: error: c\.json describes a model with no trainable parameters: "
        + why
        + r", so training would change nothing \(its loss would stay the same every epoch\)\. It expects at least "
        r"one layer with trainable weights\. " + re.escape(fix) + r' \[\[layers\]\] type = "Dense" units = 10\n',
        printed.err,
    ), printed.err
    assert not (folder / "out").exists()


def test_artifacts_of_a_config_whose_model_trains_nothing_are_refused(folder, capsys):
    pytest.importorskip("onnxruntime.training")
    assert main(["artifacts", _config(folder, FLATTEN_ONLY), "artifacts"]) == 1
    assert capsys.readouterr().err.startswith(
        "onnxtrain artifacts: error: c.json describes a model with no trainable parameters: none of its layers "
        "(Flatten) has weights"
    )
    assert not (folder / "artifacts").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["train", "--resume", "saved", "--data", "train.npz", "--epochs", "1", "--output", "out"],
        ["artifacts", "saved", "out"],
    ],
    ids=["resume", "artifacts"],
)
def test_a_saved_model_that_trains_nothing_is_refused(folder, capsys, command):
    if command[0] == "artifacts":
        pytest.importorskip("onnxruntime.training")
    from onnxtrain.layers import Flatten

    with Sequential.of(Input(2, 2), Flatten(), seed=1) as model:
        model.compile(optimizer="sgd", loss="mse")
        model.save(folder / "saved")
    assert main(command) == 1
    assert capsys.readouterr().err == (
        f"onnxtrain {command[0]}: error: 'saved' holds a model with no trainable parameters: none of its layers "
        "(Flatten) has weights, so there is nothing to train. It expects a model with at least one layer with "
        "trainable weights.\n"
    )
    assert not (folder / "out").exists()
