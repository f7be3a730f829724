"""`onnxtrain train` in-process (onnxtrain/cli/_train.py, _run_config.py, _config_check.py): what a run says and
records, Ctrl-C during a run, --resume's batch size, and the config errors that name the key or option at fault."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import History, engines
from onnxtrain.cli import main
from onnxtrain.cli._run_config import MAX_RUN_CONFIG_BYTES
from onnxtrain.cli._run_output import RunOutput

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


@pytest.mark.parametrize(
    ("dtype", "scale", "trains"),
    [("uint8", 1 / 255, False), ("uint8", 2.0, True), ("float32", 1 / 255, True)],
    ids=["uint8_rescaled_twice", "uint8_other_rescaling", "float32_pixels"],
)
def test_pixels_are_not_divided_by_255_twice(folder, capsys, dtype, scale, trains):
    """uint8 x is divided by 255 on loading; a model that starts with Keras' Rescaling(1/255) would divide again."""
    pixels = np.random.default_rng(1).integers(0, 256, size=(20, 4)).astype(dtype)
    np.savez(folder / "pixels.npz", x=pixels, y=(pixels[:, 0] > 127).astype(np.int64))
    layers = [{"type": "Input", "shape": [4]}, {"type": "Rescaling", "scale": scale}, {"type": "Dense", "units": 2}]
    config = _config(folder, layers=layers, data={"train": "pixels.npz"}, epochs=1)
    assert main(["train", config, "--output", "out", "--verbose", "0"]) == (0 if trains else 1)
    if not trains:
        assert capsys.readouterr().err == (
            "onnxtrain train: error: [data] train = 'pixels.npz': its x are pixels, which onnxtrain train divides by "
            "255 (as fashion_mnist() does), and the model's first layer 'rescaling_1', Rescaling(scale=0.00392157), "
            "divides them again: the model would train on pixels / 65025. Remove that Rescaling layer, or store x as "
            "float32 values 0-255 in the .npz (which are taken as they are).\n"
        )
        assert not (folder / "out" / "model").exists()


def test_augmentation_at_keras_pixel_range_is_refused_on_pixels_divided_by_255(folder, capsys):
    """RandomBrightness at Keras' value_range=(0, 255) on pixels onnxtrain train divided by 255: fit's rule."""
    pixels = np.random.default_rng(1).integers(0, 256, size=(20, 2, 2, 1)).astype(np.uint8)
    np.savez(folder / "pixels.npz", x=pixels, y=(pixels[:, 0, 0, 0] > 127).astype(np.int64))
    layers = [
        {"type": "Input", "shape": [2, 2, 1]},
        {"type": "RandomBrightness", "factor": 0.2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 2},
    ]
    config = _config(folder, layers=layers, data={"train": "pixels.npz"}, epochs=1)
    assert main(["train", config, "--output", "out", "--verbose", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("onnxtrain train: error: ") and "value_range=(0, 1)" in err and err.count("\n") == 1
    assert not (folder / "out" / "model").exists()


# --- what a run says and records ------------------------------------------------------------------------------
@pytest.mark.slow
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


@pytest.mark.slow
def test_the_headline_counts_the_examples_validation_split_holds_out(folder, capsys):
    config = _config(folder, validation_split=0.2)
    assert main(["train", config, "--epochs", "1", "--output", "out", "--verbose", "2"]) == 0
    out = capsys.readouterr().out
    assert "on 40 examples (10 held out for validation); writing to out/" in out
    assert "Epoch 1/1 - 4 batches" in out


# --- Ctrl-C, SIGTERM and crashes: what is saved, and resuming it --------------------------------------------------
def _interrupt_at_epoch(monkeypatch, epoch: int, error: BaseException | None = None) -> None:
    """Ctrl-C (or `error`: a crash) as epoch `epoch` begins (the epochs before it finished)."""
    begin = RunOutput.on_epoch_begin

    def interrupted(self, number, logs=None):
        begin(self, number, logs)
        if number == epoch:
            raise error if error is not None else KeyboardInterrupt

    monkeypatch.setattr(RunOutput, "on_epoch_begin", interrupted)


def _interrupt_after_steps(monkeypatch, steps: int) -> None:
    """Ctrl-C once the `steps`-th training step has updated the weights (in the middle of an epoch)."""
    from onnxtrain.portable._engine import PortableEngine

    step, taken = PortableEngine.train_step, []

    def counted(self, *args, **kwargs):
        result = step(self, *args, **kwargs)
        taken.append(1)
        if len(taken) == steps:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(PortableEngine, "train_step", counted)


def _saved_state(model_dir: Path) -> tuple[dict[str, np.ndarray], bytes, int]:
    """The weights of model.onnx, the checkpoint's bytes (weights and optimizer state) and the epoch count."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(model_dir / "model.onnx").graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    epochs = json.loads((model_dir / "config.json").read_text())["epochs_trained"]
    return weights, (model_dir / "checkpoint").read_bytes(), epochs


def _assert_same_model(a: Path, b: Path) -> None:
    (weights_a, checkpoint_a, epochs_a), (weights_b, checkpoint_b, epochs_b) = _saved_state(a), _saved_state(b)
    assert epochs_a == epochs_b and weights_a.keys() == weights_b.keys()
    for name, value in weights_a.items():
        np.testing.assert_array_equal(value, weights_b[name], err_msg=name)
    assert checkpoint_a == checkpoint_b


@pytest.mark.slow
def test_ctrl_c_saves_what_was_trained_and_resume_continues_it(folder, monkeypatch, capsys):
    _interrupt_at_epoch(monkeypatch, 3)
    assert main(["train", _config(folder, seed=5, epochs=6), "--output", "out", "--verbose", "0"]) == 130
    out, err = capsys.readouterr()
    assert (
        "Interrupted in epoch 3 of 6; saving the model as it was when epoch 2 ended\nWrote:\n  model    out/model/\n"
    ) in out
    assert without_plot_note(err) == (
        "onnxtrain train: interrupted after epoch 2 of 6; saved the model as it was when epoch 2 ended (the steps "
        "of epoch 3 are not in it) to out/model: onnxtrain train --resume out --epochs 4 continues it exactly as "
        "the run would have gone on\n"
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
def test_resume_after_ctrl_c_in_the_middle_of_an_epoch_is_the_uninterrupted_run_bit_for_bit(folder, monkeypatch):
    """README: --resume continues exactly. Ctrl-C after 2 of epoch 3's 5 steps saves the state of the end of epoch
    2, so the resumed run trains epoch 3 from there, as the uninterrupted one did."""
    config = _config(folder, seed=5, epochs=5)
    assert main(["train", config, "--output", "full", "--verbose", "0"]) == 0
    _interrupt_after_steps(monkeypatch, 12)  # 5 steps an epoch (50 examples, batches of 10): epoch 3, step 2
    assert main(["train", config, "--output", "cut", "--verbose", "0"]) == 130
    assert _saved_state(folder / "cut" / "model")[2] == 2
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert main(["train", "--resume", "cut", "--epochs", "3", "--output", "resumed", "--verbose", "0"]) == 0
    _assert_same_model(folder / "full" / "model", folder / "resumed" / "model")
    assert History.from_csv(folder / "full" / "history.csv") == History.from_csv(folder / "resumed" / "history.csv")


def _run_until_epoch(folder: Path, arguments: list[str], epoch: int, **popen: object) -> subprocess.Popen:
    """`onnxtrain train <arguments> --verbose 2` in a process, once it has printed the line of epoch `epoch`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "onnxtrain", "train", *arguments, "--verbose", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,  # type: ignore[call-overload]
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(epoch + 1)]  # the headline, then a line per epoch
    assert lines[epoch].startswith(f"Epoch {epoch}/"), lines
    return proc


def _workers(count: int) -> list[str]:
    """The options of `count` processes (none for one), skipping the test where MPI is not installed."""
    if count == 1:
        return []
    pytest.importorskip("mpi4py")
    if shutil.which("mpiexec", path=str(Path(sys.executable).parent)) is None and shutil.which("mpiexec") is None:
        pytest.skip("no mpiexec")
    return ["--workers", str(count)]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("number", "status", "how"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_sigint_or_sigterm_after_an_epoch_saves_the_run(folder, number, status, how, workers):
    """A real Ctrl-C or SIGTERM (the preemption signal of Kubernetes, Slurm, spot instances) once an epoch has
    finished: the run is saved and exits with 130 or 143; under --workers the launcher passes the signal to
    process 0, which saves."""
    config = _config(folder, seed=1, epochs=100000, batch_size=workers)  # (each process takes a share of a batch)
    proc = _run_until_epoch(folder, [config, *_workers(workers), "--output", "out"], 2)
    try:
        proc.send_signal(number)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    done = json.loads((folder / "out" / "model" / "config.json").read_text())["epochs_trained"]
    record = json.loads((folder / "out" / "run.json").read_text())
    assert done >= 1 and record["epochs"] == done  # epoch 2's line comes before its state is kept
    assert record["interrupted"] == f"after epoch {done} of 100000" + (" (SIGTERM)" if status == 143 else "")
    heading = "Interrupted" if status == 130 else "Terminated (SIGTERM)"
    assert re.search(rf"^{re.escape(heading)} in epoch {done + 1} of 100000; saving the model as it was", out, re.M)
    assert err.startswith(f"onnxtrain train: {how} after epoch {done} of 100000; saved the model"), err
    assert History.from_csv(folder / "out" / "history.csv").epochs == list(range(1, done + 1))


def test_ctrl_c_before_an_epoch_finished_saves_nothing(folder, monkeypatch, capsys):
    _interrupt_at_epoch(monkeypatch, 1)
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 130
    err = capsys.readouterr().err
    assert err == "onnxtrain train: interrupted in epoch 1 before it finished: nothing was saved\n"
    assert not (folder / "out" / "model").exists() and not (folder / "out" / "run.json").exists()


@pytest.mark.slow
def test_a_second_ctrl_c_while_saving_only_says_the_save_goes_on(folder, monkeypatch, capsys):
    from onnxtrain.cli import _run_output

    real = _run_output.save_files

    def save_files(*args, **kwargs):  # the reflex second press, while the model is being written
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    _interrupt_at_epoch(monkeypatch, 2)
    monkeypatch.setattr(_run_output, "save_files", save_files)
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if "curves skipped" not in line]  # (matplotlib)
    assert lines[0] == "onnxtrain train: still saving the model (seconds); press Ctrl-C again to abandon the save"
    assert lines[1].startswith("onnxtrain train: interrupted after epoch 1 of 3; saved the model"), lines
    assert json.loads((folder / "out" / "run.json").read_text())["interrupted"] == "after epoch 1 of 3"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after the run


def test_ctrl_c_twice_while_saving_abandons_the_save(folder, monkeypatch, capsys):
    from onnxtrain.cli import _run_output

    def save_files(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("the second Ctrl-C abandons the save")  # pragma: no cover

    _interrupt_at_epoch(monkeypatch, 2)
    monkeypatch.setattr(_run_output, "save_files", save_files)
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 130
    err = capsys.readouterr().err
    assert err == (
        "onnxtrain train: still saving the model (seconds); press Ctrl-C again to abandon the save\n"
        "onnxtrain train: interrupted after epoch 1 of 3, and again while saving: nothing was saved\n"
    )
    assert not (folder / "out" / "run.json").exists() and not (folder / "out" / "history.csv").exists()


# --- history.csv agrees with model/ --------------------------------------------------------------------------------
def _epochs(folder: Path) -> tuple[int, list[int]]:
    """The epochs model/ has trained, and those history.csv lists, in a run folder."""
    trained = json.loads((folder / "model" / "config.json").read_text())["epochs_trained"]
    return trained, History.from_csv(folder / "history.csv").epochs


@pytest.mark.slow
def test_a_crashed_resume_in_place_leaves_history_csv_as_the_model(folder, monkeypatch):
    """A resume-in-place (the nightly pattern) that dies after 2 epochs: history.csv must not list epochs that
    model/ lacks, and the next resume must not list them twice."""
    assert main(["train", _config(folder, seed=2), "--epochs", "1", "--output", "out", "--verbose", "0"]) == 0
    _interrupt_at_epoch(monkeypatch, 4, OSError("the node went away"))
    resume = ["train", "--resume", "out", "--output", "out", "--overwrite", "--verbose", "0"]
    assert main([*resume, "--epochs", "5"]) == 1
    assert _epochs(folder / "out") == (1, [1])
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert main([*resume, "--epochs", "2"]) == 0
    assert _epochs(folder / "out") == (3, [1, 2, 3])


@pytest.mark.slow
def test_a_history_csv_ahead_of_its_model_is_cut_to_the_model_on_resume(folder):
    """A history.csv that an older onnxtrain left ahead of its model (epochs 2 and 3 of a killed resume, then epoch
    2 again): the resumed run's lists each of the model's epochs once, the last row written for it."""
    assert main(["train", _config(folder, seed=2), "--epochs", "2", "--output", "out", "--verbose", "0"]) == 0
    rows = (folder / "out" / "history.csv").read_text().splitlines()
    header = rows[0].split(",")  # Keras' columns: epoch, then the keys sorted
    stale = rows[2].split(",")
    stale[header.index("loss")] = "9.0"
    third = {"epoch": "3", "loss": "1.0", "accuracy": "0.5"}
    ahead = [",".join(third.get(column, "nan") for column in header), ",".join(stale)]
    (folder / "out" / "history.csv").write_text("\n".join([*rows, *ahead]) + "\n")
    assert main(["train", "--resume", "out", "--epochs", "1", "--output", "next", "--verbose", "0"]) == 0
    history = History.from_csv(folder / "next" / "history.csv")
    assert history.epochs == [1, 2, 3] and history.history["loss"][1] == 9.0


@pytest.mark.slow
def test_overwrite_into_an_old_run_folder_keeps_history_csv_with_its_model(folder, monkeypatch):
    assert main(["train", _config(folder, seed=2), "--epochs", "3", "--output", "out", "--verbose", "0"]) == 0
    _interrupt_at_epoch(monkeypatch, 2, OSError("the node went away"))
    fresh = ["train", _config(folder, seed=3), "--output", "out", "--overwrite", "--verbose", "0"]
    assert main([*fresh, "--epochs", "3"]) == 1
    assert _epochs(folder / "out") == (3, [1, 2, 3])  # the old run, whole
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert main([*fresh, "--epochs", "1"]) == 0
    assert _epochs(folder / "out") == (1, [1])  # the new run only


@pytest.mark.slow
def test_checkpoint_every_saves_finished_epochs_that_a_crash_keeps(folder, monkeypatch):
    config = _config(folder, seed=4, epochs=5)
    assert main(["train", config, "--output", "full", "--verbose", "0"]) == 0
    _interrupt_at_epoch(monkeypatch, 4, OSError("the node went away"))
    assert main(["train", config, "--checkpoint-every", "1", "--output", "out", "--verbose", "0"]) == 1
    assert _epochs(folder / "out") == (3, [1, 2, 3])
    record = json.loads((folder / "out" / "run.json").read_text())
    assert record["epochs"] == 3 and record["checkpoint"] == "epoch 3 of 5" and record["checkpoint_every"] == 1
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert main(["train", "--resume", "out", "--epochs", "2", "--output", "out", "--overwrite", "--verbose", "0"]) == 0
    _assert_same_model(folder / "full" / "model", folder / "out" / "model")
    assert _epochs(folder / "out") == (5, [1, 2, 3, 4, 5])
    assert "checkpoint" not in json.loads((folder / "out" / "run.json").read_text())


def test_checkpoint_every_two_epochs_from_the_config(folder, monkeypatch):
    _interrupt_at_epoch(monkeypatch, 4, OSError("the node went away"))
    assert main(["train", _config(folder, checkpoint_every=2), "--epochs", "5", "--output", "out"]) == 1
    assert _epochs(folder / "out") == (2, [1, 2])


# --- a full disk, a closed stdout ------------------------------------------------------------------------------------
def test_a_full_disk_at_the_final_save_saves_the_model_in_the_temporary_directory(folder, monkeypatch, capsys):
    import errno
    import tempfile

    from onnxtrain.cli import _run_output

    save_files = _run_output.save_files

    def full_disk(directory, *args, **kwargs):
        if Path(directory).parent.name == "out":
            raise OSError(errno.ENOSPC, f"Could not save '{directory}': No space left on device")
        return save_files(directory, *args, **kwargs)

    (folder / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder / "tmp"))
    monkeypatch.setattr(_run_output, "save_files", full_disk)
    assert main(["train", _config(folder, seed=2), "--output", "out", "--verbose", "0"]) == 1
    err = capsys.readouterr().err
    (rescue,) = (folder / "tmp").iterdir()
    assert err == (
        f"onnxtrain train: error: Could not save '{Path('out') / 'model'}': No space left on device The "
        f"trained model was saved to {rescue}/model instead (with history.csv and run.json): move that folder "
        "where the run belongs before the temporary directory is cleaned.\n"
    )
    assert _epochs(rescue) == (3, [1, 2, 3]) and json.loads((rescue / "run.json").read_text())["epochs"] == 3
    assert not (folder / "out" / "model").exists() and not (folder / "out" / "history.csv").exists()


def test_a_run_whose_output_lacks_the_space_for_its_model_is_refused_before_training(folder, monkeypatch, capsys):
    from onnxtrain.cli import _run_output

    usage = shutil.disk_usage
    monkeypatch.setattr(_run_output.shutil, "disk_usage", lambda path: usage(path)._replace(free=1000))
    assert main(["train", _config(folder), "--output", "out", "--verbose", "0"]) == 1
    assert re.fullmatch(
        r"onnxtrain train: error: --output 'out' has 1 KB free, and this run needs about 1\.0 MB: its model takes "
        r"\d+ KB \(with its optimizer state\), and 1\.0 MB is kept for history\.csv, run\.json and curves\.png\. "
        r"Free some space or pass another --output\. Nothing was trained\.\n",
        capsys.readouterr().err,
    )
    assert not (folder / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_train_goes_on_and_saves_when_the_reader_of_its_stdout_goes_away(folder, workers):
    """`onnxtrain train ... | head -1`: the first print finds no reader (EPIPE). The run must not die with 141."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the run prints anything
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "onnxtrain", "train", _config(folder), *_workers(workers), "--output", "out"]
    try:
        proc = subprocess.run(
            [*command, "--verbose", "2"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        "onnxtrain train: note: stdout was closed (its reader went away); the run goes on without printing and saves "
        "as usual\n"
    )
    assert _epochs(folder / "out") == (3, [1, 2, 3])


# --- --resume of a model that model.save wrote -----------------------------------------------------------------
@pytest.mark.slow
def test_resuming_a_model_without_a_run_config_says_which_batch_size_it_trains_with(folder, capsys):
    assert main(["train", _config(folder), "--epochs", "1", "--output", "out", "--verbose", "0"]) == 0
    (folder / "out" / "run.json").unlink()
    capsys.readouterr()
    resume = ["train", "--resume", "out/model", "--epochs", "1", "--data", "train.npz", "--verbose", "0"]
    assert main([*resume, "--output", "a"]) == 0
    assert (
        "1 more on 50 examples of --data train.npz, batch size 32 (the default: no run.json records the one it was "
        "trained with; pass --batch-size N to choose); writing to a/"
    ) in capsys.readouterr().out
    assert main([*resume, "--output", "b", "--batch-size", "10"]) == 0
    assert "1 more on 50 examples of --data train.npz, batch size 10 (--batch-size); writing to b/" in (
        capsys.readouterr().out
    )


@pytest.mark.slow
def test_resuming_a_saved_model_writes_a_run_json_that_the_next_resume_follows(folder, capsys):
    """A model that model.save() wrote (no run.json): its resume records the data and batch size, so a chain of
    resumes keeps them, and says where they came from."""
    from onnxtrain.loading import load_model

    assert main(["train", _config(folder, seed=6), "--epochs", "1", "--output", "out", "--verbose", "0"]) == 0
    with load_model(folder / "out" / "model") as model:
        model.save(folder / "saved", save_optimizer_state=True)
    resume = ["train", "--resume", "saved", "--data", "train.npz", "--batch-size", "25", "--epochs", "1"]
    assert main([*resume, "--output", "first", "--verbose", "0"]) == 0
    record = json.loads((folder / "first" / "run.json").read_text())
    assert record["batch_size"] == 25 and record["data"] == {"train": str(folder / "train.npz")}
    assert record["resumed_from"] == str((folder / "saved").resolve()) and record["epochs"] == 2
    capsys.readouterr()
    assert main(["train", "--resume", "first", "--epochs", "1", "--output", "second", "--verbose", "0"]) == 0
    run_json = Path("first") / "run.json"
    assert (
        f"Resuming small (seed 6) after 2 epochs: 1 more on 50 examples of {folder / 'train.npz'} (from {run_json}), "
        f"batch size 25 (from {run_json}); writing to second/"
    ) in capsys.readouterr().out
    assert json.loads((folder / "second" / "run.json").read_text())["batch_size"] == 25
    assert _epochs(folder / "second") == (3, [2, 3])  # (the saved model came with no history)
    assert main(["train", "first/run.json", "--output", "scratch"]) == 1
    assert (
        "records a resumed run of the saved model '" + str((folder / "saved").resolve()) + "', whose layers no run "
        "config describes, so it cannot train a model from scratch. Continue that run with onnxtrain train "
        "--resume first --epochs N"
    ) in capsys.readouterr().err


# --- messages in the command line's words ------------------------------------------------------------------------
def test_a_layer_that_refuses_its_arguments_is_named_by_its_index(folder, capsys):
    layers = [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 8}, {"type": "Dense", "units": "2"}]
    assert main(["train", _config(folder, layers=layers), "--output", "out"]) == 1
    assert capsys.readouterr().err.startswith(
        "onnxtrain train: error: layers[2] (Dense): Dense(units=...) expects a positive int. Received: units='2'"
    )


@pytest.mark.slow
def test_errors_give_the_command_line_remedy_not_the_python_one(folder, capsys):
    from onnxtrain.cli._advice import in_cli_words

    assert in_cli_words("Load with load_model(..., optimizer=...) to start a fresh optimizer.", "out") == (
        "Resume with onnxtrain train --resume out --epochs N --fresh-optimizer to start a fresh optimizer."
    )
    assert in_cli_words('SGD has no momentum. Use compile(engine="portable"), or momentum=0.') == (
        "SGD has no momentum. Use the portable engine (onnxtrain train --engine portable, the default), or momentum=0."
    )
    pytest.importorskip("onnxruntime.training", reason="ort-training needs an ONNX Runtime training build")
    assert main(["train", _config(folder, seed=2), "--epochs", "1", "--output", "out", "--verbose", "0"]) == 0
    capsys.readouterr()
    resume = ["train", "--resume", "out", "--epochs", "1", "--engine", "ort-training", "--verbose", "0"]
    assert main([*resume, "--output", "other"]) == 1
    assert capsys.readouterr().err.endswith(
        "Resume with --engine portable to resume exactly, or add --fresh-optimizer to continue with --engine "
        "ort-training and a fresh optimizer.\n"
    )
    assert main([*resume, "--fresh-optimizer", "--output", "fresh"]) == 0
    assert "--fresh-optimizer: training goes on with a fresh adam optimizer" in capsys.readouterr().err
    assert json.loads((folder / "fresh" / "run.json").read_text())["engine"] == "ort-training"


# --- the engine ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_engine_comes_from_the_option_or_the_config_and_run_json_records_it(folder, capsys):
    assert main(["train", _config(folder), "--epochs", "1", "--output", "auto", "--verbose", "0"]) == 0
    assert json.loads((folder / "auto" / "run.json").read_text())["engine"] == "portable"
    assert (
        main(["train", _config(folder, engine="portable"), "--epochs", "1", "--output", "cfg", "--verbose", "0"]) == 0
    )
    assert json.loads((folder / "cfg" / "model" / "config.json").read_text())["compile"]["engine"] == "portable"
    assert main(["train", _config(folder, engine="fast"), "--output", "bad"]) == 1
    assert without_plot_note(capsys.readouterr().err) == (
        f"onnxtrain train: error: c.json: engine expects one of {list(engines.names())}. Received: engine='fast'\n"
    )


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
@pytest.mark.slow
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


def without_plot_note(err: str) -> str:
    """stderr without the line an install lacking the `plot` extra adds ("curves skipped: ... matplotlib")."""
    return "".join(line for line in err.splitlines(keepends=True) if "curves skipped" not in line)
