"""Compiling a loaded model with its saved settings (`onnxtrain._saved_compile`): where the saved engine cannot run
here, the warning that says so names the caller's line of load_model, not onnxtrain's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Sequential, _ort_training
from onnxtrain.layers import Dense, Input
from onnxtrain.loading import load_model


@pytest.mark.slow
@pytest.mark.training
def test_the_portable_engine_warning_names_the_line_that_loads(tmp_path, monkeypatch):
    with Sequential.of(Input(4), Dense(2), seed=0) as model:
        model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="ort-training")
        model.fit(np.zeros((8, 4), np.float32), np.zeros(8, np.int64), epochs=1, verbose=0)
        saved = Path(model.save(tmp_path / "model"))
    monkeypatch.setattr(_ort_training, "training_available", lambda: False)  # an inference-only install
    with pytest.warns(UserWarning, match=r"compiled with the portable engine") as caught:
        loaded = load_model(saved, optimizer="adam")
    with loaded:
        assert loaded._trainer.compiled.engine == "portable"
    assert caught[0].filename == __file__
