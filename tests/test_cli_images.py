"""Whole command-line runs on folders of images: `onnxtrain train` from a config whose [data] names class
folders trains as on a .npz of the same pixels in the same order (the reference), names the classes in the saved
model, and tests as `evaluate --data FOLDER` does; `predict --input FOLDER` prints one line per file, as the exported
model classifies the pixels; `train --resume` goes on with the folder its run.json names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import History, InferenceModel
from onnxtrain.cli import main

Image = pytest.importorskip("PIL.Image")

CLASSES = ("cat", "dog", "eel")
SEED = 5


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """train/<class>/<i>.png (4 per class) and test/<class>/<i>.png (2 per class), 4 x 4 grey, each class
    brighter than the one before."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("test", 2)):
        for level, name in enumerate(CLASSES):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = (80 * level + rng.integers(0, 60, (4, 4))).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(work: Path, name: str, data: dict[str, str], **more: object) -> str:
    config = {
        "name": "images",
        "seed": SEED,
        "layers": [{"type": "Input", "shape": [4, 4, 1]}, {"type": "Flatten"}, {"type": "Dense", "units": 3}],
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "metric": "accuracy",
        "epochs": 1,
        "batch_size": 4,
        "data": data,
        **more,
    }
    (work / name).write_text(json.dumps(config))
    return name


def _pngs(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each PNG of folder/<class>/ as Pillow reads it (N, 4, 4, 1), its class index, its path: sorted."""
    paths = sorted(folder.glob("*/*.png"))
    x = np.stack([np.asarray(Image.open(path)) for path in paths])[..., np.newaxis]
    return (
        x,
        np.array([CLASSES.index(path.parent.name) for path in paths]),
        [str(path.relative_to(folder)) for path in paths],
    )


def _test_line(out: str) -> str:
    found = re.search(r"^Test \(6 examples\): (.*)$", out, re.M)
    assert found, out
    return found[1]


@pytest.mark.slow
def test_a_run_on_class_folders_trains_as_on_the_same_pixels_in_a_npz(work, capsys):
    x, y, _ = _pngs(work / "train")
    order = np.arange(len(x))
    np.random.RandomState(SEED).shuffle(order)  # the training folder's order: Keras' shuffle with the run's seed
    np.savez(work / "train.npz", x=x[order], y=y[order], class_names=np.array(CLASSES))
    np.savez(work / "test.npz", **dict(zip("xy", _pngs(work / "test")[:2], strict=True)))
    split = {"validation_split": 0.25}
    folders = _config(work, "folders.json", {"train": "train", "test": "test"}, **split)
    arrays = _config(work, "arrays.json", {"train": "train.npz", "test": "test.npz"}, **split)
    assert main(["train", folders, "--output", "folders", "--verbose", "0"]) == 0
    from_folders = capsys.readouterr().out
    assert "on 9 examples (3 held out for validation)" in from_folders
    assert main(["train", arrays, "--output", "arrays", "--verbose", "0"]) == 0
    from_arrays = capsys.readouterr().out
    histories = [History.from_csv(work / run / "history.csv").history for run in ("folders", "arrays")]
    assert histories[0] == histories[1]  # pixels / 255, the same held-out files
    assert _test_line(from_folders) == _test_line(from_arrays)
    saved = json.loads((work / "folders" / "model" / "config.json").read_text())
    assert saved["class_names"] == list(CLASSES) and saved["input_scale"] == pytest.approx(1 / 255)
    # evaluate --data FOLDER: the test line's figures, on the uint8 pixels, which the model divides by 255
    assert main(["evaluate", "folders", "--data", "test"]) == 0
    assert capsys.readouterr().out == f"{_test_line(from_folders)}  (6 examples)\n"


@pytest.mark.slow
def test_predict_on_a_folder_prints_each_file_with_its_class(work, capsys):
    assert main(["train", _config(work, "c.json", {"train": "train"}), "--output", "run", "--verbose", "0"]) == 0
    capsys.readouterr()
    assert main(["predict", "run", "--input", "test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    x, _, names = _pngs(work / "test")
    with InferenceModel.load(work / "run" / "model") as exported:
        probabilities = exported.predict_softly(x)
    best = probabilities.argmax(axis=1)
    assert lines == [
        f"{name}: {CLASSES[b]} ({b}) p={row[b]:.4f}" for name, b, row in zip(names, best, probabilities, strict=True)
    ]
    # one file of the folder, as before: numbered 0
    assert main(["predict", "run", "--input", "test/dog/1.png"]) == 0
    assert capsys.readouterr().out == f"0: {lines[3].partition(': ')[2]}\n"
    (work / "empty").mkdir()
    assert main(["predict", "run", "--input", "empty"]) == 1
    assert (
        capsys.readouterr().err == "onnxtrain predict: error: --input found no images in 'empty'. 'empty' is empty.\n"
    )


@pytest.mark.slow
def test_a_folder_run_resumes_on_its_folder_with_its_classes(work, capsys):
    data = {"train": "train", "test": "test", "validation": "test"}
    config = _config(work, "c.json", data, loss="categorical_crossentropy")
    assert main(["train", config, "--output", "run", "--verbose", "0"]) == 0
    assert main(["train", "--resume", "run", "--epochs", "1", "--output", "more", "--verbose", "0"]) == 0
    assert "after 1 epoch: 1 more on 12 examples of " in capsys.readouterr().out
    saved = json.loads((work / "more" / "model" / "config.json").read_text())
    assert saved["class_names"] == list(CLASSES) and saved["epochs_trained"] == 2
    (work / "test" / "owl").mkdir()  # a class the model does not know
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(work / "test" / "owl" / "0.png")
    assert main(["evaluate", "more", "--data", "test"]) == 1
    assert capsys.readouterr().err == (
        "onnxtrain evaluate: error: --data 'test' holds class folders that are not classes of the saved model: "
        "'owl'. Its classes: 'cat', 'dog', 'eel'; each sub-folder must be one of them.\n"
    )
