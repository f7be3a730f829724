"""A run killed (kill -9) in the middle of a `--checkpoint-every` save, between its two writes (model/, and
history.csv with run.json), resumes into a history.csv that lists every epoch model/ has trained, once and in order:
the save writes history.csv first, so the only mismatch a kill leaves is a history ahead of model/, which --resume
cuts (onnxtrain/cli/_run_output.py RunOutput.save, _resume.py). The tester saw model/ at epoch 33 beside a history
at 30, and a resume then wrote epochs ..., 30, 34, 35. A resume of a folder that an older onnxtrain left with model/
ahead of history.csv says which epochs the history lacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import History
from onnxtrain.cli import _run_output, main
from onnxtrain.cli._run_output import RunOutput

CONFIG = {
    "name": "small",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "loss": "softmax_cross_entropy_with_logits",
    "metric": "accuracy",
    "seed": 4,
    "epochs": 5,
    "batch_size": 10,
    "data": {"train": "train.npz"},
    "layers": [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 2}],
}

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """kill -9 at a chosen point: no `except Exception` (nor OSError) handler of onnxtrain runs for it."""


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _epochs(run: Path) -> tuple[int, list[int]]:
    """The epochs model/ has trained, and those history.csv lists."""
    trained = json.loads((run / "model" / "config.json").read_text())["epochs_trained"]
    return trained, History.from_csv(run / "history.csv").epochs


def _kill_between_the_writes_of_save(monkeypatch, save: int) -> list[str]:
    """Kill the run once the first of the two writes of its `save`-th save (model/, or history.csv) is done, before
    the second begins, whichever order RunOutput.save writes them in. Returns the writes made, in order."""
    writes: list[str] = []
    save_files, write_history = _run_output.save_files, RunOutput.write_history

    def write(kind: str) -> None:
        writes.append(kind)
        if len(writes) == 2 * save:  # the second write of that save
            raise Killed

    def saving_model(*args, **kwargs):
        write("model")
        return save_files(*args, **kwargs)

    def writing_history(self, *args, **kwargs):
        write("history")
        return write_history(self, *args, **kwargs)

    monkeypatch.setattr(_run_output, "save_files", saving_model)
    monkeypatch.setattr(RunOutput, "write_history", writing_history)
    return writes


def test_a_kill_between_a_checkpoints_two_writes_resumes_into_a_contiguous_history(folder, monkeypatch):
    assert main(["train", "c.json", "--output", "full", "--verbose", "0"]) == 0
    writes = _kill_between_the_writes_of_save(monkeypatch, 3)
    with pytest.raises(Killed):
        main(["train", "c.json", "--checkpoint-every", "1", "--output", "out", "--verbose", "0"])
    assert len(writes) == 6
    trained, listed = _epochs(folder / "out")
    assert trained in (2, 3)  # epoch 3's model/ went first, or its history.csv did
    assert listed[:trained] == list(range(1, trained + 1))
    assert listed[trained:] in ([], [3])  # never behind model/: at most ahead of it, which --resume cuts
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    resume = ["train", "--resume", "out", "--epochs", str(5 - trained), "--output", "out", "--overwrite"]
    assert main([*resume, "--verbose", "0"]) == 0
    assert _epochs(folder / "out") == (5, [1, 2, 3, 4, 5])
    full, resumed = History.from_csv(folder / "full" / "history.csv"), History.from_csv(folder / "out" / "history.csv")
    np.testing.assert_allclose(resumed.history["loss"], full.history["loss"], rtol=1e-6)
    assert json.loads((folder / "out" / "run.json").read_text())["epochs"] == 5


def test_a_resume_says_which_epochs_a_history_behind_its_model_lacks(folder, capsys):
    """What an older onnxtrain could leave: model/ at epoch 3 beside a history.csv of epochs 1 and 2. The resume
    cannot make up epoch 3's metrics; it says they are missing rather than writing 1, 2, 4 without a word."""
    assert main(["train", "c.json", "--epochs", "3", "--output", "out", "--verbose", "0"]) == 0
    history = folder / "out" / "history.csv"
    history.write_text("\n".join(history.read_text().splitlines()[:3]) + "\n")
    assert _epochs(folder / "out") == (3, [1, 2])
    capsys.readouterr()
    assert main(["train", "--resume", "out", "--epochs", "1", "--output", "next", "--verbose", "0"]) == 0
    err = capsys.readouterr().err
    assert (
        f"onnxtrain train: note: {Path('out') / 'history.csv'} lists epochs 1-2, and out/model has trained 3: it "
        "lacks epoch 3 (model/ was saved and the run killed before history.csv was), so the resumed history.csv "
        "goes on without it.\n"
    ) in err
    assert _epochs(folder / "next") == (4, [1, 2, 4])


def test_a_resume_of_a_history_that_lists_every_epoch_notes_nothing(folder, capsys):
    assert main(["train", "c.json", "--epochs", "2", "--output", "out", "--verbose", "0"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "out", "--epochs", "1", "--output", "next", "--verbose", "0"]) == 0
    assert "lacks" not in capsys.readouterr().err
    assert _epochs(folder / "next") == (3, [1, 2, 3])
