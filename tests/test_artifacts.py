"""generate_artifacts: the folder argument and a model with nothing to train are checked before anything is
written."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from onnxtrain import Sequential, generate_artifacts, losses
from onnxtrain._ort_training import write_artifacts
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.layers import Dense, Flatten, Input, Softmax
from onnxtrain.losses import Losses
from onnxtrain.optimizers import Adam


@pytest.mark.parametrize(
    "directory, error, message",
    [
        ("", InvalidArgumentError, r"Received: directory=''; pass \"\.\" for the current folder"),
        (3, InvalidTypeError, r"Received: directory=3 \(int\)"),
        (None, InvalidTypeError, r"Received: directory=None \(NoneType\)"),
        (b"artifacts", InvalidTypeError, r"Received: directory=b'artifacts' \(bytes\)"),
    ],
    ids=["empty", "int", "none", "bytes"],
)
def test_generate_artifacts_refuses_what_is_not_a_folder_path_and_writes_nothing(
    tmp_path, monkeypatch, directory, error, message
):
    monkeypatch.chdir(tmp_path)  # "" would otherwise write into the working directory
    model = Sequential.of(Input(3), Dense(2, activation="linear"), seed=1)
    expected = r'generate_artifacts\(directory=\.\.\.\) expects a folder path \(e\.g\. "artifacts"\)\. '
    with pytest.raises(error, match=expected + message):
        generate_artifacts(model, Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), directory)
    assert os.listdir(tmp_path) == []


def test_the_directory_is_checked_before_the_loss_and_optimizer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"expects a folder path.*Received: directory=''"):
        generate_artifacts(Sequential.of(Input(3), Dense(2), seed=1), directory="")
    assert os.listdir(tmp_path) == []


@pytest.mark.training
def test_dot_writes_the_artifacts_into_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Sequential.of(Input(3), Dense(2, activation="linear"), seed=1)
    artifacts = generate_artifacts(model, Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), ".")
    assert artifacts.directory.resolve() == tmp_path.resolve()
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint",
        "eval_model.onnx",
        "optimizer_model.onnx",
        "training_model.onnx",
    ]


@pytest.mark.training
def test_a_failed_write_leaves_no_empty_folders_behind(tmp_path, monkeypatch):
    import onnx

    def disk_full(model, path, *args, **kwargs):
        assert Path(path).parent.is_dir()  # failing after the folders were made
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(onnx, "save", disk_full)
    (tmp_path / "kept").mkdir()
    model = Sequential.of(Input(3), Dense(2, activation="linear"), seed=1)
    for directory in (tmp_path / "new" / "artifacts", tmp_path / "kept" / "artifacts", tmp_path / "kept"):
        with pytest.raises(OSError, match="No space left"):
            generate_artifacts(model, Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), directory)
        assert os.listdir(tmp_path) == ["kept"] and os.listdir(tmp_path / "kept") == []


@pytest.mark.training
def test_an_opset_onnx_runtime_refuses_is_explained_and_writes_nothing(tmp_path):
    # ONNX Runtime 1.19 raises a bare RuntimeError for opset 22 ("under development"); newer ones may accept it.
    model = Sequential.of(Input(3), Dense(2, activation="linear"), seed=1)
    try:
        generate_artifacts(model, Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), tmp_path / "a", 22, 10)
    except InvalidArgumentError as e:
        assert re.match(r"ONNX Runtime could not build training artifacts with opset 22 and IR version 10: .+", str(e))
        assert "Try an older --opset or opset=..." in str(e) and isinstance(e.__cause__, RuntimeError)
        assert os.listdir(tmp_path) == []
    else:
        pytest.skip("the installed ONNX Runtime builds opset 22 artifacts")


def _frozen() -> Sequential:
    return Sequential.of(Input(3), Dense(2, activation="linear", trainable=False), seed=1)


def _weightless() -> Sequential:
    return Sequential.of(Input(2, 3), Flatten(), Softmax(), seed=1)


@pytest.mark.parametrize(
    ("model", "received"),
    [
        (_frozen, r"a model whose parameters are all frozen\."),
        (_weightless, r"a model that has none \(no layer has weights: 'flatten_\d+', 'softmax_\d+'\)\."),
    ],
    ids=["frozen", "weightless"],
)
def test_a_model_with_nothing_to_train_is_refused_before_onnx_runtime_and_writes_nothing(tmp_path, model, received):
    """ONNX Runtime's onnxblock fails on it with an IndexError; compile(engine="ort-training") refuses it first,
    in the same words, and so does generate_artifacts."""
    expected = (
        r"^generate_artifacts needs at least one trainable parameter: ONNX Runtime's training artifacts have "
        rf"nothing to build without one\. Received: {received} Set trainable=True on a layer with weights, or add one"
    )
    with model() as refused, pytest.raises(UnsupportedError, match=expected):
        generate_artifacts(refused, Losses.MSE, Adam(), tmp_path / "artifacts")
    assert os.listdir(tmp_path) == []


def test_write_artifacts_refuses_a_model_with_nothing_to_train_itself(tmp_path):
    """The check sits in the backend too, so no caller reaches onnxblock's IndexError."""
    with _frozen() as model, pytest.raises(UnsupportedError, match=r"^write_artifacts needs at least one trainable"):
        write_artifacts(model.layers, losses.get("mse"), Adam(), tmp_path / "artifacts")
    assert os.listdir(tmp_path) == []
