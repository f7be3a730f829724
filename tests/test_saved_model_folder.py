"""The output folder of `onnxtrain train` stands for the saved model in its model/ folder wherever a saved model is
read, as `onnxtrain predict runs/x` takes it (`onnxtrain._saved_model_folder`): `load_model(run)` and
`InferenceModel.load(run)` load run/model and give the same weights and predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import InferenceModel
from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain.cli import main
from onnxtrain.errors import ModelFileError
from onnxtrain.loading import load_model

CONFIG = {
    "name": "small",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "loss": "softmax_cross_entropy_with_logits",
    "metric": "accuracy",
    "epochs": 1,
    "batch_size": 10,
    "seed": 0,
    "data": {"train": "train.npz"},
    "layers": [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 2}],
}
X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a real `onnxtrain train` run: model/, history.csv, run.json."""
    folder = tmp_path_factory.mktemp("run")
    np.savez(folder / "train.npz", x=X, y=(X[:, 0] > 0).astype(np.int64))
    (folder / "c.json").write_text(json.dumps({**CONFIG, "data": {"train": str(folder / "train.npz")}}))
    assert main(["train", str(folder / "c.json"), "--output", str(folder / "out"), "--verbose", "0"]) == 0
    out = folder / "out"
    assert (out / "model").is_dir() and (out / "history.csv").is_file()
    return out


@pytest.mark.slow
def test_load_model_takes_a_run_folder_for_the_model_in_it(run):
    with load_model(run) as from_run, load_model(run / "model") as from_model:
        weights, expected = from_run.get_weights(), from_model.get_weights()
        assert weights.keys() == expected.keys()
        assert all(np.array_equal(weights[name], expected[name]) for name in expected)
        assert np.array_equal(from_run.predict(X), from_model.predict(X))
        assert from_run._trainer.epochs_trained == from_model._trainer.epochs_trained == 1  # compiled, resumed


@pytest.mark.slow
def test_inference_model_takes_a_run_folder_as_onnxtrain_predict_does(run, capsys):
    with InferenceModel.load(run) as from_run, InferenceModel.load(run / "model") as from_model:
        assert Path(from_run.source) == run / "model" / "model.onnx"
        assert np.array_equal(from_run.predict_softly(X), from_model.predict_softly(X))
        np.save(run.parent / "x.npy", X[:3])
        assert main(["predict", str(run), "--input", str(run.parent / "x.npy")]) == 0
        printed = [line.split(" p=")[0] for line in capsys.readouterr().out.splitlines()]
        assert printed == [f"{i}: class {c} ({c})" for i, c in enumerate(from_run.predict(X[:3]))]


@pytest.mark.slow
def test_a_damaged_run_folder_is_refused_naming_its_model_folder(run, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    (damaged / "model" / "model.onnx").unlink()
    with pytest.raises(ModelFileError, match=rf"^'{damaged / 'model'}' is not a saved onnxtrain model: model\.onnx"):
        load_model(damaged)
    with pytest.raises(ModelFileError, match=rf"^'{damaged / 'model'}' has no model\.onnx: pass a directory"):
        InferenceModel.load(damaged)


FOLDERS = [  # files made under the folder given, and the folder that stands for the saved model
    ("a saved model", ["config.json", "model.onnx"], "."),
    ("a run folder", ["model/config.json", "model/model.onnx", "history.csv"], "model"),
    ("a run folder, model.onnx only", ["model/model.onnx"], "model"),
    ("a saved model holding a model/", ["config.json", "model.onnx", "model/config.json"], "."),
    ("an export folder holding a model/", ["model.onnx", "model/config.json"], "."),
    ("an empty model/", ["history.csv", "model/x"], "."),
    ("nothing", [], "."),
]


@pytest.mark.parametrize(("files", "stands"), [r[1:] for r in FOLDERS], ids=[r[0] for r in FOLDERS])
def test_the_folder_that_stands_for_the_saved_model(tmp_path, files, stands):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert saved_model_folder(tmp_path) == (tmp_path / stands if stands != "." else tmp_path)
