"""LoRA on torch's dynamo form of nn.Linear, Transpose(W, perm=[1, 0]) -> MatMul: adapted (a pair in the product's
layout), trained, and merged back into W as the transpose of the pair's product; products it cannot adapt warn."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import lora
from onnxtrain.adapters import add_adapters, merge_adapters
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(11)
X = RNG.normal(size=(6, 2, 4)).astype(np.float32)  # [batch, tokens, features]: MatMul, not Gemm
W = RNG.normal(size=(3, 4)).astype(np.float32)  # torch's (out, in)


def linear(extra: str | None = None) -> onnx.ModelProto:
    """x [N, 2, 4] -> MatMul(x, Transpose(W)) -> ReduceMean over tokens -> logits [N, 3]. `extra`: "reshape" adds a
    MatMul whose weight comes through a Reshape, "gather" has a Gather read W too (a tied embedding)."""
    nodes = [
        helper.make_node("Transpose", ["W"], ["Wt"], name="node_Transpose_2", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "Wt"], ["h"], name="node_MatMul_3"),
        helper.make_node("ReduceMean", ["h"], ["logits"], name="node_mean", axes=[1], keepdims=0),
    ]
    weights = {"W": W}
    if extra == "reshape":
        weights["V"] = RNG.normal(size=(12,)).astype(np.float32)
        nodes[2:2] = [
            helper.make_node("Reshape", ["V", "shape"], ["Vm"], name="node_Reshape"),
            helper.make_node("MatMul", ["h", "Vm"], ["h2"], name="node_MatMul_5"),
        ]
        nodes[-1].input[0] = "h2"
    if extra == "gather":
        nodes.insert(0, helper.make_node("Gather", ["W", "zero"], ["row"], name="node_embedding"))
        nodes.insert(1, helper.make_node("Unsqueeze", ["row", "zero"], ["rows"]))
        nodes.insert(2, helper.make_node("Add", ["x", "rows"], ["x2"]))
        nodes[4].input[0] = "x2"
    initializers = [numpy_helper.from_array(a, n) for n, a in weights.items()]
    initializers += [numpy_helper.from_array(np.array([3, 3], np.int64), "shape")]
    initializers += [numpy_helper.from_array(np.array([0], np.int64), "zero")]
    graph = helper.make_graph(
        nodes,
        "dynamo_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_a_transposed_weight_gets_a_pair_in_the_product_s_layout_and_merges_into_w() -> None:
    adapted = add_adapters(linear(), rank=2, alpha=4)
    arrays = {t.name: numpy_helper.to_array(t) for t in adapted.graph.initializer}
    assert (arrays["W.lora_A"].shape, arrays["W.lora_B"].shape) == ((4, 2), (2, 3))
    b = RNG.normal(size=(2, 3)).astype(np.float32)  # as if trained
    for tensor in adapted.graph.initializer:
        if tensor.name == "W.lora_B":
            tensor.CopyFrom(numpy_helper.from_array(b, "W.lora_B"))
    expected = (X @ (W.T + 2 * arrays["W.lora_A"] @ b)).mean(1)
    np.testing.assert_allclose(_run(adapted, X), expected, rtol=1e-5, atol=1e-5)
    merged = merge_adapters(adapted)
    assert [n.op_type for n in merged.graph.node] == ["Transpose", "MatMul", "ReduceMean"]
    merged_w = next(numpy_helper.to_array(t) for t in merged.graph.initializer if t.name == "W")
    np.testing.assert_allclose(merged_w, W + 2 * (arrays["W.lora_A"] @ b).T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_run(merged, X), expected, rtol=1e-5, atol=1e-5)


def test_lora_trains_the_transposed_product_and_nodes_select_it_by_weight_name(tmp_path: object) -> None:
    model = lora(linear(), rank=2, alpha=4, nodes=["W"])
    model.compile(optimizer=SGD(0.5), loss="softmax_cross_entropy_with_logits")
    before = model.predict_softly(X)
    np.testing.assert_allclose(before, _softmax((X @ W.T).mean(1)), rtol=1e-5, atol=1e-6)
    model.fit(X, np.array([0, 1, 2, 0, 1, 2]), epochs=3, batch_size=6, verbose=0)
    assert np.abs(model.get_weights()["W.lora_B"]).max() > 0
    merged = onnx.load(model.export(f"{tmp_path}/merged.onnx", merge_adapters=True))
    np.testing.assert_allclose(_softmax(_run(merged, X)), model.predict_softly(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("reshape", r"MatMul 'node_MatMul_5': its operand 'V' is read through Reshape 'node_Reshape'"),
        ("gather", r"MatMul 'node_MatMul_3': its weight 'W' is also read by Gather 'node_embedding'"),
    ],
)
def test_products_of_a_float_weight_left_without_adapters_warn(extra: str, match: str) -> None:
    with pytest.warns(UserWarning, match=match):
        add_adapters(linear(extra), rank=2) if extra == "reshape" else _adapt_nothing(linear(extra))


def _adapt_nothing(proto: onnx.ModelProto) -> None:
    with pytest.raises(ValueError, match="found no node to adapt"):
        add_adapters(proto, rank=2)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
