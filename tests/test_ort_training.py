"""The ORT-training backend: artifacts load in ORT 1.19, gradients and one Adam/SGD step match numpy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import reference as ref

from onnxtrain import Sequential, generate_artifacts
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.optimizers import SGD, Adam

pytestmark = pytest.mark.training  # every test here runs onnxruntime-training (none on Python 3.13+)


def small_model(seed: int = 1) -> Sequential:
    return Sequential.of(Input(4, 3), Flatten(), Dense(5), Dense(3, activation="linear"), seed=seed)


def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4, 3)).astype(np.float32), rng.integers(0, 3, 8)


def test_artifacts_have_loadable_ir_and_expected_io(tmp_path):
    model = small_model()
    artifacts = generate_artifacts(model, Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), tmp_path)
    for path in (artifacts.training_model, artifacts.eval_model, artifacts.optimizer_model):
        assert onnx.load(path).ir_version <= 10
    training = onnx.load(artifacts.training_model)
    assert [i.name for i in training.graph.input][:2] == ["input", "labels"]
    assert training.graph.input[1].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [o.name for o in training.graph.output][:2] == ["loss", "logits"]
    assert artifacts.trainable == ("dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias")
    assert artifacts.checkpoint.is_file()


def test_generate_artifacts_needs_loss_and_optimizer_for_an_uncompiled_model(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"needs loss=\.\.\. and optimizer=\.\.\."):
        generate_artifacts(small_model(), directory=tmp_path)


def test_gradients_match_numpy_backward():
    x, y = batch()
    with small_model() as model:
        model.compile(optimizer=Adam(), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, engine="ort-training")
        weights = model.get_weights()
        expected_loss, expected = ref.mlp_gradients(weights, x, y, ["dense_1", "dense_2"], ["relu", "linear"])
        engine = model._trainer.engine
        loss, _ = engine._module(x, y)
        assert float(loss) == pytest.approx(expected_loss, rel=1e-5)
        for name, grad in expected.items():
            np.testing.assert_allclose(engine._state.parameters[name].grad, grad, rtol=1e-4, atol=1e-6)


def test_adam_steps_match_numpy_adam_with_kotlindl_epsilon():
    x, y = batch()
    with small_model() as model:
        model.compile(optimizer=Adam(learning_rate=0.01), loss="softmax_cross_entropy_with_logits")
        w = {k: v.astype(np.float64) for k, v in model.get_weights().items()}
        m = {k: np.zeros_like(v) for k, v in w.items()}
        v2 = {k: np.zeros_like(v) for k, v in w.items()}
        for t in (1, 2, 3):
            _, grads = ref.mlp_gradients(w, x, y, ["dense_1", "dense_2"], ["relu", "linear"])
            for k in w:
                w[k], m[k], v2[k] = ref.adam_step(w[k], grads[k], m[k], v2[k], t, 0.01, 0.9, 0.999, 1e-7)
            model._trainer.engine.train_step(x, y)
        for k, value in model.get_weights().items():
            np.testing.assert_allclose(value, w[k], rtol=1e-4, atol=2e-6)


def test_sgd_step_matches_numpy():
    x, y = batch()
    with small_model() as model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
        before = model.get_weights()
        _, grads = ref.mlp_gradients(before, x, y, ["dense_1", "dense_2"], ["relu", "linear"])
        model._trainer.engine.train_step(x, y)
        for k, value in model.get_weights().items():
            np.testing.assert_allclose(value, before[k] - 0.1 * grads[k], rtol=1e-5, atol=1e-6)


def test_frozen_layer_is_not_updated():
    x, y = batch()
    model = Sequential.of(Input(4, 3), Flatten(), Dense(5, trainable=False), Dense(3), seed=3)
    with model:
        model.compile(optimizer=Adam(learning_rate=0.05))
        before = model.get_weights()
        model._trainer.engine.train_step(x, y)
        after = model.get_weights()
    np.testing.assert_array_equal(after["dense_1.kernel"], before["dense_1.kernel"])
    assert not np.array_equal(after["dense_2.kernel"], before["dense_2.kernel"])


@pytest.mark.slow
def test_training_api_import_does_not_import_torch():
    code = "import sys, onnxtrain._ort_training as o; o._training_api(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_non_finite_loss_skips_the_update():
    x, y = batch()
    with small_model() as model:
        model.compile(optimizer=Adam())
        before = model.get_weights()
        bad = x.copy()
        bad[0, 0, 0] = np.inf
        loss, _ = model._trainer.engine.train_step(bad, y)
        assert not np.isfinite(loss)
        for k, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[k])


def test_a_failing_block_replays_its_native_stderr_without_onnx_runtime_s_info_lines(capfd):
    """The gradient builder logs every graph transformer at INFO level; when the block fails, only the rest of
    what it wrote comes back (the error names its cause itself)."""
    import os

    from onnxtrain import _ort_training

    capfd.readouterr()
    with pytest.raises(RuntimeError, match="the block failed"), _ort_training._native_stderr_captured():
        os.write(2, b"2026 [I:onnxruntime:Default, graph_transformer.cc:15 Apply] GraphTransformer x modified: 0\n")
        os.write(2, b"2026 [W:onnxruntime:Default, a warning worth reading]\n")
        raise RuntimeError("the block failed")
    err = capfd.readouterr().err
    assert "a warning worth reading" in err and "GraphTransformer" not in err
