"""Layer state that a training step updates (Keras' non-trainable weights, e.g. BatchNormalization's moving
statistics): carried in and out of the portable train step like optimizer state, skipped by a non-finite step,
saved in the checkpoint, read by evaluation and the export.

`Centering` is the worked example: a layer whose training graph differs from its inference graph.
"""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import InferenceModel, Sequential, load_model
from onnxtrain.errors import UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Dense, Input, Layer, Shape
from onnxtrain.optimizers import SGD

MOMENTUM = 0.75


class Centering(Layer):
    """y = x - mean: the batch mean in training (and moving_mean <- m * moving_mean + (1 - m) * batch mean), the
    moving mean in evaluation, prediction and the export."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        self.add_weight("moving_mean", np.zeros(input_shape), trainable=False)

    def emit(self, builder: GraphBuilder, x: str) -> str:
        moving = self.emit_params(builder)["moving_mean"]
        if not builder.training:
            return builder.node("Sub", [x, moving])
        batch_mean = builder.reduce("ReduceMean", x, [0], keepdims=False, hint="batch_mean")
        m = builder.constant(np.float32(MOMENTUM), "momentum")
        rest = builder.constant(np.float32(1 - MOMENTUM), "rest")
        new = builder.node("Add", [builder.node("Mul", [moving, m]), builder.node("Mul", [batch_mean, rest])])
        builder.update_state(moving, new)
        return builder.node("Sub", [x, batch_mean])


def model(seed: int = 3) -> Sequential:
    return Sequential.of(Input(3), Centering(), Dense(2, activation="linear"), seed=seed)


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40, 3)) + np.array([1.0, -2.0, 5.0])).astype(np.float32)
    return x, rng.normal(size=(40, 2)).astype(np.float32)


def test_each_step_updates_the_moving_mean_as_the_layer_says():
    x, y = data()
    with model() as m:
        m.compile(optimizer=SGD(0.01), loss="mse", engine="portable")
        m.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
        assert not m._trainer.engine.fused  # the graph's update carries the layer state
        expected = np.zeros(3, np.float32)
        for batch in np.split(x, 4):
            expected = MOMENTUM * expected + (1 - MOMENTUM) * batch.mean(axis=0)
        np.testing.assert_allclose(m.get_weights()["centering_1.moving_mean"], expected, rtol=1e-6)
        assert m.param_counts() == (8, 3)


def test_evaluation_and_the_export_read_the_moving_mean(tmp_path):
    x, y = data()
    with model() as m:
        m.compile(optimizer=SGD(0.01), loss="mse", engine="portable")
        m.fit(x, y, epochs=2, batch_size=10, verbose=0)
        weights = m.get_weights()
        expected = (x - weights["centering_1.moving_mean"]) @ weights["dense_1.kernel"] + weights["dense_1.bias"]
        np.testing.assert_allclose(m.predict(x), expected, rtol=1e-5, atol=1e-5)
        m.export(tmp_path / "model.onnx")
    exported = InferenceModel.load(tmp_path / "model.onnx")
    np.testing.assert_allclose(exported.predict(x), expected, rtol=1e-5, atol=1e-5)


def test_a_non_finite_step_leaves_the_layer_state_alone():
    x, y = data()
    with model() as m:
        m.compile(optimizer=SGD(0.01), loss="mse", engine="portable")
        m.fit(x, y, epochs=1, batch_size=40, verbose=0)
        before = m.get_weights()["centering_1.moving_mean"]
        bad = y.copy()
        bad[0, 0] = np.nan
        m._trainer.engine.train_step(x, bad)
        np.testing.assert_array_equal(m.get_weights()["centering_1.moving_mean"], before)


def test_a_resumed_run_continues_the_layer_state_exactly(tmp_path):
    x, y = data()
    with model() as straight:
        straight.compile(optimizer="adam", loss="mse", engine="portable")
        straight.fit(x, y, epochs=2, batch_size=10, verbose=0, seed=1)
        expected = straight.get_weights()
    with model() as first:
        first.compile(optimizer="adam", loss="mse", engine="portable")
        first.fit(x, y, epochs=1, batch_size=10, verbose=0, seed=1)
        first.save(tmp_path / "saved", save_optimizer_state=True)
    with load_model(tmp_path / "saved") as resumed:
        resumed.fit(x, y, epochs=1, batch_size=10, verbose=0, seed=1)  # epochs continue from the saved count
        for name, value in expected.items():
            np.testing.assert_array_equal(resumed.get_weights()[name], value, err_msg=name)


@pytest.mark.training
def test_the_ort_training_engine_refuses_layer_state():
    with (
        model() as m,
        pytest.raises(UnsupportedError, match=r"ort-training engine cannot train.*centering_1.moving_mean"),
    ):
        m.compile(optimizer="adam", loss="mse", engine="ort-training")
