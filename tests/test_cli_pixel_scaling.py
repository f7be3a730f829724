"""Integer pixels in the data of `onnxtrain train`, `train --resume` and `finetune` (`_data.load_run_data`): the
training data of a new model is divided by 255 (the model adopts input_scale 1/255); test and validation data, and
a resumed run's training data, keep their integers, which the model reads with its own input_scale, exactly as
`onnxtrain evaluate` reads them. The reference: `onnxtrain evaluate` of the saved model on the same file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import History, load_model
from onnxtrain.cli import main

SHAPE = (4, 4, 1)
RAW_PIXELS = "is uint8 (pixels 0-255) and the model's input_scale is 1"


def _pixels(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, *SHAPE)).astype(np.uint8)
    return x, (x[:, 0, 0, 0] > 128).astype(np.int64) + (x[:, 1, 1, 0] > 200).astype(np.int64)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pixels.npz (uint8 x, 48 examples), floats.npz (the same x / 255 as float32) and test.npz (uint8, 16)."""
    x, y = _pixels(48, seed=0)
    np.savez(tmp_path / "pixels.npz", x=x, y=y)
    np.savez(tmp_path / "floats.npz", x=x / np.float32(255), y=y)
    np.savez(tmp_path / "test.npz", **dict(zip("xy", _pixels(16, seed=1), strict=True)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(folder: Path, train: str, epochs: int = 1) -> str:
    config = {
        "name": "pixels",
        "seed": 3,
        "layers": [{"type": "Input", "shape": list(SHAPE)}, {"type": "Flatten"}, {"type": "Dense", "units": 3}],
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "metric": "accuracy",
        "epochs": epochs,
        "batch_size": 8,
        "data": {"train": train, "test": "test.npz", "validation": "test"},
    }
    (folder / "c.json").write_text(json.dumps(config))
    return "c.json"


def _test_line(out: str) -> str:
    found = re.search(r"^Test \(16 examples\): (.*)$", out, re.M)
    assert found, out
    return found[1]


def _evaluated(capsys: pytest.CaptureFixture[str], run: str) -> tuple[str, str]:
    """`onnxtrain evaluate RUN --data test.npz`: its figures, and its stderr."""
    assert main(["evaluate", run, "--data", "test.npz", "--batch-size", "8"]) == 0
    printed = capsys.readouterr()
    found = re.fullmatch(r"(.*)  \(16 examples\)\n", printed.out)
    assert found, printed.out
    return found[1], printed.err


def _val_loss(run: str) -> float:
    return History.from_csv(Path(run) / "history.csv").history["val_loss"][-1]


@pytest.mark.slow
def test_a_model_trained_on_floats_tests_and_validates_integer_pixels_as_evaluate_does(folder, capsys):
    """Its input_scale is 1: evaluate reads the test pixels raw (0-255) and warns; train's test and validation
    figures are the same numbers (they were those of pixels / 255)."""
    assert main(["train", _config(folder, "floats.npz"), "--output", "run", "--verbose", "0"]) == 0
    printed = capsys.readouterr()
    assert RAW_PIXELS in printed.err  # the warning, as a line of train's
    figures, warning = _evaluated(capsys, "run")
    assert RAW_PIXELS in warning
    assert _test_line(printed.out) == figures
    assert f"loss: {_val_loss('run'):.4f}" == figures.split(" - ")[0]  # the validation read them alike


@pytest.mark.slow
def test_a_model_trained_on_pixels_tests_them_divided_by_255_without_a_warning(folder, capsys):
    assert main(["train", _config(folder, "pixels.npz"), "--output", "run", "--verbose", "0"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    with load_model("run/model") as model:
        assert model.input_scale == pytest.approx(1 / 255)
    figures, warning = _evaluated(capsys, "run")
    assert warning == "" and _test_line(printed.out) == figures
    assert f"loss: {_val_loss('run'):.4f}" == figures.split(" - ")[0]


@pytest.mark.slow
def test_resuming_on_integer_pixels_is_the_uninterrupted_run_bit_for_bit(folder, capsys):
    """A resumed run's training data keeps its integers, which the model divides by its input_scale 1/255: the same
    floats as the first run's, divided on loading."""
    assert main(["train", _config(folder, "pixels.npz", epochs=2), "--output", "full", "--verbose", "0"]) == 0
    assert main(["train", _config(folder, "pixels.npz", epochs=1), "--output", "half", "--verbose", "0"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "half", "--epochs", "1", "--output", "resumed", "--verbose", "0"]) == 0
    resumed = _test_line(capsys.readouterr().out)
    with load_model("full/model") as full, load_model("resumed/model") as again:
        for a, b in zip(full.get_weights(), again.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert History.from_csv("full/history.csv") == History.from_csv("resumed/history.csv")
    assert resumed == _evaluated(capsys, "resumed")[0]


@pytest.mark.slow
def test_resuming_a_model_trained_on_floats_reads_integer_pixels_as_evaluate_does(folder, capsys):
    assert main(["train", _config(folder, "floats.npz"), "--output", "run", "--verbose", "0"]) == 0
    capsys.readouterr()
    arguments = ["train", "--resume", "run", "--epochs", "1", "--output", "resumed", "--verbose", "0"]
    assert main(arguments) == 0
    resumed = _test_line(capsys.readouterr().out)
    with load_model("resumed/model") as model:
        assert model.input_scale == 1.0  # a resumed model keeps how it reads inputs
    assert resumed == _evaluated(capsys, "resumed")[0]


@pytest.mark.slow
def test_finetune_tests_integer_pixels_with_the_scale_it_takes_from_its_training_data(folder, capsys):
    """An imported model (input_scale 1) fine-tuned on uint8 pixels adopts 1/255; the test before fine-tuning reads
    the test pixels so too (the numbers of their float32 x / 255), and the test after as evaluate does."""
    assert main(["train", _config(folder, "floats.npz"), "--output", "run", "--verbose", "0"]) == 0
    assert main(["export", "run", "model.onnx"]) == 0
    x, y = _pixels(16, seed=1)
    np.savez(folder / "test_floats.npz", x=x / np.float32(255), y=y)
    capsys.readouterr()
    before = []
    for test in ("test.npz", "test_floats.npz"):
        arguments = ["finetune", "model.onnx", "--outputs", "logits", "--data", "pixels.npz", "--test", test]
        assert main([*arguments, "--output", test[:-4], "--verbose", "0"]) == 0
        out = capsys.readouterr().out
        before.append(re.search(r"^Test before fine-tuning \(16 examples\): (.*)$", out, re.M)[1])  # type: ignore[index]
        if test == "test.npz":
            assert _test_line(out) == _evaluated(capsys, "test")[0]
    assert before[0] == before[1]
