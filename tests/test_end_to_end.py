"""The tutorial flow on a slice of the real Fashion-MNIST (skipped when the data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxtrain import Sequential, WritingMode, load_model
from onnxtrain.datasets import fashion_mnist
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.metrics import Metrics
from onnxtrain.optimizers import Adam

pytestmark = pytest.mark.slow

SYSTEM_DATA = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def fashion():
    if not (SYSTEM_DATA / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real Fashion-MNIST not installed in {SYSTEM_DATA} (apt-get install dataset-fashion-mnist)")
    return fashion_mnist(download=False)


@pytest.mark.realdata
def test_tutorial_mlp_on_a_slice_reaches_a_sane_accuracy(fashion, tmp_path):
    train, test = fashion
    small_train, _ = train.split(0.1)
    small_test, _ = test.split(0.2)
    # Linear logits: with the tutorial's ReLU on the last layer, an unlucky seed leaves some classes' units dead
    # from the start, which makes a one-epoch threshold depend on the seed rather than on the code under test.
    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10, activation="linear"), seed=12)
    with model:
        model.compile(optimizer=Adam(), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, metric=Metrics.ACCURACY)
        history = model.fit(dataset=small_train, epochs=1, batch_size=100, verbose=0)
        result = model.evaluate(dataset=small_test, batch_size=100)
        assert len(small_train) == 6000
        assert result.metrics[Metrics.ACCURACY] > 0.7
        assert history.history["loss"][0] < 1.5
        raw_pixels = np.rint(small_test.x[:50] * 255).astype(np.uint8)
        np.testing.assert_array_equal(model.predict(raw_pixels), model.predict(small_test.x[:50]))
        model.save(tmp_path / "my_model", writing_mode=WritingMode.OVERRIDE)
        expected = model.predict_softly(small_test.x[:20])
    assert sorted(p.name for p in (tmp_path / "my_model").iterdir()) == [
        "checkpoint",
        "config.json",
        "model.onnx",
    ]
    exported = onnx.load(tmp_path / "my_model" / "model.onnx")
    onnx.checker.check_model(exported, full_check=True)
    assert {p.key: p.value for p in exported.metadata_props}["class_names"].startswith('["T-shirt/top"')
    with load_model(tmp_path / "my_model") as again:
        np.testing.assert_allclose(again.predict_softly(small_test.x[:20]), expected, rtol=1e-5, atol=1e-6)
        assert again.class_names[9] == "Ankle boot"
