"""The rewrite of ONNX Runtime training graphs for its CPU kernels: `ReluGrad` as Greater, Cast and Mul gives the
same gradients (numpy on a graph of its own; ONNX Runtime's own kernel, bit for bit, where a training build is
installed)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper
import onnxruntime
import pytest

from onnxtrain import Sequential, _ort_training, _ort_training_session, generate_artifacts
from onnxtrain import losses as loss_module
from onnxtrain._ort_rewrites import replace_relu_gradients
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.optimizers import Adam


def relu_grad_model() -> onnx.ModelProto:
    """dX = ReluGrad(dY, Y) (com.microsoft), then a Neg that the rewrite must keep."""
    tensor = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("ReluGrad", ["dy", "y"], ["dx"], name="relu_grad", domain="com.microsoft"),
            onnx.helper.make_node("Neg", ["dx"], ["neg_dx"], name="neg"),
        ],
        "relu_grad",
        [onnx.helper.make_tensor_value_info(name, tensor, [6]) for name in ("dy", "y")],
        [onnx.helper.make_tensor_value_info(name, tensor, [6]) for name in ("dx", "neg_dx")],
    )
    opsets = [onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("com.microsoft", 1)]
    return onnx.helper.make_model(graph, opset_imports=opsets, ir_version=8)


def test_relu_grad_becomes_standard_operators_that_pass_dy_where_y_is_positive():
    model = relu_grad_model()
    replace_relu_gradients(model)
    assert [node.op_type for node in model.graph.node] == ["Greater", "Cast", "Mul", "Neg"]
    onnx.checker.check_model(model)
    dy = np.array([1.5, -2.0, 3.0, -4.0, 0.25, -0.5], np.float32)
    y = np.array([2.0, 1.0, 0.0, -1.0, -3.0, 1e-30], np.float32)  # y == 0 passes no gradient, as ReLU's rule
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    dx, neg_dx = session.run(None, {"dy": dy, "y": y})
    expected = np.where(y > 0, dy, np.float32(0))
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(neg_dx, -expected)


def test_a_graph_without_relu_grad_is_left_as_it_was():
    model = relu_grad_model()
    del model.graph.node[0]
    model.graph.node[0].input[0] = "dy"
    before = model.SerializeToString()
    replace_relu_gradients(model)
    assert model.SerializeToString() == before


@pytest.mark.training
def test_relu_gradients_are_standard_operators_not_the_slow_relugrad_kernel(tmp_path):
    def small_model() -> Sequential:
        return Sequential.of(Input(4, 3), Flatten(), Dense(5), Dense(3, activation="linear"), seed=1)

    artifacts = generate_artifacts(small_model(), Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS, Adam(), tmp_path)
    ops = [node.op_type for node in onnx.load(artifacts.training_model).graph.node]
    assert "ReluGrad" not in ops
    assert {"Greater", "Cast", "Mul"} <= set(ops)
    sce = loss_module.get("softmax_cross_entropy_with_logits")
    for_cuda = _ort_training.write_artifacts(small_model().layers, sce, Adam(), tmp_path / "cuda", for_cpu=False)
    assert "ReluGrad" in [node.op_type for node in onnx.load(for_cuda.training_model).graph.node]


@pytest.mark.training
@pytest.mark.parametrize("activation", ["relu", "elu", "selu"])  # ORT's ELU and SELU gradients use ReluGrad too
def test_rewritten_relu_gradients_train_bit_for_bit_like_onnx_runtimes_relugrad(tmp_path, activation):
    sce, rng = loss_module.get("softmax_cross_entropy_with_logits"), np.random.default_rng(4)
    x = rng.normal(size=(40, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 40)

    def layers() -> list:
        return Sequential.of(Input(4, 3), Flatten(), Dense(5, activation=activation), Dense(3), seed=1).layers

    rewritten = _ort_training.write_artifacts(layers(), sce, Adam(learning_rate=0.05), tmp_path / "a")
    original = _ort_training.write_artifacts(layers(), sce, Adam(learning_rate=0.05), tmp_path / "b", for_cpu=False)
    assert "ReluGrad" in [node.op_type for node in onnx.load(original.training_model).graph.node]
    engines = [_ort_training_session.OrtTrainingEngine(a, Adam(learning_rate=0.05)) for a in (rewritten, original)]
    for step in range(20):
        rows = slice(step % 4 * 10, step % 4 * 10 + 10)
        losses = [engine.train_step(x[rows], y[rows])[0] for engine in engines]
        assert losses[0] == losses[1]
    weights = [engine.get_weights() for engine in engines]
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    for engine in engines:
        engine.close()
