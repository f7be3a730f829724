"""Where training artifacts may be written: compile(artifacts_dir=...), generate_artifacts and `onnxtrain artifacts`
write only into a new or empty folder, or one holding nothing but artifacts onnxtrain wrote, and refuse anything
else before writing, a saved model's folder above all."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential, generate_artifacts, load_model
from onnxtrain._artifacts_folder import ARTIFACT_FILES, check_artifacts_folder
from onnxtrain.cli import main
from onnxtrain.errors import InvalidArgumentError, ModelExistsError
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import Losses
from onnxtrain.optimizers import Adam

ENGINES = ["ort-training", "portable"]  # conftest skips "ort-training" without a training build
ENGINE_FILES = {
    "ort-training": ["checkpoint", "eval_model.onnx", "optimizer_model.onnx", "training_model.onnx"],
    "portable": ["eval.onnx", "train_step.onnx"],
}


def small_model() -> Sequential:
    return Sequential.of(Input(4), Dense(3, activation="linear"), seed=2)


def trained_save(directory: Path, engine: str) -> Sequential:
    """A model trained a few Adam steps (so it has optimizer state) and saved to `directory`; left compiled."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), np.arange(16) % 3
    model = small_model()
    model.compile(optimizer=Adam(learning_rate=0.01), engine=engine)
    model.fit((x, y), epochs=2, batch_size=4, verbose=0)
    model.save(directory)
    return model


def contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.mark.parametrize("engine", ENGINES)
def test_compile_into_a_saved_models_folder_is_refused_and_keeps_its_checkpoint(tmp_path, engine):
    saved = tmp_path / "saved"
    with trained_save(saved, engine) as model:
        before, weights = contents(saved), model.get_weights()
        with pytest.raises(ModelExistsError) as caught:
            model.compile(optimizer=Adam(learning_rate=0.01), engine=engine, artifacts_dir=saved)
        assert model.is_compiled  # as it was: the refusal came before the new engine
    message = str(caught.value)
    assert message.startswith(f"compile(artifacts_dir=...) got '{saved}', which holds a saved model ('checkpoint', ")
    assert f"Pass another directory (e.g. '{tmp_path / 'saved_artifacts'}'), or move or delete" in message
    assert contents(saved) == before
    with load_model(saved) as loaded:  # the optimizer state the checkpoint holds is still there
        for name, value in weights.items():
            np.testing.assert_array_equal(loaded.get_weights()[name], value)


def test_load_model_with_its_own_folder_as_artifacts_dir_is_refused(tmp_path):
    saved = tmp_path / "saved"
    trained_save(saved, "portable").close()
    before = contents(saved)
    with pytest.raises(ModelExistsError, match=r"holds a saved model"):
        load_model(saved, artifacts_dir=saved)
    assert contents(saved) == before


def _compile_portable(directory: Path) -> None:
    with small_model() as model:
        model.compile(engine="portable", artifacts_dir=directory)


def _compile_ort_training(directory: Path) -> None:
    with small_model() as model:
        model.compile(engine="ort-training", artifacts_dir=directory)


def _generate(directory: Path) -> None:
    generate_artifacts(small_model(), Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), directory)


WRITERS = [
    pytest.param(_compile_portable, "compile(artifacts_dir=...)", id="compile-portable"),
    pytest.param(_compile_ort_training, "compile(artifacts_dir=...)", id="compile-ort", marks=pytest.mark.training),
    pytest.param(_generate, "generate_artifacts(directory=...)", id="generate", marks=pytest.mark.training),
]


def _file(path: Path) -> None:
    path.write_text("not a folder")


def _user_checkpoint(path: Path) -> None:
    path.mkdir()
    (path / "checkpoint").write_bytes(b"my own checkpoint")
    (path / "notes.txt").write_text("keep me")


def _subfolder(path: Path) -> None:
    (path / "runs").mkdir(parents=True)


def _artifact_name_as_folder(path: Path) -> None:
    (path / "eval.onnx").mkdir(parents=True)


REFUSED: list[tuple[Callable[[Path], None], type[Exception], str]] = [
    (_file, InvalidArgumentError, r" expects a directory path, but '.*target' is an existing file\. Remove the file"),
    (_user_checkpoint, ModelExistsError, r"which holds 'notes\.txt', which is not onnxtrain's training artifacts"),
    (_subfolder, ModelExistsError, r"which holds 'runs/', which is not onnxtrain's training artifacts"),
    (_artifact_name_as_folder, ModelExistsError, r"which holds 'eval\.onnx/'"),
]


@pytest.mark.parametrize(("write", "argument"), WRITERS)
@pytest.mark.parametrize(("make", "error", "message"), REFUSED, ids=[r[0].__name__.strip("_") for r in REFUSED])
def test_a_folder_holding_other_files_is_refused_before_anything_is_written(
    tmp_path, write, argument, make, error, message
):
    target = tmp_path / "target"
    make(target)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    user_bytes = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(error) as caught:
        write(target)
    assert str(caught.value).startswith(argument)
    assert re.search(message, str(caught.value)), str(caught.value)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert {p: p.read_bytes() for p in user_bytes} == user_bytes


@pytest.mark.parametrize("engine", ENGINES)
def test_compiling_again_into_the_same_folder_replaces_the_artifacts(tmp_path, engine):
    folder = tmp_path / "artifacts"
    with small_model() as model:
        model.compile(engine=engine, artifacts_dir=folder)
        first = contents(folder)
        model.compile(engine=engine, artifacts_dir=folder, opset=18)  # a different graph: the files are replaced
    assert sorted(contents(folder)) == ENGINE_FILES[engine]
    assert contents(folder) != first


@pytest.mark.training
def test_both_engines_and_generate_artifacts_share_one_artifacts_folder(tmp_path):
    folder = tmp_path / "artifacts"
    _compile_portable(folder)
    _compile_ort_training(folder)
    _generate(folder)
    assert sorted(os.listdir(folder)) == sorted(ENGINE_FILES["portable"] + ENGINE_FILES["ort-training"])
    assert set(os.listdir(folder)) <= ARTIFACT_FILES


def test_scratch_entries_and_a_missing_or_empty_folder_pass(tmp_path):
    assert check_artifacts_folder(tmp_path / "new" / "a", "x") == tmp_path / "new" / "a"
    assert not (tmp_path / "new").exists()  # the check creates nothing
    check_artifacts_folder(tmp_path, "x")
    for name in ARTIFACT_FILES:
        (tmp_path / name).write_bytes(b"")
    check_artifacts_folder(tmp_path, "x")


@pytest.mark.training
def test_the_artifacts_command_refuses_a_file_and_a_saved_model_even_with_overwrite(tmp_path, capsys):
    saved = tmp_path / "saved"
    trained_save(saved, "portable").close()
    out_file = tmp_path / "good.toml"
    out_file.write_text("name = 'kept'")
    assert main(["artifacts", str(saved), str(out_file)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"onnxtrain artifacts: error: artifacts OUTDIR expects a directory path, but '{out_file}' is an existing "
        "file. Remove the file or choose another directory.\n"
    )
    before = contents(saved)
    for extra in ([], ["--overwrite"]):
        assert main(["artifacts", str(saved), str(saved), *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"onnxtrain artifacts: error: artifacts OUTDIR got '{saved}', which holds a saved model")
        assert err.count("\n") == 1
    assert contents(saved) == before and out_file.read_text() == "name = 'kept'"
