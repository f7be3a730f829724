"""Tests of save / load: KotlinDL's writing modes on a real model, exact resume, damaged saves, kill -9."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import onnxtrain
from onnxtrain import Sequential, WritingMode, _ort_training, load_model, metrics
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    ModelFileError,
    ModelStateError,
    RuntimeSetupError,
)
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import SGD, Adam

REPO = Path(__file__).resolve().parents[1]
SAVED = ["checkpoint", "config.json", "model.onnx"]


def _training_build() -> bool:
    try:
        _ort_training._training_api()
    except RuntimeSetupError:
        return False
    return True


# An uncompiled model's save has no checkpoint on an inference-only onnxruntime (Python 3.13+: compile() makes the
# optimizer state afresh); the weights are in model.onnx either way.
UNCOMPILED_SAVED = SAVED if _training_build() else ["config.json", "model.onnx"]
ALL_MODES = list(WritingMode)


def _model(seed: int = 1, compiled: bool = True) -> Sequential:
    model = Sequential.of(Input(4, 4, 1), Flatten(), Dense(8), Dense(3, activation="linear"), seed=seed)
    if compiled:
        model.compile(optimizer=Adam(learning_rate=0.01), loss="softmax_cross_entropy_with_logits", metric="accuracy")
    return model


def _data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, size=n)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if not p.name.startswith(".onnxtrain-")}


def _assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float = 0.0) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model saved with its optimizer state (read-only for the tests that use it)."""
    x, y = _data()
    with _model() as model:
        model.class_names = ("a", "b", "c")
        model.fit((x, y), epochs=2, batch_size=16, verbose=0)
        return model.save(tmp_path_factory.mktemp("trained") / "model", save_optimizer_state=True)


# --- what a save holds


def test_save_writes_the_inference_model_the_config_and_the_checkpoint(trained):
    assert sorted(os.listdir(trained)) == SAVED
    config = json.loads((trained / "config.json").read_text())
    assert config["format"] == "onnxtrain.sequential/1"
    assert config["onnxtrain_version"] == onnxtrain.__version__
    assert [layer["class_name"] for layer in config["layers"]] == ["Input", "Flatten", "Dense", "Dense"]
    assert (config["input_shape"], config["output_shape"]) == ([4, 4, 1], [3])
    assert config["class_names"] == ["a", "b", "c"]
    assert config["compile"]["optimizer"]["name"] == "adam"
    assert config["compile"]["loss"] == {"name": "softmax_cross_entropy_with_logits"}
    assert (config["epochs_trained"], config["optimizer_state_saved"]) == (2, True)


def test_load_rebuilds_weights_class_names_and_predictions(trained):
    x, _ = _data()
    with load_model(trained) as model, load_model(trained, compile=False) as plain:
        assert model.class_names == ("a", "b", "c") and model.is_compiled and not plain.is_compiled
        _assert_same_weights(model.get_weights(), plain.get_weights())
        assert np.array_equal(model.predict(x), onnxtrain.InferenceModel.load(trained).predict(x))


def test_an_uncompiled_model_round_trips_without_optimizer_state(tmp_path):
    with _model(seed=5, compiled=False) as model:
        model.input_scale = 0.5
        model.save(tmp_path / "m")
        with load_model(tmp_path / "m") as loaded:
            assert not loaded.is_compiled and loaded.input_scale == 0.5
            _assert_same_weights(loaded.get_weights(), model.get_weights())


def test_optimizer_state_needs_a_compiled_model(tmp_path):
    with pytest.raises(ModelStateError, match=r"needs a compiled model.*compile\(\) first"):
        _model(compiled=False).save(tmp_path / "m", save_optimizer_state=True)
    with pytest.raises(InvalidTypeError, match="save_optimizer_state expects a bool"):
        _model(compiled=False).save(tmp_path / "m", save_optimizer_state="yes")
    assert not (tmp_path / "m").exists()


# --- writing modes (the file layer itself is tested in test_saving.py)


def _prepare(tmp_path: Path, state: str) -> Path:
    directory = tmp_path / "parent" / "model"
    if state in ("empty", "existing"):
        directory.mkdir(parents=True)
    if state == "existing":  # a model save and a file of the user's: OVERRIDE must not delete it
        (directory / "model.onnx").write_bytes(b"old model")
        (directory / "notes.txt").write_bytes(b"keep me")
    if state == "saved":
        _model(seed=9, compiled=False).save(directory)
    return directory


@pytest.mark.parametrize(
    "state, mode, expected",
    [
        ("missing", WritingMode.FAIL_IF_EXISTS, UNCOMPILED_SAVED),  # missing parents are created
        ("missing", WritingMode.OVERRIDE, UNCOMPILED_SAVED),
        ("missing", WritingMode.APPEND, UNCOMPILED_SAVED),
        ("empty", WritingMode.FAIL_IF_EXISTS, ModelExistsError),
        ("empty", WritingMode.OVERRIDE, UNCOMPILED_SAVED),
        ("empty", WritingMode.APPEND, UNCOMPILED_SAVED),
        ("existing", WritingMode.FAIL_IF_EXISTS, ModelExistsError),
        ("existing", WritingMode.OVERRIDE, ModelExistsError),  # notes.txt is not part of a saved model
        ("existing", WritingMode.APPEND, [*UNCOMPILED_SAVED, "notes.txt"]),
        ("saved", WritingMode.FAIL_IF_EXISTS, ModelExistsError),
        ("saved", WritingMode.OVERRIDE, UNCOMPILED_SAVED),
        ("saved", WritingMode.APPEND, UNCOMPILED_SAVED),
    ],
)
def test_save_follows_kotlindl_writing_modes(tmp_path, state, mode, expected):
    directory = _prepare(tmp_path, state)
    before = _files(directory) if directory.exists() else None
    with _model(compiled=False) as model:
        if isinstance(expected, list):
            assert model.save(directory, writing_mode=mode) == directory
            assert sorted(_files(directory)) == sorted(expected)
            assert _files(directory)["model.onnx"] not in (b"old model", (before or {}).get("model.onnx"))
            if "notes.txt" in expected:
                assert _files(directory)["notes.txt"] == b"keep me"
            load_model(directory).close()
        else:
            with pytest.raises(expected, match=rf"'{re.escape(str(directory))}'.*WritingMode\.OVERRIDE"):
                model.save(directory, writing_mode=mode)
            assert _files(directory) == before


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`, scratch and lock files included: its bytes, or None for a directory."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def _project(tmp_path: Path) -> Path:
    """A user's project folder: code and data that no save may delete."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.csv").write_bytes(b"x,y\n1,0\n")
    (project / "train.py").write_bytes(b"model.save('.')\n")
    return project


def test_override_refuses_the_working_directory_of_a_project_and_changes_nothing(tmp_path, monkeypatch):
    project = _project(tmp_path)
    before = _tree(tmp_path)
    monkeypatch.chdir(project)
    with _model(compiled=False) as model:
        with pytest.raises(ModelExistsError) as caught:
            model.save(".", writing_mode=WritingMode.OVERRIDE)
        with pytest.raises(ModelExistsError, match=r"holds 'project/',"):
            model.save("..", writing_mode="override")  # a parent of the working directory
    message = str(caught.value)
    assert f"Could not save to '{project}' with writing_mode=WritingMode.OVERRIDE" in message
    assert "it holds 'data/', 'train.py', which are not files of a saved model" in message
    assert "['checkpoint', 'config.json', 'model.onnx']" in message
    assert "Choose another directory" in message and "remove those entries first" in message
    assert _tree(tmp_path) == before  # no deletion, no model file, no scratch or lock file


def test_override_refuses_a_single_foreign_file_beside_a_saved_model(tmp_path):
    directory = _model(seed=9, compiled=False).save(tmp_path / "model")
    (directory / "README.md").write_bytes(b"notes")
    before = _tree(tmp_path)
    with pytest.raises(ModelExistsError, match=r"holds 'README\.md', which are not files of a saved model"):
        _model(compiled=False).save(directory, writing_mode="override")
    assert _tree(tmp_path) == before


def test_override_refuses_a_file_added_beside_the_model_while_the_save_was_staged(tmp_path, monkeypatch):
    from onnxtrain.saving import _writing

    directory = _model(seed=9, compiled=False).save(tmp_path / "model")
    before = _files(directory)
    stage = _writing._stage_directory

    def stage_then_add(target, files):  # another writer adds a file after the early check passed
        staged = stage(target, files)
        (directory / "README.md").write_bytes(b"notes")
        return staged

    monkeypatch.setattr(_writing, "_stage_directory", stage_then_add)
    with pytest.raises(ModelExistsError, match=r"holds 'README\.md', which are not files of a saved model"):
        _model(compiled=False).save(directory, writing_mode="override")
    assert _files(directory) == {**before, "README.md": b"notes"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".onnxtrain-") and "-lock-" not in p.name] == []
    load_model(directory, compile=False).close()


def test_append_into_a_project_keeps_its_files_and_folders(tmp_path):
    project = _project(tmp_path)
    with _model(compiled=False) as model:
        model.save(project, writing_mode=WritingMode.APPEND)
        model.save(project, writing_mode=WritingMode.APPEND)  # replaces its own files, nothing else
    assert sorted(os.listdir(project)) == sorted([*UNCOMPILED_SAVED, "data", "train.py"])
    assert (project / "train.py").read_bytes() == b"model.save('.')\n"
    assert (project / "data" / "train.csv").read_bytes() == b"x,y\n1,0\n"
    load_model(project, compile=False).close()


@pytest.mark.parametrize(
    "save",
    [
        lambda m, d: m.save(d, writing_mode="fail_if_exists"),
        lambda m, d: m.save(d, writing_mode="sideways"),
        lambda m, d: m.save(d, save_optimizer_state="yes"),
    ],
    ids=["fail-if-exists", "bad-mode", "bad-flag"],
)
def test_a_save_refused_before_writing_leaves_no_lock_file(tmp_path, save):
    directory = tmp_path / "model"
    directory.mkdir()
    with pytest.raises((ModelExistsError, InvalidArgumentError, InvalidTypeError)):
        save(_model(compiled=False), directory)
    assert sorted(os.listdir(tmp_path)) == ["model"] and os.listdir(directory) == []


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_file_in_the_way_is_refused_and_kept(tmp_path, mode):
    blocker = tmp_path / "model"
    blocker.write_bytes(b"not a model")
    with pytest.raises(InvalidArgumentError, match=r"is an existing file.*Remove the file"):
        _model(compiled=False).save(blocker, writing_mode=mode)
    assert blocker.read_bytes() == b"not a model"


def test_save_onto_an_onnx_file_names_save_and_points_to_export(tmp_path):
    with _model(compiled=False) as model:
        exported = model.export(tmp_path / "model.onnx")
        before = exported.read_bytes()
        with pytest.raises(InvalidArgumentError) as raised:
            model.save(str(exported))
    message = str(raised.value)
    assert message.startswith(f"save(directory=...) expects a directory path, but '{exported}' is an existing file")
    assert "export(path)" in message and "save_files" not in message
    assert exported.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["model.onnx"]


@pytest.mark.parametrize("name", ["my_model.keras", "model.h5", "Model.HDF5"])
def test_save_to_a_keras_file_name_is_refused_before_writing(tmp_path, name):
    # keras.io: model.save("my_model.keras") wrote a directory of that name; ModelCheckpoint already refused it
    stem = name.rsplit(".", 1)[0]
    with pytest.raises(InvalidArgumentError) as raised:
        _model(compiled=False).save(tmp_path / name)
    message = str(raised.value)
    assert f"Received: '{tmp_path / name}', a name of a Keras .keras/.h5 file" in message
    assert repr(str(tmp_path / stem)) in message and f"export('{tmp_path / stem}.onnx')" in message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ALL_MODES)
def test_permission_denied_keeps_the_previous_model(tmp_path, monkeypatch, mode):
    directory = tmp_path / "model"
    if mode is not WritingMode.FAIL_IF_EXISTS:
        _model(seed=9, compiled=False).save(directory)
    before = _files(directory) if directory.exists() else None
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):  # root ignores chmod: refuse creation under tmp_path
        if flags & os.O_CREAT and str(tmp_path) in str(path) and "-lock-" not in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    model = _model(compiled=False)
    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(PermissionError, match=r"Could not save .*Permission denied.*intact"):
        model.save(directory, writing_mode=mode)
    monkeypatch.undo()
    assert (_files(directory) if directory.exists() else None) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to run a save as nobody")
@pytest.mark.slow
def test_a_read_only_folder_is_reported_as_permission_denied(tmp_path):
    # Real permissions: a save run as user nobody into a root-owned folder it may read but not write.
    folder = Path(tempfile.mkdtemp(prefix="onnxtrain-readonly-"))
    try:
        folder.chmod(0o755)
        script = (  # imports and compile first: the interpreter's own files may be unreadable to nobody
            "import os\nfrom onnxtrain import Sequential\nfrom onnxtrain.layers import Input, Dense\n"
            "model = Sequential.of(Input(2), Dense(2))\nmodel.compile()\n"
            f"os.setgid(65534)\nos.setuid(65534)\nmodel.save({str(folder / 'model')!r})\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    finally:
        os.rmdir(folder)
    assert done.returncode == 1, done.stderr
    assert re.search(r"PermissionError: .*Could not save .*Permission denied", done.stderr), done.stderr[-2000:]


# --- resuming training


def test_fit_save_load_fit_equals_one_longer_fit(tmp_path):
    """fit 2 epochs -> save(optimizer state) -> load -> fit 1 == fit 3 (same seed): Adam's moments and step,
    the learning rate and the epoch count (which seeds the shuffle) all come back."""
    x, y = _data()
    with _model() as straight:
        straight.fit((x, y), epochs=3, batch_size=16, verbose=0)
        expected = straight.get_weights()
    with _model() as first:
        first.fit((x, y), epochs=2, batch_size=16, verbose=0)
        first.save(tmp_path / "resume", save_optimizer_state=True)
        first.save(tmp_path / "weights_only")
    with load_model(tmp_path / "resume") as resumed:
        history = resumed.fit((x, y), epochs=1, batch_size=16, verbose=0)
        assert history.epochs == [3]
        _assert_same_weights(resumed.get_weights(), expected, atol=1e-6)
    with load_model(tmp_path / "weights_only") as restarted:  # control: a fresh optimizer does not match
        restarted.fit((x, y), epochs=1, batch_size=16, verbose=0)
        gap = max(np.abs(restarted.get_weights()[n] - expected[n]).max() for n in expected)
        assert gap > 1e-3


def test_a_changed_learning_rate_is_restored_with_the_optimizer_state(tmp_path):
    with _model() as model:
        model._trainer.engine.learning_rate = 0.003  # what a scheduler callback does
        model.save(tmp_path / "m", save_optimizer_state=True)
    with load_model(tmp_path / "m") as loaded:
        assert loaded._trainer.engine.learning_rate == pytest.approx(0.003)


def test_passing_an_optimizer_to_load_model_starts_a_fresh_one(trained):
    with load_model(trained, optimizer=SGD(learning_rate=0.1)) as model:
        assert model._trainer.compiled.optimizer == SGD(learning_rate=0.1)
        assert model._trainer.epochs_trained == 2
        model.fit(_data(), epochs=1, batch_size=16, verbose=0)


# --- damaged or foreign saves


def _damage(directory: Path, how: str) -> None:
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    if how == "no config":
        config_path.unlink()
    elif how == "no model":
        (directory / "model.onnx").unlink()
    elif how == "config not json":
        config_path.write_text("{ not json")
    elif how == "foreign config":
        config_path.write_text(json.dumps({"format": "keras"}))
    elif how == "unknown layer":
        config["layers"][2]["class_name"] = "Conv9D"
        config_path.write_text(json.dumps(config))
    elif how == "bad compile":
        config["compile"]["optimizer"] = {"name": "no_such_optimizer"}
        config_path.write_text(json.dumps(config))
    elif how == "model not onnx":
        (directory / "model.onnx").write_bytes(b"\x00garbage" * 10)
    elif how == "shape mismatch":
        config["layers"][2]["config"]["units"] = 9
        config_path.write_text(json.dumps(config))
    elif how == "no checkpoint":
        (directory / "checkpoint").unlink()
    elif how == "checkpoint damaged":
        (directory / "checkpoint").write_bytes(b"\x01" * 64)


@pytest.mark.parametrize(
    "how, match",
    [
        ("no config", r"not a saved onnxtrain model: config\.json is missing"),
        ("no model", r"not a saved onnxtrain model: model\.onnx is missing"),
        ("config not json", r"config\.json is not readable JSON.*save the model again"),
        ("foreign config", r"not an onnxtrain model config: expected format 'onnxtrain\.sequential/1'"),
        ("unknown layer", r"cannot be rebuilt.*Could not interpret layer class 'Conv9D'"),
        ("bad compile", r"compile settings that cannot be used.*no_such_optimizer"),
        ("model not onnx", r"model\.onnx does not match the SHA-256 .* and it is not an ONNX model"),
        (
            "shape mismatch",
            r"makes weight 'kernel' of shape \(16, 9\), which model\.onnx does not declare \(it declares "
            r"'dense_1\.kernel' of shape \(16, 8\)\)",
        ),
        ("no checkpoint", r"checkpoint is missing although config\.json says the optimizer state was saved"),
        ("checkpoint damaged", r"optimizer state of .*checkpoint failed.*damaged"),
    ],
)
def test_a_damaged_save_raises_model_file_error_naming_the_problem(tmp_path, trained, how, match):
    directory = tmp_path / "model"
    directory.mkdir()
    for name, data in _files(trained).items():
        (directory / name).write_bytes(data)
    _damage(directory, how)
    with pytest.raises(ModelFileError, match=match):
        load_model(directory)


@pytest.mark.parametrize("make, match", [(None, "no such directory"), ("file", "is a file, not a model directory")])
def test_loading_a_missing_directory_or_a_file_says_so(tmp_path, make, match):
    path = tmp_path / "model"
    if make == "file":
        path.write_bytes(b"x")
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_loading_a_mistyped_path_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileError, match=rf"No saved model at '{re.escape(str(tmp_path / 'typo'))}'"):
        load_model("typo")
    with pytest.raises(ModelFileError, match=r"No model at 'typo'"):
        onnxtrain.InferenceModel.load("typo")
    assert os.listdir(tmp_path) == []  # in particular no .onnxtrain-lock-typo


# --- a damaged model.onnx: the checksum names it, and the bytes say what is wrong

DAMAGED_MODEL_FILES = [
    ("empty", lambda data: b"", r"is empty \(0 bytes\)"),
    (
        "random bytes",
        lambda data: np.random.default_rng(0).bytes(len(data)),
        r"is not an ONNX model \(it does not parse as an ONNX ModelProto\)",
    ),
    ("truncated", lambda data: data[: len(data) // 2], r"is truncated \(\d+ bytes; it ends inside its 'graph' field"),
    ("last byte cut", lambda data: data[:-1], r"is truncated \(\d+ bytes; it ends inside its '\w+' field"),
]


@pytest.mark.parametrize(
    ("damage", "problem"), [row[1:] for row in DAMAGED_MODEL_FILES], ids=[row[0] for row in DAMAGED_MODEL_FILES]
)
@pytest.mark.parametrize("loader", ["load_model", "InferenceModel.load"])
def test_a_damaged_model_onnx_fails_its_checksum_and_says_what_is_wrong(tmp_path, small, loader, damage, problem):
    directory = _edited_copy(small, tmp_path / "model", lambda config: None)
    (directory / "model.onnx").write_bytes(damage((small / "model.onnx").read_bytes()))
    load = load_model if loader == "load_model" else onnxtrain.InferenceModel.load
    message = (
        rf"{re.escape(str(directory / 'model.onnx'))} does not match the SHA-256 that config\.json recorded when "
        rf"it was saved, and it {problem}.*: the file was damaged after the save\. Save the model again"
    )
    with pytest.raises(ModelFileError, match=message):
        load(directory)


@pytest.mark.parametrize(
    ("damage", "problem"), [row[1:] for row in DAMAGED_MODEL_FILES], ids=[row[0] for row in DAMAGED_MODEL_FILES]
)
def test_a_damaged_model_onnx_of_a_save_without_checksums_says_what_is_wrong(tmp_path, small, damage, problem):
    directory = _edited_copy(small, tmp_path / "model", lambda config: config.pop("model_sha256"))
    (directory / "model.onnx").write_bytes(damage((small / "model.onnx").read_bytes()))
    with pytest.raises(ModelFileError, match=rf"model\.onnx {problem}.*\. The save is damaged; save the model again"):
        load_model(directory)
    with pytest.raises(ModelFileError, match=rf"model\.onnx {problem}") as error:
        onnxtrain.InferenceModel.load(directory)
    # Refused before ONNX Runtime sees it (the gate is the first line): any cause is protobuf's parse error.
    assert error.value.__cause__ is None or not type(error.value.__cause__).__module__.startswith("onnxruntime")


# --- damaged values in config.json


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small compiled model's save (read-only for the tests that use it)."""
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model.save(tmp_path_factory.mktemp("small") / "model")


def _edited_copy(source: Path, target: Path, edit) -> Path:
    """A copy of the save at `source` whose config.json `edit(config)` changed."""
    target.mkdir()
    for name, data in _files(source).items():
        (target / name).write_bytes(data)
    config = json.loads((target / "config.json").read_text())
    edit(config)
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("input_scale", -1, "a finite positive number"),
        ("input_scale", 0, "a finite positive number"),
        ("input_scale", "nan", "a finite positive number"),
        ("input_scale", float("nan"), "a finite positive number"),
        ("input_scale", float("inf"), "a finite positive number"),
        pytest.param("input_scale", 10**400, "a finite positive number", id="input_scale-huge-int"),
        ("input_scale", "0.5", "a finite positive number"),
        ("input_scale", True, "a finite positive number"),
        ("input_scale", None, "a finite positive number"),
        ("epochs_trained", -3, "a non-negative int"),
        ("epochs_trained", 1.5, "a non-negative int"),
        ("epochs_trained", True, "a non-negative int"),
        ("epochs_trained", "2", "a non-negative int"),
        ("class_names", "abc", "null or a list of strings"),
        ("class_names", {"a": 1}, "null or a list of strings"),
        ("class_names", ["a", 1, "c"], "null or a list of strings"),
    ],
)
@pytest.mark.parametrize("compile", [True, False])
def test_a_damaged_config_value_raises_model_file_error_naming_key_and_value(
    tmp_path, small, key, value, expected, compile
):
    directory = _edited_copy(small, tmp_path / "model", lambda config: config.__setitem__(key, value))
    message = rf"config\.json: '{key}' expects {expected}.*Received: {key}={re.escape(repr(value))}\. .*save the model"
    with pytest.raises(ModelFileError, match=message):
        load_model(directory, compile=compile)


@pytest.mark.parametrize("scale", [1e-39, 1e-300, 1e39])
def test_a_save_whose_input_scale_float32_cannot_hold_still_loads(tmp_path, small, scale):
    # Earlier versions saved such scales (they only touch integer inputs); new Datasets refuse them.
    directory = _edited_copy(small, tmp_path / "m", lambda c: c.update(input_scale=scale))
    with load_model(directory, compile=False) as model:
        assert model.input_scale == scale


def _set_activation(config: dict, activation: dict) -> None:
    config["layers"][1]["config"]["activation"] = activation


@pytest.mark.parametrize(
    "edit, entry, cause",
    [
        (
            lambda c: _set_activation(c, {"name": "leaky_relu", "alpha": "x"}),
            r"cannot be rebuilt: layers\[1\] = \{\"class_name\": \"Dense\".*\"alpha\": \"x\"",
            r"LeakyRelu\(alpha=\.\.\.\).*Received: alpha='x'",
        ),
        (
            lambda c: _set_activation(c, {"name": "no_such_activation"}),
            r"cannot be rebuilt: layers\[1\] = ",
            r"Could not interpret activation 'no_such_activation'",
        ),
        (
            lambda c: c["layers"][1]["config"].__setitem__("units", "3"),
            r"cannot be rebuilt: layers\[1\] = ",
            r"Dense\(units=\.\.\.\)",
        ),
        (
            lambda c: c["layers"].__setitem__(1, "Dense"),
            r"cannot be rebuilt: layers\[1\] = \"Dense\"",
            r"AttributeError",
        ),
        (
            lambda c: c["compile"].__setitem__("loss", {"name": "huber", "delta": "x"}),
            r"compile settings that cannot be used: compile\.loss = \{\"name\": \"huber\", \"delta\": \"x\"\}",
            r"Huber\(delta=\.\.\.\).*Received: delta='x'",
        ),
        (
            lambda c: c["compile"]["optimizer"].__setitem__("learning_rate", "x"),
            r"compile settings that cannot be used: compile\.optimizer = ",
            r"learning_rate='x'",
        ),
        (
            lambda c: c["compile"].__setitem__("metrics", "accuracy"),
            r"compile settings that cannot be used: compile\.metrics = \"accuracy\"",
            r"metrics must be a list",
        ),
    ],
    ids=["activation-alpha", "unknown-activation", "units", "layer-not-an-object", "huber-delta", "lr", "metrics"],
)
def test_a_damaged_hyper_parameter_raises_model_file_error_naming_the_entry(tmp_path, small, edit, entry, cause):
    directory = _edited_copy(small, tmp_path / "model", edit)
    with pytest.raises(ModelFileError, match=rf"{re.escape(str(directory / 'config.json'))} .*{entry}.*: {cause}") as e:
        load_model(directory)
    assert isinstance(e.value.__cause__, ValueError | TypeError | AttributeError)  # chained, not swallowed


def test_an_optimizer_passed_to_load_model_replaces_a_damaged_saved_one(tmp_path, small):
    edit = lambda c: c["compile"]["optimizer"].__setitem__("learning_rate", "x")  # noqa: E731
    directory = _edited_copy(small, tmp_path / "model", edit)
    with load_model(directory, optimizer=SGD(learning_rate=0.1)) as model:
        assert model._trainer.compiled.optimizer == SGD(learning_rate=0.1)


# --- compile options passed through load_model


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, ()),
        ({"metric": "mae"}, (metrics.NamedMetric(metrics.Metrics.MAE, "mae"),)),
        ({"metrics": ["mse", "acc"]}, (metrics.named("mse"), metrics.NamedMetric(metrics.Metrics.ACCURACY, "acc"))),
    ],
    ids=["saved", "metric", "metrics"],
)
def test_load_model_takes_metric_or_metrics(small, options, expected):
    with load_model(small, **options) as model:
        assert model._trainer.compiled.metrics == expected


def test_load_model_replaces_saved_metrics(tmp_path, small):
    directory = _edited_copy(small, tmp_path / "model", lambda c: c["compile"].__setitem__("metrics", ["accuracy"]))
    with load_model(directory) as saved, load_model(directory, metric="mse") as replaced:
        assert saved._trainer.compiled.metrics == (metrics.named("accuracy"),)
        assert replaced._trainer.compiled.metrics == (metrics.named("mse"),)


def test_a_saved_model_keeps_the_metric_names_it_was_compiled_with(tmp_path):
    # Keras 3 logs a metric under the name compile was given ("acc": "acc", "val_acc"); a save keeps those names,
    # and a save from before (which stored each metric's canonical name, "accuracy") loads as it was.
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    with Sequential([Input(3), Dense(1, activation="sigmoid")], seed=0) as model:
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc", "MeanAbsoluteError"])
        directory = model.save(tmp_path / "model")
    assert json.loads((directory / "config.json").read_text())["compile"]["metrics"] == ["acc", "MeanAbsoluteError"]
    with load_model(directory) as loaded:
        history = loaded.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
        assert list(history.history) == [  # sorted, as Keras 3's (upper case first)
            "MeanAbsoluteError",
            "acc",
            "loss",
            "val_MeanAbsoluteError",
            "val_acc",
            "val_loss",
        ]
    old = _edited_copy(directory, tmp_path / "old", lambda c: c["compile"].__setitem__("metrics", ["accuracy", "mae"]))
    with load_model(old) as loaded:
        assert list(loaded.evaluate(x, y, return_dict=True)) == ["accuracy", "loss", "mae"]


def test_load_model_refuses_metric_and_metrics_together(small):
    with pytest.raises(InvalidArgumentError, match=r"compile takes metric=\.\.\. or metrics=\[\.\.\.\], not both"):
        load_model(small, metric="mae", metrics=["mse"])


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"optimiser": "sgd"},
            InvalidTypeError,
            r"load_model\(\) got unexpected keyword argument 'optimiser'\. It takes",
        ),
        ({"metric": "mae", "lr": 1}, InvalidTypeError, r"unexpected keyword argument 'lr'\..*'optimizer', 'loss'"),
        ({"engine": "tensorrt"}, InvalidArgumentError, r"load_model\(engine=\.\.\.\) expects one of \['auto', "),
    ],
    ids=["typo", "one_of_two", "engine"],
)
def test_load_model_refuses_what_compile_does_not_take_before_reading(tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        load_model(tmp_path / "no such model", **options)  # refused before the missing folder is even noticed


# --- round trips


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    units=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "linear", "elu", "swish"]),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    class_names=st.none() | st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4),
)
@pytest.mark.slow
def test_save_load_round_trips_config_and_weights(tmp_path, units, activation, use_bias, seed, class_names):
    layers = [Input(3, 2), Flatten(), *(Dense(u, activation=activation, use_bias=use_bias) for u in units)]
    with Sequential(layers, seed=seed) as model:
        model.class_names = tuple(class_names) if class_names else None
        directory = model.save(tmp_path / f"m{seed}-{len(units)}", writing_mode="override")
        with load_model(directory) as loaded:
            assert loaded.get_config() == model.get_config()
            assert loaded.class_names == model.class_names
            _assert_same_weights(loaded.get_weights(), model.get_weights())


def _relu_inputs(model: onnx.ModelProto) -> set[str]:
    return {node.input[0] for node in model.graph.node if node.op_type == "Relu"}


@pytest.mark.parametrize("given", [None, "relu"])
def test_save_load_keeps_whether_the_last_activation_was_given(tmp_path, given):
    # Dense(3) leaves its activation to the loss (linear logits under softmax cross-entropy); Dense(3, "relu")
    # keeps ReLU. Either way config.json, the loaded model, its re-export and the saved model.onnx all agree.
    x, y = _data()
    last = Dense(3) if given is None else Dense(3, activation=given)
    relus = {"dense_1.gemm"} if given is None else {"dense_1.gemm", "dense_2.gemm"}
    with Sequential.of(Input(4, 4, 1), Flatten(), Dense(8), last, seed=3) as model, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # explicit ReLU logits warn; test_model checks that
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit((x, y), epochs=1, batch_size=16, verbose=0)
        directory = model.save(tmp_path / "m")
        expected = model.predict_softly(x)
    config = json.loads((directory / "config.json").read_text())
    assert ("activation" in config["layers"][-1]["config"]) is (given is not None)
    assert _relu_inputs(onnx.load(directory / "model.onnx")) == relus
    with load_model(directory) as loaded, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert loaded.layers[-1].activation_given is (given is not None)
        assert _relu_inputs(loaded.inference_model()) == relus
        np.testing.assert_allclose(loaded.predict_softly(x), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(onnxtrain.InferenceModel.load(directory).predict_softly(x), expected, rtol=1e-6)


# --- kill -9 during save


def _kill_loop(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "kill_during_save.py"), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "returncode": done.returncode}


@pytest.mark.parametrize("swap, kills", [("exchange", 30), ("fallback", 15)])
@pytest.mark.slow
def test_sigkill_during_save_always_leaves_a_loadable_old_or_new_model(swap, kills):
    """A child trains and saves a real model in a loop; it is SIGKILLed at random moments. After every kill
    the directory holds exactly the last complete version or the one being written, load_model reads it, and
    the next child loads it compiled with its optimizer state. tools/kill_during_save.py runs longer loops."""
    report = _kill_loop("--kills", str(kills), *(["--no-exchange"] if swap == "fallback" else []))
    assert report["problems"] == [] and report["returncode"] == 0
    assert report["kills"] == kills and report["reloads"] == kills
    assert report["unloadable"] == 0
    assert report["killed_mid_save"] > 0 and report["found_old"] + report["found_new"] == kills


@pytest.mark.slow
def test_the_kill_check_catches_an_unsafe_saver():
    # The loop stops at the first unloadable directory, so a generous kill budget costs nothing when the check
    # works, and keeps an unlucky run (no kill inside a write) from passing the unsafe saver.
    report = _kill_loop("--kills", "200", "--naive-writes")
    assert report["unloadable"] == 1 and report["returncode"] == 1, report
    # ...because a kill landed inside a naive write, not because the naive saver itself failed.
    assert report["killed_mid_save"] >= 1 and report["saves_completed"] >= 1, report
    assert all("TypeError" not in problem for problem in report["problems"]), report


def test_a_flipped_weight_bit_in_model_onnx_is_caught_by_both_loaders(tmp_path):
    import hashlib

    from onnxtrain import InferenceModel
    from onnxtrain.errors import ModelFileError

    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam")
        model.fit((x, np.arange(16) % 3), epochs=1, batch_size=8, verbose=0)
        directory = model.save(tmp_path / "m")
    onnx_path = directory / "model.onnx"
    data = bytearray(onnx_path.read_bytes())
    config = json.loads((directory / "config.json").read_text())
    assert config["model_sha256"] == hashlib.sha256(data).hexdigest()
    data[-20] ^= 0x01  # inside the last initializer's float data: still a valid ONNX file
    onnx_path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model.onnx does not match the SHA-256"):
        load_model(directory)
    with pytest.raises(ModelFileError, match=r"model.onnx does not match the SHA-256"):
        InferenceModel.load(directory)


# --- an ort-training save on an install without the training API


@pytest.fixture
def inference_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process look like an inference-only install (plain onnxruntime, no training API)."""

    def missing() -> None:
        raise RuntimeSetupError("The installed onnxruntime 0.0 is an inference-only build (simulated)")

    monkeypatch.setattr(_ort_training, "_training_api", missing)


@pytest.fixture(scope="module")
def trained_by_ort_training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained with the ort-training engine and saved with ORT's optimizer state."""
    x, y = _data()
    with _model(compiled=False) as model:
        model.compile(
            optimizer=Adam(learning_rate=0.01), loss="softmax_cross_entropy_with_logits", engine="ort-training"
        )
        model.fit((x, y), epochs=2, batch_size=16, verbose=0)
        return model.save(tmp_path_factory.mktemp("trained-ort") / "model", save_optimizer_state=True)


@pytest.mark.training
def test_an_ort_training_save_loads_with_the_portable_engine_where_training_is_missing(
    trained_by_ort_training, inference_only
):
    trained = trained_by_ort_training
    assert json.loads((trained / "config.json").read_text())["compile"]["engine"] == "ort-training"
    x, _ = _data(8)
    with pytest.warns(UserWarning, match=r"trained with the ort-training engine.*compiled with the portable engine"):
        model = load_model(trained, optimizer="adam")  # a fresh optimizer: nothing of ORT's state to read
    with model:
        assert model._trainer.compiled.engine == "portable"
        expected = model.predict_softly(x)
    # the same weights as the save's exported model
    with onnxtrain.InferenceModel.load(trained) as exported:
        np.testing.assert_allclose(expected, exported.predict_softly(x), rtol=1e-6)


@pytest.mark.training
def test_an_ort_training_save_with_optimizer_state_says_how_to_continue_without_the_training_api(
    trained_by_ort_training, inference_only
):
    trained = trained_by_ort_training
    with pytest.raises(
        RuntimeSetupError,
        match=r"trained with the ort-training engine and saved with its optimizer state.*"
        r'load_model\(\.\.\., engine="portable", optimizer=\.\.\.\)',
    ):
        load_model(trained)


def test_resuming_one_engines_optimizer_state_with_the_other_says_how(trained):
    # `trained` is a portable save with optimizer state; ort-training's checkpoint format is ONNX Runtime's own.
    with pytest.raises(
        InvalidArgumentError,
        match=r"holds the portable engine's optimizer state, which the ort-training engine cannot read\. "
        r"Load with engine='portable' to resume exactly, or pass optimizer=\.\.\.",
    ):
        load_model(trained, engine="ort-training")


def test_an_uncompiled_load_exports_the_graph_that_was_trained(tmp_path):
    # A last Dense left at its default activation gives logits to softmax cross-entropy: without compile, the
    # loaded model still knows the saved loss, so its export is the trained graph, not one with ReLU logits.
    x, y = _data()
    with Sequential.of(Input(4, 4, 1), Flatten(), Dense(8), Dense(3), seed=2) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
        model.fit((x, y), epochs=1, batch_size=16, verbose=0)
        expected = model.predict_softly(x)
        model.save(tmp_path / "saved")
    with load_model(tmp_path / "saved", compile=False) as plain:
        plain.export(tmp_path / "plain.onnx")
    exported = onnxtrain.InferenceModel.load(tmp_path / "plain.onnx")
    np.testing.assert_allclose(exported.predict_softly(x), expected, rtol=1e-6, atol=1e-7)
