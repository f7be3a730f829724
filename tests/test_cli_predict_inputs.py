"""`onnxtrain predict --input` of a .npz: one array per model input, named after it (the only way a model of
several inputs is fed from the command line), and the `x` of a training .npz for a model of one input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Model
from onnxtrain.cli import main
from onnxtrain.layers import Concatenate, Dense, Input


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A saved classifier of two inputs, `image_feats` (6 values) and `meta` (2), its inputs for 4 examples and
    its own predictions of them."""
    folder = tmp_path_factory.mktemp("two_inputs")
    rng = np.random.default_rng(0)
    feats, meta = rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    a, b = Input(6, name="image_feats"), Input(2, name="meta")
    with Model([a, b], Dense(3)(Concatenate()([Dense(4)(a), b])), seed=0) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        model.save(folder / "model")
        probabilities = model.predict_softly({"image_feats": feats, "meta": meta})
    return folder, feats, meta, probabilities


def _classes(out: str) -> list[tuple[int, float]]:
    return [(int(m[1]), float(m[2])) for m in re.finditer(r"^\d+: class \d \((\d)\) p=(\d\.\d{4})$", out, re.M)]


def test_a_model_of_two_inputs_predicts_from_a_npz_named_after_them(two_inputs, capsys):
    folder, feats, meta, probabilities = two_inputs
    np.savez(folder / "inputs.npz", meta=meta, image_feats=feats)  # any order: by name
    assert main(["predict", str(folder / "model"), "--input", str(folder / "inputs.npz")]) == 0
    printed = _classes(capsys.readouterr().out)
    assert [c for c, _ in printed] == list(probabilities.argmax(axis=1))
    np.testing.assert_allclose([p for _, p in printed], probabilities.max(axis=1), atol=1e-4)


@pytest.mark.parametrize(
    ("file", "arrays", "message"),
    [
        (
            "x.npy",
            ["image_feats"],
            r"the model takes 2 inputs \['image_feats', 'meta'\]; pass a .npz of one array per input, named after "
            r"it: np.savez\('inputs.npz', image_feats=..., meta=...\)",
        ),
        (
            "x.npz",
            ["image_feats", "other"],
            r"expects one array per model input, named after it: \['image_feats', 'meta'\]. Received: arrays "
            r"\['image_feats', 'other'\]",
        ),
    ],
    ids=["npy", "npz_missing_an_input"],
)
def test_a_model_of_two_inputs_refuses_what_cannot_feed_both(two_inputs, capsys, file, arrays, message):
    folder, feats, _, _ = two_inputs
    path = folder / file
    if path.suffix == ".npy":
        np.save(path, feats)
    else:
        np.savez(path, **{name: feats for name in arrays})
    assert main(["predict", str(folder / "model"), "--input", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("onnxtrain predict: error: ") and err.count("\n") == 1
    assert re.search(message, err), err


@pytest.mark.parametrize("key", ["x", "input", "features"], ids=["training_npz_x", "input_name", "only_array"])
def test_a_model_of_one_input_takes_a_npz_of_its_array(tmp_path, capsys, key):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    inputs = Input(4)
    with Model(inputs, Dense(3)(inputs), seed=1) as model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        model.save(tmp_path / "model")
        expected = model.predict(x)
    arrays = {key: x} if key != "x" else {"x": x, "y": np.zeros(3, np.int64)}
    np.savez(tmp_path / "in.npz", **arrays)
    assert main(["predict", str(tmp_path / "model"), "--input", str(tmp_path / "in.npz")]) == 0
    assert [c for c, _ in _classes(capsys.readouterr().out)] == list(expected)
