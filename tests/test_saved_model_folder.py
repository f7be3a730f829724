"""Which folder holds the saved model a user names (`onnxtrain._saved_model_folder`), one rule for `load_model`,
`InferenceModel.load` and every CLI command: the output folders of real `onnxtrain train` and `onnxtrain finetune`
runs (finetune's holds its export, a model.onnx, beside model/) stand for the model the run saved in model/, and
the three give the same predictions on them; a folder holding no model is refused naming it and what was expected;
the table pins the rule on each layout."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import History, InferenceModel
from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain.cli import main
from onnxtrain.errors import ModelFileError
from onnxtrain.loading import load_model

FIXTURE = Path(__file__).parent / "data" / "onnx_models" / "mlp_torchscript.onnx"  # 8 features -> 4 classes
X = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0)
CONFIG = {
    "name": "small",
    "optimizer": {"name": "sgd", "learning_rate": 0.05},
    "loss": "softmax_cross_entropy_with_logits",
    "epochs": 1,
    "batch_size": 16,
    "seed": 0,
    "engine": "portable",
    "layers": [{"type": "Input", "shape": [8]}, {"type": "Dense", "units": 4}],
}
RUNS = ["trained", "finetuned"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding trained/ (`onnxtrain train`: model/, run.json, history.csv) and finetuned/ (`onnxtrain
    finetune` of the torch MLP fixture: the same and the export model.onnx), both trained one epoch on X, Y."""
    folder = tmp_path_factory.mktemp("runs")
    np.savez(folder / "train.npz", x=X, y=Y)
    (folder / "c.json").write_text(json.dumps({**CONFIG, "data": {"train": str(folder / "train.npz")}}))
    quiet = ["--verbose", "0", "--output"]
    with pytest.MonkeyPatch.context() as patch:
        # curves.png is not under test here, and drawing it takes most of these tiny runs' time.
        patch.setattr(History, "plot", lambda self, path: Path(path))
        assert main(["train", str(folder / "c.json"), *quiet, str(folder / "trained")]) == 0
        data = ["--data", str(folder / "train.npz"), "--batch-size", "16"]
        assert main(["finetune", str(FIXTURE), *data, *quiet, str(folder / "finetuned")]) == 0
    assert (folder / "finetuned" / "model.onnx").is_file() and not (folder / "trained" / "model.onnx").exists()
    np.save(folder / "x.npy", X)
    yield folder


@pytest.mark.parametrize("name", RUNS)
def test_load_model_of_a_run_folder_is_the_model_the_run_saved(runs: Path, name: str) -> None:
    run = runs / name
    with load_model(run) as from_run, load_model(run / "model") as saved:
        weights, expected = from_run.get_weights(), saved.get_weights()
        assert weights.keys() == expected.keys()
        assert all(np.array_equal(weights[key], expected[key]) for key in expected)
        assert np.array_equal(from_run.predict_softly(X), saved.predict_softly(X))
        assert from_run._trainer.epochs_trained == 1  # compiled and resumed, as load_model(run / "model") is


@pytest.mark.parametrize("name", RUNS)
def test_inference_model_of_a_run_folder_reads_the_run_s_model_folder(runs: Path, name: str) -> None:
    run = runs / name
    with InferenceModel.load(run) as from_run, InferenceModel.load(run / "model") as saved:
        assert Path(from_run.source) == run / "model" / "model.onnx"  # not finetune's export beside model/
        assert np.array_equal(from_run.predict_softly(X), saved.predict_softly(X))


@pytest.mark.parametrize("name", RUNS)
def test_onnxtrain_predict_on_a_run_folder_equals_load_model_on_it(
    runs: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with load_model(runs / name) as model:
        probabilities = model.predict_softly(X)
    assert main(["predict", str(runs / name), "--input", str(runs / "x.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = [re.fullmatch(r"(\d+): class (\d) \((\d)\) p=(0\.\d{4})", line) for line in lines]
    assert all(printed), lines
    rows = np.array([[int(m[1]), int(m[2]), int(m[3])] for m in printed if m])
    best = probabilities.argmax(axis=1)
    np.testing.assert_array_equal(rows, np.stack([np.arange(len(X)), best, best], axis=1))
    shown = np.array([float(m[4]) for m in printed if m])
    np.testing.assert_allclose(shown, probabilities[np.arange(len(X)), best], atol=5e-5 + 1e-6)


@pytest.mark.parametrize("name", RUNS)
def test_a_run_folder_whose_model_lost_model_onnx_is_refused_naming_its_model_folder(
    runs: Path, name: str, tmp_path: Path
) -> None:
    """Not loaded from finetune's export beside model/: the refusal names the run's model/ and what it lacks."""
    damaged = tmp_path / name
    shutil.copytree(runs / name, damaged)
    (damaged / "model" / "model.onnx").unlink()
    with pytest.raises(
        ModelFileError, match=rf"^'{re.escape(str(damaged / 'model'))}' is not a saved onnxtrain model: model\.onnx"
    ):
        load_model(damaged)
    with pytest.raises(
        ModelFileError, match=rf"^'{re.escape(str(damaged / 'model'))}' has no model\.onnx: pass a directory written"
    ):
        InferenceModel.load(damaged)


NO_MODEL = [  # files made in a folder that holds no model
    ("an empty folder", []),
    ("a run's folder without model/", ["history.csv", "run.json"]),
    ("a model/ without a model's files", ["run.json", "model/history.csv"]),
]


@pytest.mark.parametrize("files", [r[1] for r in NO_MODEL], ids=[r[0] for r in NO_MODEL])
def test_a_folder_holding_no_model_is_refused_naming_it_and_what_was_expected(
    tmp_path: Path, files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    named = re.escape(str(folder))
    with pytest.raises(ModelFileError, match=rf"^'{named}' is not a saved onnxtrain model: config\.json is missing"):
        load_model(folder)
    not_inference = rf"'{named}' has no model\.onnx: pass a directory written by model\.save\(\) \(or the output fo"
    with pytest.raises(ModelFileError, match=f"^{not_inference}"):
        InferenceModel.load(folder)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "data.npz", x=X, y=Y)
    assert main(["evaluate", str(folder), "--data", str(tmp_path / "data.npz")]) == 1
    assert re.search(
        rf"'{named}' is not a saved onnxtrain model: config\.json is missing \(it holds .*\); this needs a saved "
        r"model directory \(the model/ folder `onnxtrain train` or `onnxtrain finetune` writes, or the run folder "
        r"that holds it\)\.$",
        capsys.readouterr().err.strip(),
    )
    assert main(["predict", str(folder), "--input", str(tmp_path / "x.npy")]) == 1
    assert re.search(not_inference, capsys.readouterr().err)


FOLDERS = [  # files made under the folder given, and the folder that stands for the saved model
    ("a saved model", ["config.json", "model.onnx"], "."),
    ("a run folder", ["model/config.json", "model/model.onnx", "history.csv"], "model"),
    ("a run folder, model.onnx only", ["model/model.onnx"], "model"),
    ("a saved model holding a model/", ["config.json", "model.onnx", "model/config.json"], "."),
    # `onnxtrain finetune`'s output folder: its export model.onnx beside model/. config.json decides, as for every
    # CLI command: the folder stands for the model its run saved (this row pinned "." while the CLI took model/, so
    # load_model refused the folder that `onnxtrain predict` read: the tests of real runs above).
    ("a finetune output folder", ["model.onnx", "model/config.json", "model/model.onnx", "run.json"], "model"),
    ("a finetune output folder whose model/ lost config.json", ["model.onnx", "model/model.onnx"], "model"),
    ("an export's folder", ["model.onnx"], "."),
    ("an empty model/", ["history.csv", "model/x"], "."),
    ("nothing", [], "."),
]


@pytest.mark.parametrize(("files", "stands"), [r[1:] for r in FOLDERS], ids=[r[0] for r in FOLDERS])
def test_the_folder_that_stands_for_the_saved_model(tmp_path, files, stands):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert saved_model_folder(tmp_path) == (tmp_path / stands if stands != "." else tmp_path)
