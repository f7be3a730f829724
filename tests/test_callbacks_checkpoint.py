"""ModelCheckpoint with Keras' arguments (`filepath`, `save_weights_only`, `verbose`, `initial_value_threshold`),
its refusal of Keras' file formats, and its target checked when fit starts rather than after the first epoch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import load_model
from onnxtrain.callbacks import Callback, ModelCheckpoint
from onnxtrain.errors import InvalidArgumentError, ModelExistsError
from tests.test_callbacks import RecordWeights, ScriptFigure, tiny_data, tiny_model


class Count(Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_filepath_is_kerass_name_of_directory(tmp_path):
    x, y = tiny_data()
    checkpoint = ModelCheckpoint(filepath=tmp_path / "best", monitor="loss", save_best_only=True)
    assert checkpoint.filepath == checkpoint.directory == str(tmp_path / "best")
    with tiny_model() as model:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
    assert checkpoint.last_saved == tmp_path / "best"
    load_model(tmp_path / "best").close()


def test_save_weights_only_writes_save_weights_files_that_load_weights_reads(tmp_path):
    x, y = tiny_data()
    record = RecordWeights()
    checkpoint = ModelCheckpoint(filepath=str(tmp_path / "w-{epoch}.weights.npz"), save_weights_only=True)
    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[record, checkpoint])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1.weights.npz", "w-2.weights.npz"]
        assert checkpoint.last_saved == tmp_path / "w-2.weights.npz"
        model.load_weights(tmp_path / "w-1.weights.npz")
        for name, value in record.weights[1].items():
            np.testing.assert_array_equal(model.get_weights()[name], value)


def test_verbose_prints_keras_lines_and_initial_value_threshold_is_the_first_best(tmp_path, capsys):
    x, y = tiny_data()
    checkpoint = ModelCheckpoint(
        tmp_path / "best", monitor="scripted", mode="min", save_best_only=True, verbose=1, initial_value_threshold=2.5
    )
    with tiny_model() as model:
        model.fit(x, y, epochs=3, verbose=0, callbacks=[ScriptFigure("scripted", [3.0, 2.0, 2.2]), checkpoint])
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1: scripted did not improve from 2.50000",
        f"Epoch 2: scripted improved from 2.50000 to 2.00000, saving model to {tmp_path / 'best'}",
        "Epoch 3: scripted did not improve from 2.00000",
    ]


# Keras' file formats onnxtrain does not write, refused when the checkpoint is made
SUFFIXES = [
    (
        {"filepath": "best.keras"},
        r"^ModelCheckpoint\(filepath='best\.keras'\) names Keras' \.keras \(or \.h5\) model file, but onnxtrain "
        r"checkpoints a model directory \(model\.onnx, config\.json, checkpoint; load_model reads it\)\. Name a "
        r"directory, e\.g\. 'best', or pass save_weights_only=True with a path ending in '\.weights\.npz'",
    ),
    ({"filepath": "model.h5"}, r"names Keras' \.keras \(or \.h5\) model file.*e\.g\. 'model'"),
    ({"filepath": "w.weights.npz"}, r"names a weights file \(\.npz\).*pass save_weights_only=True"),
    (
        {"filepath": "w.weights.h5", "save_weights_only": True},
        r"^ModelCheckpoint\(filepath=\.\.\., save_weights_only=True\) writes model\.save_weights files, numpy's "
        r"\.weights\.npz \(Keras' HDF5 \(\.weights\.h5\) needs h5py, which onnxtrain does not use; one array per "
        r"parameter, read back by load_weights\)\. Received: 'w\.weights\.h5'\. Use e\.g\. 'w\.weights\.npz'\.$",
    ),
    ({"filepath": "ckpt", "save_weights_only": True}, r"Received: 'ckpt'\. Use e\.g\. 'ckpt\.weights\.npz'"),
    (
        {"filepath": "w.weights.npz", "save_weights_only": True, "save_optimizer_state": True},
        r"save_weights_only=True, save_optimizer_state=True\) asks for two things",
    ),
    ({"directory": "a", "filepath": "b"}, r"takes directory=\.\.\. or Keras' filepath=\.\.\., not both"),
    ({"filepath": "ckpt", "save_freq": 100}, r"save_freq=\.\.\.\) saves at each epoch's end only.*save_freq=100"),
    ({"filepath": "ckpt", "initial_value_threshold": "x"}, r"initial_value_threshold=\.\.\.\) expects a finite"),
    ({}, r"ModelCheckpoint\(directory=\.\.\.\) \(Keras: filepath=\.\.\.\) expects a path\. Received: None"),
]


@pytest.mark.parametrize(("kwargs", "match"), SUFFIXES, ids=[str(row[0])[:50] for row in SUFFIXES])
def test_keras_formats_and_contradictions_are_refused_when_the_checkpoint_is_made(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        ModelCheckpoint(**kwargs)


def busy_folder(tmp_path: Path) -> str:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    return str(tmp_path / "busy")


def a_file(tmp_path: Path) -> str:
    (tmp_path / "afile").write_text("x")
    return str(tmp_path / "afile")


# (target made in tmp_path, save_weights_only, error, message): each refused before the first step
TARGETS = [
    (
        busy_folder,
        False,
        ModelExistsError,
        r"^fit: ModelCheckpoint\(filepath='.*busy'\) saves over '.*busy' at each epoch's end\. .*'notes\.txt'.*"
        r"Nothing was trained\.$",
    ),
    (
        a_file,
        False,
        InvalidArgumentError,
        r"^fit: ModelCheckpoint\(filepath='.*afile'\) saves a model directory there, but '.*afile' is an existing "
        r"file\. Remove it or name another directory\. Nothing was trained\.$",
    ),
    (
        lambda tmp_path: a_file(tmp_path) + "/ckpt-{epoch}",
        False,
        InvalidArgumentError,
        r"cannot create its target: '.*afile' is a file, not a folder\.",
    ),
    (
        lambda tmp_path: str(tmp_path / "made.weights.npz"),
        True,
        InvalidArgumentError,
        r"writes a weights file there, but '.*made\.weights\.npz' is a folder\. Name a file in it",
    ),
    (
        lambda tmp_path: a_file(tmp_path) + "/w.weights.npz",
        True,
        InvalidArgumentError,
        r"cannot create its target: '.*afile' is a file, not a folder",
    ),
]


@pytest.mark.parametrize(
    ("target", "weights_only", "error", "match"), TARGETS, ids=[str(i) for i in range(len(TARGETS))]
)
def test_a_target_the_checkpoint_cannot_write_is_refused_when_fit_starts(tmp_path, target, weights_only, error, match):
    # /tmp/ut_robust/r_callbacks_late.py: a folder of other files was refused only after the first epoch.
    x, y = tiny_data()
    (tmp_path / "made.weights.npz").mkdir()
    checkpoint = ModelCheckpoint(filepath=target(tmp_path), save_weights_only=weights_only)
    count = Count()
    with tiny_model() as model, pytest.raises(error, match=match):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[count, checkpoint])
    assert count.batches == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="this user ignores directory permissions (root)")
def test_a_folder_without_write_permission_is_refused_when_fit_starts(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    x, y = tiny_data()
    try:
        with tiny_model() as model, pytest.raises(InvalidArgumentError, match=r"cannot write in '.*locked'"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(locked / "ckpt")])
    finally:
        locked.chmod(0o700)


def test_a_folder_of_an_earlier_checkpoint_is_replaced(tmp_path):
    x, y = tiny_data()
    with tiny_model() as model:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "last")])
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "last")])  # a saved model: fine
    with load_model(tmp_path / "last") as loaded:
        assert loaded._trainer.epochs_trained == 2  # type: ignore[union-attr]


# --- the save lock: no lock file left per epoch --------------------------------------------------------------------
@pytest.mark.slow
def test_checkpoints_per_epoch_or_fixed_leave_no_lock_file(tmp_path):
    """A save's lock file (`.onnxtrain-lock-<name>` beside the directory) exists only while the save holds it; a
    path with fields saves a new directory each epoch, and used to leave a lock file per epoch."""
    x, y = tiny_data()
    per_epoch = ModelCheckpoint(tmp_path / "ckpt" / "epoch-{epoch}")
    fixed = ModelCheckpoint(tmp_path / "last")
    with tiny_model() as model:
        model.fit(x, y, epochs=3, verbose=0, callbacks=[per_epoch, fixed])
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["epoch-1", "epoch-2", "epoch-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "last"]
    load_model(tmp_path / "ckpt" / "epoch-2").close()
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["epoch-1", "epoch-2", "epoch-3"]  # nor does a load
