"""The ORT-training backend: artifacts load in ORT 1.19, gradients and one Adam/SGD step match numpy."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
import reference as ref

from onnxtrain import Sequential, generate_artifacts
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import AveragePooling2D, Conv2D, Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.optimizers import SGD, Adam

pytestmark = pytest.mark.training  # every test here runs onnxruntime-training (none on Python 3.13+)
ORT = "ort-training"


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


# --- AveragePool: ORT 1.19's AveragePoolGrad sizes its output by the graph's static shape --------------------
_POOL_AFTER_A_WEIGHT = """
import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnxtrain import from_onnx
from onnxtrain.errors import UnsupportedError
from onnxtrain.optimizers import SGD

nodes = [
    helper.make_node("Conv", ["x", "k"], ["xs"], name="/conv/Conv"),
    helper.make_node("AveragePool", ["xs"], ["p"], name="/pool/AveragePool", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Flatten", ["p"], ["f"]),
    helper.make_node("Gemm", ["f", "w", "b"], ["logits"]),
]
weights = {"k": np.ones((1, 1, 1, 1)), "w": np.random.default_rng(0).normal(size=(4, 3)), "b": np.zeros(3)}
graph = helper.make_graph(
    nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
    [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in weights.items()],
)
proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
proto.ir_version = 8
x, y = np.random.default_rng(1).random((4, 1, 4, 4), dtype=np.float32), np.array([0, 1, 2, 0])
for engine in ("ort-training", "portable"):
    model = from_onnx(proto, trainable=["k", "w", "b"])  # k: one element, an exporter's constant unless named
    try:
        model.compile(optimizer=SGD(learning_rate=0.1), loss="softmax_cross_entropy_with_logits", engine=engine)
        model.fit(x, y, batch_size=4, verbose=0)
        print(engine, "trained", flush=True)
    except UnsupportedError as e:
        print(engine, "refused:", e, flush=True)
"""


@pytest.mark.slow  # two child processes: 2.3 s
def test_an_average_pool_after_a_trainable_weight_is_refused_instead_of_killing_the_process():
    """ORT's first training step died with SIGFPE (or failed with "Can broadcast 0 by 0 or 1"); the graph runs in a
    child process, so that a regression fails this test rather than ending pytest."""
    run = subprocess.run([sys.executable, "-c", _POOL_AFTER_A_WEIGHT], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit status {run.returncode}: {run.stderr[-2000:]}"
    refused, trained = run.stdout.strip().splitlines()
    assert re.fullmatch(
        r"ort-training refused: ONNX Runtime training 1\.19 cannot differentiate the AveragePool node "
        r"'/pool/AveragePool' of the imported graph \(here '.*'\): its AveragePoolGrad kernel sizes the gradient by "
        r"the input shape known when the graph is built, here \['batch', 1, 4, 4\], .* Compile with "
        r"engine='portable', which trains AveragePool in every form\.",
        refused,
    )
    assert trained == "portable trained"


def test_an_average_pool_layer_after_a_convolution_is_refused_at_compile():
    model = Sequential.of(Input(4, 4, 1), Conv2D(2, 1), AveragePooling2D(2), Flatten(), Dense(3), seed=0)
    with pytest.raises(
        UnsupportedError, match=r"the AveragePool node 'average_pooling2d_1\.\w+': .*engine='portable'"
    ) as caught:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, engine=ORT)
    assert str(caught.value).count("engine='portable'") == 1


def test_an_average_pool_reading_the_input_builds_no_pool_gradient_and_trains():
    model = Sequential.of(Input(4, 4, 1), AveragePooling2D(2), Flatten(), Dense(3), seed=0)
    x = np.random.default_rng(0).random((8, 4, 4, 1), dtype=np.float32)
    with model:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, engine=ORT)
        before = model.get_weights()
        history = model.fit(x, np.arange(8) % 3, batch_size=4, verbose=0)
        after = model.get_weights()
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.array_equal(before[name], after[name]) for name in before)  # the Dense after the pool trained


def _pool_input(dims: list[int | str]) -> onnx.TypeProto:
    return onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, dims)


@pytest.mark.parametrize(
    ("dims", "attributes", "flaw"),
    [
        (["batch", 1, 4, 4], {}, r"input shape known when the graph is built, here \['batch', 1, 4, 4\]"),
        ([2, 1, 4, 4], {}, None),  # a static shape (e.g. behind a constant Reshape): ORT's gradient is right
        ([2, 1, 4, 4], {"pads": [1, 1, 1, 1], "count_include_pad": 1, "ceil_mode": 1}, None),
        ([2, 1, 4, 4], {"auto_pad": "SAME_UPPER"}, "ignores auto_pad"),
        ([2, 1, 4, 4], {"dilations": [2, 2]}, "ignores dilations"),
        ([2, 1, 4, 4, 4], {}, "wrong for 3-D windows"),
    ],
)
def test_the_average_pool_forms_ort_training_gets_wrong(dims, attributes, flaw):
    from onnxtrain._ort_training_limits import _average_pool_gradient_flaw

    kernel = [2] * (len(dims) - 2)
    node = onnx.helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=kernel, **attributes)
    found = _average_pool_gradient_flaw(node, _pool_input(dims).tensor_type)
    assert found is None if flaw is None else re.search(flaw, found)


# --- the gradient builder's refusals of an op's form, in onnxtrain's words -----------------------------------
def _foreign(nodes: list, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """x [N, 1, 4] -> `nodes` -> logits [N, 3], with float32 `weights` as initializers."""
    graph = onnx.helper.make_graph(
        nodes,
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 1, 4])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", 3])],
        [onnx.numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in weights.items()],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _trainable_exponent() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [
        onnx.helper.make_node("Flatten", ["x"], ["flat"]),
        onnx.helper.make_node("Sigmoid", ["flat"], ["positive"]),
        onnx.helper.make_node("Pow", ["positive", "exponent"], ["powered"], name="/act/Pow"),
        onnx.helper.make_node("MatMul", ["powered", "w"], ["logits"]),
    ]
    return _foreign(nodes, {"exponent": np.float32(2.0), "w": rng.normal(size=(4, 3))})


def _reflect_pad() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    pads = onnx.helper.make_tensor("pads", onnx.TensorProto.INT64, [6], [0, 0, 1, 0, 0, 1])
    nodes = [
        onnx.helper.make_node("Mul", ["x", "scale"], ["scaled"]),
        onnx.helper.make_node("Constant", [], ["pads"], value=pads),
        onnx.helper.make_node("Pad", ["scaled", "pads"], ["padded"], name="/pad/Pad", mode="reflect"),
        onnx.helper.make_node("Flatten", ["padded"], ["flat"]),
        onnx.helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    return _foreign(nodes, {"scale": np.ones(4), "w": rng.normal(size=(6, 3))})  # (a 1-element one is frozen)


@pytest.mark.parametrize(
    ("make", "trainable", "message"),
    [
        (
            _trainable_exponent,
            ["*"],
            r"the Pow node '/act/Pow' of the imported graph \(here '.*'\): ONNX Runtime has no gradient for Pow's "
            r"exponent \(input 1\), and here it depends on the trainable 'exponent', so the ort-training engine "
            r"cannot train this model\. Compile with engine='portable', which differentiates the exponent too, or "
            r"freeze 'exponent'\.$",
        ),
        (
            _reflect_pad,
            True,
            r"the Pad node '/pad/Pad' of the imported graph \(here '.*'\): ONNX Runtime's Pad gradient takes "
            r"mode='constant' only, not mode='reflect', so the ort-training engine cannot train this model\. "
            r"Compile with engine='portable', which trains every Pad mode\.$",
        ),
    ],
)
def test_a_form_the_gradient_builder_refuses_is_explained_without_opset_advice(make, trainable, message):
    from onnxtrain import from_onnx

    model = from_onnx(make(), trainable=trainable)
    with pytest.raises(UnsupportedError, match=message) as caught:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, engine=ORT)
    assert "opset" not in str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError) and "gradient_builder" in str(caught.value.__cause__)
    with from_onnx(make(), trainable=trainable) as model:  # what the message advises trains
        before = model.get_weights()
        model.compile(optimizer=SGD(learning_rate=0.5), loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
        x = np.random.default_rng(1).normal(size=(8, 1, 4)).astype(np.float32)
        model.fit(x, np.arange(8) % 3, batch_size=8, verbose=0)
        for name, value in model.get_weights().items():
            assert not np.array_equal(value, before[name]), name
