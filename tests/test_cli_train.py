"""`onnxtrain train` in-process (onnxtrain/cli/_train.py, _run_config.py): what a run says and records, Ctrl-C
during a run, --resume's batch size, and the config errors that name the key or option at fault."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import History
from onnxtrain.cli import main
from onnxtrain.cli._run_config import MAX_RUN_CONFIG_BYTES, RunOutput

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "name": "small",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "loss": "softmax_cross_entropy_with_logits",
    "metric": "accuracy",
    "epochs": 3,
    "batch_size": 10,
    "data": {"train": "train.npz"},
    "layers": [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 2}],
}


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """The working folder, with train.npz (50 examples of 4 features, 2 classes) and mismatch.npz (x and y of
    different lengths)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    np.savez(tmp_path / "mismatch.npz", x=x, y=np.zeros(10, np.int64))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(folder: Path, **changes: object) -> str:
    (folder / "c.json").write_text(json.dumps({**CONFIG, **changes}))
    return "c.json"


# --- what a run says and records ------------------------------------------------------------------------------
def test_a_run_without_a_seed_records_the_seed_it_drew(folder, capsys):
    assert main(["train", _config(folder), "--epochs", "1", "--output", "out", "--verbose", "0"]) == 0
    seed = int(re.search(r"^Training small \(seed (\d+)\)", capsys.readouterr().out).group(1))
    assert json.loads((folder / "out" / "run.json").read_text())["seed"] == seed
    assert json.loads((folder / "out" / "model" / "config.json").read_text())["seed"] == seed
    # Training from run.json again is the same run.
    assert main(["train", "out/run.json", "--output", "again", "--verbose", "0"]) == 0
    assert f"(seed {seed})" in capsys.readouterr().out
    for name in ("out", "again"):
        assert (folder / name / "model" / "model.onnx").is_file()
    first, second = (History.from_csv(folder / name / "history.csv").history["loss"] for name in ("out", "again"))
    assert first == second


def test_the_headline_counts_the_examples_validation_split_holds_out(folder, capsys):
    config = _config(folder, validation_split=0.2)
    assert main(["train", config, "--epochs", "1", "--output", "out", "--verbose", "2"]) == 0
    out = capsys.readouterr().out
    assert "on 40 examples (10 held out for validation); writing to out/" in out
    assert "Epoch 1/1 - 4 batches" in out


# --- Ctrl-C ------------------------------------------------------------------------------------------------------
def _interrupt_at_epoch(monkeypatch, epoch: int) -> None:
    """Ctrl-C as epoch `epoch` begins (the epochs before it finished)."""
    begin = RunOutput.on_epoch_begin

    def interrupted(self, number, logs=None):
        begin(self, number, logs)
        if number == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunOutput, "on_epoch_begin", interrupted)


def test_ctrl_c_saves_what_was_trained_and_resume_continues_it(folder, monkeypatch, capsys):
    _interrupt_at_epoch(monkeypatch, 3)
    assert main(["train", _config(folder, seed=5, epochs=6), "--output", "out", "--verbose", "0"]) == 130
    out, err = capsys.readouterr()
    assert "Interrupted in epoch 3 of 6; saving what was trained\nWrote:\n  model    out/model/\n" in out
    err = "".join(line for line in err.splitlines(keepends=True) if "curves skipped" not in line)  # no [plot]
    assert err == (
        "onnxtrain train: interrupted after epoch 2 of 6; saved the model (the weights of its last step; 2 epochs "
        "count as trained) to out/model: onnxtrain train --resume out --epochs 4 continues it\n"
    )
    saved = json.loads((folder / "out" / "model" / "config.json").read_text())
    assert saved["epochs_trained"] == 2 and saved["optimizer_state_saved"] is True
    run = json.loads((folder / "out" / "run.json").read_text())
    assert run["epochs"] == 2 and run["interrupted"] == "after epoch 2 of 6"
    assert History.from_csv(folder / "out" / "history.csv").epochs == [1, 2]

    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert main(["train", "--resume", "out", "--epochs", "4", "--output", "resumed", "--verbose", "0"]) == 0
    assert "Resuming small (seed 5) after 2 epochs: 4 more on 50 examples" in capsys.readouterr().out
    run = json.loads((folder / "resumed" / "run.json").read_text())
    assert run["epochs"] == 6 and "interrupted" not in run
    assert History.from_csv(folder / "resumed" / "history.csv").epochs == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_sigint_after_the_first_epoch_saves_the_run(folder):
    """A real Ctrl-C (SIGINT to the process) once an epoch has finished: the run is saved and exits with 130."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "onnxtrain", "train", _config(folder, seed=1, epochs=100000, batch_size=1)]
    proc = subprocess.Popen(
        [*command, "--output", "out", "--verbose", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]  # the headline, then the lines of epochs 1 and 2
        assert lines[2].startswith("Epoch 2/100000"), lines  # epoch 1 is in history.csv by now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert (folder / "out" / "model").is_dir(), (out, err)
    done = json.loads((folder / "out" / "model" / "config.json").read_text())["epochs_trained"]
    assert done >= 2 and json.loads((folder / "out" / "run.json").read_text())["epochs"] == done
    assert re.search(r"^Interrupted in epoch \d+ of 100000; saving what was trained$", out, re.M), out
    assert err.startswith(f"onnxtrain train: interrupted after epoch {done} of 100000; saved the model"), err
    # The epochs fit logged: all that the model counts, or all but one the signal cut off before it was logged.
    assert History.from_csv(folder / "out" / "history.csv").epochs in (list(range(1, n + 1)) for n in (done - 1, done))


def test_ctrl_c_before_an_epoch_finished_saves_nothing(folder, monkeypatch, capsys):
    _interrupt_at_epoch(monkeypatch, 1)
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 130
    err = capsys.readouterr().err
    assert err == "onnxtrain train: interrupted in epoch 1 before it finished: nothing was saved\n"
    assert not (folder / "out" / "model").exists() and not (folder / "out" / "run.json").exists()


def test_ctrl_c_again_while_saving_says_nothing_was_saved(folder, monkeypatch, capsys):
    from onnxtrain.sequential import Sequential

    def save(*args, **kwargs):
        raise KeyboardInterrupt

    _interrupt_at_epoch(monkeypatch, 2)
    monkeypatch.setattr(Sequential, "save", save)
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 130
    err = capsys.readouterr().err
    assert err == (
        "onnxtrain train: interrupted after epoch 1 of 3, and again while saving: nothing was saved "
        "(out/history.csv holds the finished epochs)\n"
    )
    assert not (folder / "out" / "run.json").exists()


# --- --resume of a model that model.save wrote -----------------------------------------------------------------
def test_resuming_a_model_without_a_run_config_says_which_batch_size_it_trains_with(folder, capsys):
    assert main(["train", _config(folder), "--epochs", "1", "--output", "out", "--verbose", "0"]) == 0
    (folder / "out" / "run.json").unlink()
    capsys.readouterr()
    resume = ["train", "--resume", "out/model", "--epochs", "1", "--data", "train.npz", "--verbose", "0"]
    assert main([*resume, "--output", "a"]) == 0
    assert (
        "1 more on 50 examples (batch size 32: no run.json records the one it was trained with; pass --batch-size N "
        "to choose); writing to a/"
    ) in capsys.readouterr().out
    assert main([*resume, "--output", "b", "--batch-size", "10"]) == 0
    assert "1 more on 50 examples; writing to b/" in capsys.readouterr().out


# --- errors that name the key or option ------------------------------------------------------------------------
CONFIG_ERRORS = [
    # (id, config changes, pattern of the one error line)
    ("negative_seed", {"seed": -1}, r"c\.json: seed expects a non-negative int, e\.g\. seed = 42 .*Received: seed=-1$"),
    ("text_seed", {"seed": "a"}, r"c\.json: seed expects a non-negative int.*Received: seed='a'$"),
    ("bool_seed", {"seed": True}, r"c\.json: seed expects a non-negative int.*Received: seed=True$"),
    (
        "data_typo",
        {"data": {"train": "train.npz", "trian": "train.npz"}},
        r"c\.json: \[data\] has an unknown key 'trian' \(did you mean 'train'\?\)\. It takes the keys \['test', "
        r"'train', 'validation'\]$",
    ),
    ("data_not_a_table", {"data": "train.npz"}, r"c\.json: \[data\] expects a table .*Received: data='train\.npz'"),
    ("top_level_typo", {"epoch": 2}, r"c\.json has an unknown key 'epoch' \(did you mean 'epochs'\?\)\. Valid keys"),
    (
        "lengths_differ",
        {"data": {"train": "mismatch.npz"}},
        r"\[data\] train: '.*mismatch\.npz' holds 50 examples in x but 10 labels in y \(x\.shape=\(50, 4\), "
        r"y\.shape=\(10,\)\); a dataset has one label per example$",
    ),
]


@pytest.mark.parametrize(("case", "changes", "pattern"), CONFIG_ERRORS, ids=[e[0] for e in CONFIG_ERRORS])
def test_config_errors_name_the_key(folder, capsys, case, changes, pattern):
    assert main(["train", _config(folder, **changes), "--output", "out"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("onnxtrain train: error: ") and len(err.splitlines()) == 1, err
    assert re.search(pattern, err.strip()), err
    assert not (folder / "out").exists()


def test_a_negative_seed_option_is_named(folder, capsys):
    assert main(["train", _config(folder), "--seed", "-3", "--output", "out"]) == 1
    err = capsys.readouterr().err
    assert err == "onnxtrain train: error: --seed expects a non-negative integer. Received: --seed -3\n"


def _large_onnx_model() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.zeros((600, 600), np.float32), "w")  # 1.4 MB
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 600])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 600])],
        [weights],
    )
    return helper.make_model(graph).SerializeToString()


@pytest.mark.parametrize("name", ["model.onnx", "model.toml"])
def test_a_large_onnx_model_is_named_as_one_not_as_a_config_too_large(folder, capsys, name):
    data = _large_onnx_model()
    assert len(data) > MAX_RUN_CONFIG_BYTES
    (folder / name).write_bytes(data)
    assert main(["train", name]) == 1
    assert capsys.readouterr().err.startswith(
        f"onnxtrain train: error: '{name}' is an ONNX model, not a run config: `onnxtrain train` builds and trains "
    )


def test_a_large_file_that_is_not_an_onnx_model_is_refused_for_its_size(folder, capsys):
    (folder / "big.toml").write_bytes(b"\x08\x07" + bytes(MAX_RUN_CONFIG_BYTES))
    assert main(["train", "big.toml"]) == 1
    assert "more than the 1,048,576 bytes (1.0 MiB) a run config may have" in capsys.readouterr().err


@pytest.mark.parametrize(("case", "changes", "pattern"), CONFIG_ERRORS, ids=[e[0] for e in CONFIG_ERRORS])
def test_config_errors_under_workers_are_the_one_process_line(folder, capfd, case, changes, pattern):
    """--workers N checks the config, the data and the output in the launcher, before it starts any process: one
    line, as alone, not N lines with MPI's abort notices."""
    assert main(["train", _config(folder, **changes), "--workers", "3", "--output", "out"]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err.startswith("onnxtrain train: error: ") and len(err.splitlines()) == 1, err
    assert re.search(pattern, err.strip()), err
    assert not (folder / "out").exists()


def test_an_existing_output_under_workers_is_refused_by_the_launcher(folder, capfd):
    (folder / "out" / "model").mkdir(parents=True)
    assert main(["train", _config(folder), "--workers", "2", "--output", "out"]) == 1
    assert capfd.readouterr().err.splitlines() == [
        f"onnxtrain train: error: '{Path('out') / 'model'}' already exists. Pass --overwrite to replace it, or "
        "another --output."
    ]


# --- threads and workers ----------------------------------------------------------------------------------------
def test_threads_come_from_the_option_or_the_config_and_run_json_notes_them(folder):
    assert main(["train", _config(folder, threads=2), "--epochs", "1", "--output", "cfg", "--verbose", "0"]) == 0
    record = json.loads((folder / "cfg" / "run.json").read_text())
    assert record["threads"] == 2 and record["workers"] == {"count": 1, "threads": 2}
    assert main(["train", "cfg/run.json", "--threads", "1", "--output", "opt", "--verbose", "0"]) == 0
    record = json.loads((folder / "opt" / "run.json").read_text())
    assert record["threads"] == 1 and record["workers"] == {"count": 1, "threads": 1}
    assert main(["train", "--resume", "opt", "--epochs", "1", "--output", "res", "--verbose", "0"]) == 0
    assert json.loads((folder / "res" / "run.json").read_text())["workers"] == {"count": 1, "threads": 1}
    assert main(["train", _config(folder), "--epochs", "1", "--output", "default", "--verbose", "0"]) == 0
    assert json.loads((folder / "default" / "run.json").read_text())["workers"] == {"count": 1, "threads": None}


def test_a_config_with_zero_threads_is_refused(folder, capsys):
    assert main(["train", _config(folder, threads=0), "--output", "out"]) == 1
    assert "c.json: threads expects a positive int" in capsys.readouterr().err


def test_each_worker_gets_its_share_of_the_cores_by_default(monkeypatch):
    from argparse import Namespace

    from onnxtrain.cli._train import _threads
    from onnxtrain.distributed import _launch

    assert [_launch.threads_per_worker(n, cores=8) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setattr(_launch, "usable_cores", lambda: 6)
    assert _threads(Namespace(threads=None), None) is None  # alone: ONNX Runtime's default
    monkeypatch.setenv(_launch.WORKER_ENV, "4")  # one of the processes of --workers 4
    assert _threads(Namespace(threads=None), None) == 1
    monkeypatch.setenv(_launch.WORKER_ENV, "2")
    assert _threads(Namespace(threads=None), None) == 3
    assert _threads(Namespace(threads=None), 2) == 2  # the config's
    assert _threads(Namespace(threads=5), 2) == 5  # --threads
