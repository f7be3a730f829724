"""The Python examples build, train a step and export: examples/residual_cnn.py (the Functional API)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from onnxtrain import InferenceModel

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_residual_cnn_trains_its_moving_statistics_and_exports(tmp_path):
    example = _load("residual_cnn")
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 28, 28, 1), np.float32), rng.integers(0, 10, 32)
    with example.residual_cnn(filters=4, seed=1) as model:
        assert [type(layer).__name__ for layer in model.layers].count("Add") == 2
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        before = model.get_weights()["batch_normalization_1.moving_mean"].copy()
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        assert not np.array_equal(model.get_weights()["batch_normalization_1.moving_mean"], before)
        expected = model.predict_softly(x)
        model.export(tmp_path / "residual.onnx")
    np.testing.assert_allclose(InferenceModel.load(tmp_path / "residual.onnx").predict_softly(x), expected, atol=1e-6)
