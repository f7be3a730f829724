"""What an operator of the command line meets before any work is done: an output folder that cannot be written
(refused before training, saying why), a run folder where a model is asked for, config mistakes and defaults said in
the config's words, and an --help for every option."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import _artifacts_folder
from onnxtrain._artifacts_folder import check_artifacts_folder, check_writable_folder
from onnxtrain.cli import _run_output, main
from onnxtrain.cli._main import build_parser
from onnxtrain.cli._run_output import check_free_space
from onnxtrain.errors import InvalidArgumentError

CONFIG = {
    "name": "small",
    "seed": 3,
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "metric": "accuracy",
    "epochs": 1,
    "batch_size": 10,
    "data": {"train": "train.npz"},
    "layers": [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 2}],
}


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """The working folder, with train.npz (50 examples of 4 features, 2 classes)."""
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(folder: Path, **changes: object) -> str:
    (folder / "c.json").write_text(json.dumps({**CONFIG, **changes}))
    return "c.json"


def _refusing(monkeypatch, where: Path, code: int) -> None:
    """Make the write probe fail with `code` in `where` (what permissions, `chattr +i` or a read-only mount do)."""
    real = _artifacts_folder._probe_write

    def probe(folder: Path) -> None:
        if folder.absolute() == where.absolute():
            raise OSError(code, os.strerror(code), str(folder))
        real(folder)

    monkeypatch.setattr(_artifacts_folder, "_probe_write", probe)


# --- an output folder that cannot be written is refused before anything is trained ------------------------------
REASONS = {
    errno.EACCES: r"is not writable \(permission denied\); pass a folder you can write to, or fix its permissions",
    errno.EPERM: r"is not writable \(operation not permitted: an immutable folder, see lsattr, or a security "
    r"policy\); pass a folder you can write to",
    errno.EROFS: r"is on a read-only file system; pass a folder on a writable file system",
}


@pytest.mark.parametrize("code", list(REASONS), ids=[errno.errorcode[c] for c in REASONS])
def test_train_refuses_an_existing_output_it_cannot_write_before_training(folder, monkeypatch, capsys, code):
    (folder / "out").mkdir()
    _refusing(monkeypatch, folder / "out", code)
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 1
    captured = capsys.readouterr()
    assert re.fullmatch(
        rf"onnxtrain train: error: --output got 'out', which {REASONS[code]}\. Nothing was trained\.\n", captured.err
    )
    assert captured.out == ""  # no headline: refused before the data was loaded or anything trained
    assert os.listdir(folder / "out") == []


def test_train_refuses_an_output_it_cannot_create_naming_the_folder_that_refuses(folder, monkeypatch, capsys):
    (folder / "mounted").mkdir()
    _refusing(monkeypatch, folder / "mounted", errno.EROFS)
    assert main(["train", _config(folder), "--output", "mounted/run/1", "--verbose", "0"]) == 1
    assert capsys.readouterr().err == (
        "onnxtrain train: error: --output got 'mounted/run/1', which cannot be created: 'mounted' is on a read-only "
        "file system; pass a folder on a writable file system. Nothing was trained.\n"
    )
    assert os.listdir(folder / "mounted") == []


def test_train_overwrite_refuses_a_model_folder_it_cannot_replace(folder, monkeypatch, capsys):
    (folder / "out" / "model").mkdir(parents=True)
    _refusing(monkeypatch, folder / "out" / "model", errno.EPERM)
    assert main(["train", _config(folder), "--output", "out", "--overwrite", "--verbose", "0"]) == 1
    assert "--output got 'out/model', which is not writable (operation not permitted" in capsys.readouterr().err


def test_train_without_output_in_a_read_only_working_folder_says_so(folder, monkeypatch, capsys):
    _refusing(monkeypatch, Path("."), errno.EROFS)
    assert main(["train", _config(folder), "--verbose", "0"]) == 1
    assert capsys.readouterr().err == (
        "onnxtrain train: error: --output got 'runs' (the default without --output), which cannot be created: the "
        f"working folder '{folder}' is on a read-only file system; pass a folder on a writable file system. "
        "Nothing was trained.\n"
    )
    assert not (folder / "runs").exists()


def test_the_space_check_says_read_only_rather_than_free_some_space(tmp_path, monkeypatch):
    # A nearly full read-only mount: its free space is not the problem, and freeing some would not help.
    monkeypatch.setattr(_artifacts_folder, "_is_read_only_mount", lambda path: Path(path) == tmp_path)
    usage = shutil.disk_usage
    monkeypatch.setattr(_run_output.shutil, "disk_usage", lambda path: usage(path)._replace(free=1000))
    with pytest.raises(InvalidArgumentError, match=r"is on a read-only file system") as caught:
        check_free_space(tmp_path / "run", {"model.onnx": b"x" * 4096})
    assert "free some space" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.EROFS


def test_artifacts_refuses_an_outdir_it_cannot_write_before_building(folder, monkeypatch, capsys):
    (folder / "art").mkdir()
    _refusing(monkeypatch, folder / "art", errno.EACCES)
    assert main(["artifacts", _config(folder), "art"]) == 1
    assert capsys.readouterr().err == (
        "onnxtrain artifacts: error: artifacts OUTDIR got 'art', which is not writable (permission denied); pass a "
        "folder you can write to, or fix its permissions. Nothing was written.\n"
    )


def test_generate_artifacts_and_compile_share_the_probe(tmp_path, monkeypatch):
    _refusing(monkeypatch, tmp_path, errno.EROFS)
    with pytest.raises(InvalidArgumentError, match=r"^compile\(artifacts_dir=...\) got '.*/new', which cannot be"):
        check_artifacts_folder(tmp_path / "new", "compile(artifacts_dir=...)")


def test_the_probe_leaves_nothing_behind_and_passes_a_writable_folder(tmp_path):
    check_writable_folder(tmp_path, "--output", "trained")
    check_writable_folder(tmp_path / "missing" / "deeper", "--output", "trained")
    assert os.listdir(tmp_path) == []


@contextlib.contextmanager
def _read_only_mount(where: Path) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
def test_a_real_read_only_mount_is_refused_as_read_only(folder, capsys):
    """A 64 KiB read-only tmpfs (needs root): too small for the model too, but read-only is what is said."""
    with _read_only_mount(folder / "ro"):
        assert main(["train", _config(folder), "--output", "ro/run", "--verbose", "0"]) == 1
        assert capsys.readouterr().err == (
            "onnxtrain train: error: --output got 'ro/run', which cannot be created: 'ro' is on a read-only file "
            "system; pass a folder on a writable file system. Nothing was trained.\n"
        )
        with pytest.raises(InvalidArgumentError, match="'ro' is on a read-only file system") as caught:
            check_free_space(Path("ro/run"), {"model.onnx": b"x" * (1 << 20)})
        assert "free some space" not in str(caught.value)


@pytest.mark.slow
def test_a_real_immutable_folder_is_refused_before_training(folder, capsys):
    (folder / "imm").mkdir()
    if subprocess.run(["chattr", "+i", str(folder / "imm")], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system with the flag)")
    try:
        assert main(["train", _config(folder), "--output", "imm", "--verbose", "0"]) == 1
        captured = capsys.readouterr()
        assert "--output got 'imm', which is not writable (operation not permitted" in captured.err
        assert captured.out == ""
    finally:
        subprocess.run(["chattr", "-i", str(folder / "imm")], check=False)


# --- predict takes a run's folder, as the other commands do -----------------------------------------------------
@pytest.mark.slow
def test_predict_takes_a_run_folder_for_the_model_in_it(folder, capsys):
    assert main(["train", _config(folder), "--output", "run", "--verbose", "0"]) == 0
    np.save(folder / "x.npy", np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32))
    capsys.readouterr()
    assert main(["predict", "run/model", "--input", "x.npy"]) == 0
    from_model = capsys.readouterr().out
    assert main(["predict", "run", "--input", "x.npy"]) == 0
    assert capsys.readouterr().out == from_model
    assert re.fullmatch(r"(\d: class [01] \([01]\) p=\d\.\d{4}\n){3}", from_model)


# --- config messages and defaults --------------------------------------------------------------------------------
def test_a_config_of_only_an_input_says_it_has_no_layers_after_it(folder, capsys):
    config = _config(folder, layers=[{"type": "Input", "shape": [28, 28, 1]}])
    assert main(["train", config, "--output", "out", "--verbose", "0"]) == 1
    assert capsys.readouterr().err == (
        "onnxtrain train: error: c.json has no layers after its Input: `layers` holds only 1 Input table, so there is "
        'no model to train. Add the model\'s layers after it, e.g. [[layers]] type = "Flatten" then [[layers]] type = '
        '"Dense" units = 10\n'
    )
    assert not (folder / "out").exists()


def test_train_help_states_the_config_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "loss = 'softmax_cross_entropy_with_logits'" in text
    assert "no metric (only the loss is logged" in text
    assert "optimizer = 'adam'" in text and "epochs = 1; batch_size = 32" in text


@pytest.mark.slow
def test_a_config_without_loss_or_metric_trains_as_the_help_says(folder):
    (folder / "c.json").write_text(json.dumps({k: v for k, v in CONFIG.items() if k not in ("metric", "epochs")}))
    assert main(["train", "c.json", "--output", "out", "--verbose", "0"]) == 0
    saved = json.loads((folder / "out" / "model" / "config.json").read_text())
    assert "softmax_cross_entropy_with_logits" in json.dumps(saved).lower()
    history = (folder / "out" / "history.csv").read_text().splitlines()
    assert history[0].split(",") == ["epoch", "loss"] and len(history) == 2  # no metric, 1 epoch


# --- every option says what it is ----------------------------------------------------------------------------------
def _parsers(parser: argparse.ArgumentParser, name: str = "onnxtrain") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {command}")


def test_every_argument_of_every_command_has_help():
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert missing == []


def test_train_shows_a_warning_as_one_line_of_its_own(monkeypatch, capsys):
    # A warning of the library during train printed Python's `path.py:106: UserWarning:` and onnxtrain's source line.
    import warnings

    from onnxtrain.cli import _train

    def warns(args: argparse.Namespace, **_: object) -> int:
        warnings.warn("the model has\n  no weights to train", UserWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(_train, "_train", warns)
    assert main(["train", "--example", "fashion-mlp", "--epochs", "1"]) == 0
    assert capsys.readouterr().err == "onnxtrain train: warning: the model has no weights to train\n"


def test_a_config_without_an_input_is_refused_in_the_config_s_words(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('name = "c"\n[[layers]]\ntype = "Dense"\nunits = 3\n[data]\ntrain = "fashion-mnist:train"\n')
    assert main(["train", str(config), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"onnxtrain train: error: {config} expects its `layers` to start with an Input table")
    assert "Received: layers[0] of type 'Dense'" in err and "model.build" not in err
    assert not (tmp_path / "out").exists()
