"""A model or layer holding an imported ONNX graph of a newer opset than the default (torch.onnx's dynamo export: opset
20) called on numpy arrays (`model(x)`, Keras' eager call, `layers/_eager.py`): its one-off graph is at the opset
compile would choose, the imported graph's, as predict runs it, never the default 17 the graph cannot be downgraded
to; against torch's logits (tests/data/onnx_models/cnn_dynamo.npz) and numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import Model, from_onnx
from onnxtrain.layers import Dense, Input, OnnxLayer
from onnxtrain.optimizers import SGD

FIXTURES = Path(__file__).parent / "data" / "onnx_models"
RNG = np.random.default_rng(0)
KERNEL, BIAS = RNG.normal(0, 0.5, (5, 6)).astype(np.float32), RNG.normal(0, 0.1, 5).astype(np.float32)
X = RNG.normal(size=(4, 6)).astype(np.float32)


def _hidden(opset: int) -> onnx.ModelProto:
    """[N, 6] -> Gemm 6-5 -> Relu, at `opset`."""
    nodes = [
        helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["hidden"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hidden",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(KERNEL, "fc.weight"), numpy_helper.from_array(BIAS, "fc.bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model


HIDDEN = np.maximum(X @ KERNEL.T + BIAS, 0)


def test_an_uncompiled_dynamo_import_called_on_arrays_computes_torch_s_logits_as_predict():
    data = np.load(FIXTURES / "cnn_dynamo.npz")
    x, logits = data["x"][0], data["logits_0"]  # torch's logits of the exported (initial) weights
    model = from_onnx(FIXTURES / "cnn_dynamo.onnx")
    assert onnx.load(FIXTURES / "cnn_dynamo.onnx").opset_import[0].version == 20
    called = model(x)
    np.testing.assert_allclose(called, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(called, model.predict(x), rtol=1e-6, atol=1e-6)


def test_an_imported_layer_of_a_newer_opset_called_on_arrays_runs_at_its_opset():
    np.testing.assert_allclose(OnnxLayer(_hidden(20))(X), HIDDEN, rtol=1e-6, atol=1e-6)


def test_a_model_nesting_an_imported_graph_called_on_arrays_runs_at_its_opset():
    inner = Input(6)
    block = Model(inner, Dense(3, activation="linear")(OnnxLayer(_hidden(19), name="imported")(inner)), seed=0)
    outer = Input(6)
    model = Model(outer, block(outer))
    kernel, bias = block.layers[-1].get_weights()
    np.testing.assert_allclose(model(X), HIDDEN @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_the_newest_imported_opset_among_a_model_s_layers_is_the_call_s():
    inputs = Input(6)
    old, new = OnnxLayer(_hidden(18), name="old"), OnnxLayer(_hidden(20), name="new")
    joined = Dense(2, activation="linear")(Dense(6, activation="linear")(old(inputs)))
    model = Model(inputs, [new(inputs), joined], seed=0)
    first, second = model(X)
    np.testing.assert_allclose(first, HIDDEN, rtol=1e-6, atol=1e-6)
    assert second.shape == (4, 2)


def test_a_compiled_model_s_call_on_its_logits_runs_at_the_imported_opset_too():
    """A Dense head at its default activation under a loss on logits: the call emits the logits (a copy of the
    graph, `_model_prediction.call_on_data`), at the imported graph's opset."""
    inputs = Input(6)
    head = Dense(3)
    model = Model(inputs, head(OnnxLayer(_hidden(20), name="base")(inputs)), seed=0)
    model.compile(optimizer=SGD(learning_rate=0.1), loss="softmax_cross_entropy_with_logits")
    kernel, bias = head.get_weights()
    np.testing.assert_allclose(model(X), HIDDEN @ kernel + bias, rtol=1e-5, atol=1e-6)
    model.close()
