"""An imported model's export keeps the file's input and output names (a model with a new head keeps onnxtrain's),
and a graph of several outputs imports as a model of several outputs, each trained by its own loss (against a
numpy SGD step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import InferenceModel, Sequential, from_onnx, load_model, lora
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.foreign._import import imported_model
from onnxtrain.layers import Dense, Input, OnnxLayer
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(5)
X = RNG.normal(size=(8, 5)).astype(np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])
SCORES = RNG.normal(size=(8, 1)).astype(np.float32)
WEIGHTS = {
    "body.weight": RNG.normal(size=(6, 5)).astype(np.float32),
    "body.bias": RNG.normal(size=6).astype(np.float32) * 0.1,
    "cls.weight": RNG.normal(size=(3, 6)).astype(np.float32),
    "cls.bias": RNG.normal(size=3).astype(np.float32) * 0.1,
    "reg.weight": RNG.normal(size=(1, 6)).astype(np.float32),
    "reg.bias": RNG.normal(size=1).astype(np.float32) * 0.1,
}


def two_heads(outputs: tuple[str, ...] = ("logits", "score"), input_name: str = "x") -> onnx.ModelProto:
    """x [N, 5] -> Gemm body -> Relu -> Gemm cls: `outputs[0]` [N, 3], and Gemm reg: `outputs[1]` [N, 1] (torch's
    export of a module returning (logits, score), input_names=["x"])."""
    nodes = [
        helper.make_node("Gemm", [input_name, "body.weight", "body.bias"], ["h"], name="/body/Gemm", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="/Relu"),
        helper.make_node("Gemm", ["r", "cls.weight", "cls.bias"], [outputs[0]], name="/cls/Gemm", transB=1),
        helper.make_node("Gemm", ["r", "reg.weight", "reg.bias"], [outputs[-1]], name="/reg/Gemm", transB=1),
    ]
    shapes = dict(zip(outputs, (3, 1)[: len(outputs)], strict=True))
    graph = helper.make_graph(
        nodes[: 3 if len(outputs) == 1 else 4],
        "two_heads",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", shapes[name]]) for name in outputs],
        [numpy_helper.from_array(a, n) for n, a in WEIGHTS.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_graph_of_two_outputs_imports_as_a_model_of_two_outputs() -> None:
    model = from_onnx(two_heads())
    assert [layer.name for layer in model.layers][-2:] == ["logits_output", "score"]
    r = np.maximum(X @ WEIGHTS["body.weight"].T + WEIGHTS["body.bias"], 0)
    model.compile(loss={"logits_output": "softmax_cross_entropy_with_logits", "score": "mse"})
    decided, scores = model.predict(X)
    np.testing.assert_array_equal(decided, (r @ WEIGHTS["cls.weight"].T + WEIGHTS["cls.bias"]).argmax(1))
    np.testing.assert_allclose(scores, r @ WEIGHTS["reg.weight"].T + WEIGHTS["reg.bias"], rtol=1e-5, atol=1e-6)


def test_lora_adapts_a_model_of_two_outputs_keeping_both() -> None:
    base = from_onnx(two_heads())
    with pytest.warns(UserWarning, match=r"rank 2 exceeds .* 'reg.weight' \(1, 6\)"):  # the score head's 1 x 6
        adapted = lora(base, rank=2)
    assert [layer.name for layer in adapted.layers][-2:] == ["logits_output", "score"]
    assert sorted(adapted.get_weights()) == sorted(
        [*WEIGHTS, *(f"{w}.lora_{ab}" for w in ("body.weight", "cls.weight", "reg.weight") for ab in "AB")]
    )
    for model in (base, adapted):
        model.compile(loss={"logits_output": "softmax_cross_entropy_with_logits", "score": "mse"})
    for before, after in zip(base.predict(X), adapted.predict(X), strict=True):  # B starts at zero
        np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


def test_each_output_trains_with_its_own_loss_as_numpy_computes_it() -> None:
    model = from_onnx(two_heads(), trainable=["cls.*", "reg.*"])
    model.compile(
        optimizer=SGD(0.1),
        loss={"logits_output": "softmax_cross_entropy_with_logits", "score": "mse"},
        loss_weights={"logits_output": 1.0, "score": 0.5},
    )
    model.fit(X, [LABELS, SCORES], epochs=1, batch_size=len(X), shuffle=False, verbose=0)
    r = np.maximum(X @ WEIGHTS["body.weight"].T + WEIGHTS["body.bias"], 0)
    logits = r @ WEIGHTS["cls.weight"].T + WEIGHTS["cls.bias"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g_cls = (p - np.eye(3)[LABELS]) / len(X)
    g_reg = 0.5 * 2 * (r @ WEIGHTS["reg.weight"].T + WEIGHTS["reg.bias"] - SCORES) / len(X)
    expected = {
        "cls.weight": WEIGHTS["cls.weight"] - 0.1 * g_cls.T @ r,
        "cls.bias": WEIGHTS["cls.bias"] - 0.1 * g_cls.sum(0),
        "reg.weight": WEIGHTS["reg.weight"] - 0.1 * g_reg.T @ r,
        "reg.bias": WEIGHTS["reg.bias"] - 0.1 * g_reg.sum(0),
    }
    found = model.get_weights()
    for name, value in expected.items():
        np.testing.assert_allclose(found[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(found["body.weight"], WEIGHTS["body.weight"])


def test_two_outputs_export_and_reload_under_the_file_s_names(tmp_path: Path) -> None:
    model = from_onnx(two_heads())
    model.compile(optimizer=SGD(0.1), loss={"logits_output": "softmax_cross_entropy_with_logits", "score": "mse"})
    model.fit(X, [LABELS, SCORES], epochs=1, batch_size=4, verbose=0)
    session = _session(model.export(tmp_path / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x"]
    assert [o.name for o in session.get_outputs()] == ["logits", "logits_probabilities", "score"]
    logits, _, score = session.run(None, {"x": X})
    decided, scores = model.predict(X)
    np.testing.assert_array_equal(logits.argmax(1), decided)
    np.testing.assert_allclose(score, scores, rtol=1e-6, atol=1e-6)
    model.save(tmp_path / "saved")
    np.testing.assert_allclose(load_model(tmp_path / "saved").predict(X)[1], scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(InferenceModel.load(tmp_path / "model.onnx").predict(X)[1], scores, atol=1e-6)


@pytest.mark.parametrize(
    ("output", "expected"), [("out", ["out", "out_probabilities"]), ("logits", ["logits", "probabilities"])]
)
def test_an_imported_model_s_export_keeps_the_file_s_names(output: str, expected: list[str], tmp_path: Path) -> None:
    model = from_onnx(two_heads((output,), input_name="x"))
    model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits")
    model.fit(X, LABELS, epochs=1, verbose=0)
    path = model.export(tmp_path / "model.onnx")
    session = _session(path)
    assert ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]) == (["x"], expected)
    np.testing.assert_allclose(session.run(None, {"x": X})[1], model.predict_softly(X), rtol=1e-6, atol=1e-6)
    deployed = InferenceModel.load(path)  # tells the companion from the model's own output
    np.testing.assert_allclose(deployed.predict_softly(X), model.predict_softly(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(deployed.predict(X), model.predict(X))
    model.save(tmp_path / "saved")
    assert [i.name for i in _session(tmp_path / "saved" / "model.onnx").get_inputs()] == ["x"]


def test_a_model_with_a_new_head_exports_onnxtrain_s_names(tmp_path: Path) -> None:
    base = OnnxLayer(two_heads(("logits",)), trainable=False, name="base")
    model = Sequential.of(Input(5), base, Dense(2, activation="linear", name="head"))
    model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits")
    session = _session(model.export(tmp_path / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]


def test_the_finetune_command_and_onnx_layer_take_one_output() -> None:
    with pytest.raises(InvalidArgumentError, match=r"finetune expects a graph with one output.*--outputs"):
        imported_model(two_heads(), trainable=None, frozen=None, name="m", caller="finetune")
    with pytest.raises(InvalidArgumentError, match=r"2 outputs \['logits', 'score'\].*outputs=\.\.\."):
        OnnxLayer(two_heads())
