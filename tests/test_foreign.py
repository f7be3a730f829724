"""from_onnx and OnnxLayer: import, trainable/frozen selection, cut, BatchNorm and Dropout modes, save/load, export.

The graphs are made here with onnx.helper (as an exporter writes them: weights as initializers, a symbolic batch
dimension, an int shape initializer); references are numpy's, ONNX Runtime running the original graph, and
torch's weights after 5 SGD steps where the fixtures of tests/data/onnx_models/ exist.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gradcheck import torch_flatten_from_axis_2
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import from_onnx, load_model, lora
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelFileError, UnsupportedError
from onnxtrain.foreign import _graph
from onnxtrain.layers import Dense, Input, OnnxLayer
from onnxtrain.model import Model
from onnxtrain.optimizers import SGD
from onnxtrain.sequential import Sequential

FIXTURES = Path(__file__).parent / "data" / "onnx_models"
LOSS = "softmax_cross_entropy_with_logits"


def _model(nodes, inputs, outputs, initializers, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "foreign", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _mlp(seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """[batch, 2, 3] -> Reshape (int shape initializer) -> Gemm 6-5, Relu -> MatMul 5-3 + Add: logits."""
    rng = np.random.default_rng(seed)
    arrays = {
        "fc1.weight": rng.normal(0, 0.5, (5, 6)).astype(np.float32),
        "fc1.bias": rng.normal(0, 0.1, (5,)).astype(np.float32),
        "head.weight": rng.normal(0, 0.5, (5, 3)).astype(np.float32),
        "head.bias": np.zeros(3, np.float32),
    }
    initializers = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    initializers.append(numpy_helper.from_array(np.array([-1, 6], np.int64), "flat_shape"))
    nodes = [
        helper.make_node("Reshape", ["x", "flat_shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "head.weight"], ["mm"]),
        helper.make_node("Add", ["mm", "head.bias"], ["logits"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    return _model(nodes, [x], [y], initializers, opset)


def _data(n: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2, 3)).astype(np.float32), rng.integers(0, 3, n).astype(np.int64)


def _run(model: onnx.ModelProto, **feeds: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _sgd_step(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, lr: float) -> dict[str, np.ndarray]:
    """numpy's SGD step of `_mlp` on the mean softmax cross-entropy."""
    w1, b1, w2, b2 = (weights[k] for k in ("fc1.weight", "fc1.bias", "head.weight", "head.bias"))
    flat = x.reshape(len(x), -1)
    h = flat @ w1.T + b1
    hidden = np.maximum(h, 0)
    logits = hidden @ w2 + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_logits = (p - np.eye(3)[y]) / len(x)
    d_h = (d_logits @ w2.T) * (h > 0)
    grads = {"head.weight": hidden.T @ d_logits, "head.bias": d_logits.sum(0), "fc1.weight": d_h.T @ flat}
    grads["fc1.bias"] = d_h.sum(0)
    return {k: weights[k] - lr * grads[k] for k in weights}


# --- import -------------------------------------------------------------------------------------------------
def test_from_onnx_keys_weights_by_initializer_name_and_keeps_ints_out():
    proto = _mlp()
    model = from_onnx(proto)
    weights = model.get_weights()
    assert list(weights) == ["fc1.weight", "fc1.bias", "head.weight", "head.bias"]
    for tensor in proto.graph.initializer[:4]:
        np.testing.assert_array_equal(weights[tensor.name], numpy_helper.to_array(tensor))
    assert model.input_shape == (2, 3) and model.output_shape == (3,)
    assert model.param_counts() == (5 * 6 + 5 + 5 * 3 + 3, 0)


def test_the_export_computes_what_the_original_graph_computes():
    proto = _mlp()
    x, _ = _data()
    exported = from_onnx(proto).inference_model()
    np.testing.assert_allclose(_run(exported, input=x), _run(proto, x=x), rtol=1e-6, atol=1e-6)
    assert {t.name for t in exported.graph.initializer} >= {"fc1.weight", "head.bias"}


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_sgd_steps_equal_numpy(engine):
    proto = _mlp()
    model = from_onnx(proto)
    expected = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS, engine=engine)
    for step in range(3):
        x, y = _data(seed=step)
        model.fit(x, y, batch_size=len(x), shuffle=False, verbose=0)
        expected = _sgd_step(expected, x, y, 0.5)
    for name, value in model.get_weights().items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    model.close()


def test_a_file_with_external_data_is_read_from_its_folder(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(_mlp(), str(path), save_as_external_data=True, location="mlp.data", size_threshold=0)
    assert (tmp_path / "mlp.data").stat().st_size > 0
    np.testing.assert_array_equal(
        from_onnx(path).get_weights()["head.weight"], from_onnx(_mlp()).get_weights()["head.weight"]
    )


def test_external_data_outside_the_files_folder_is_refused(tmp_path):
    (tmp_path / "inner").mkdir()
    path = tmp_path / "inner" / "mlp.onnx"
    onnx.save(_mlp(), str(tmp_path / "mlp.onnx"), save_as_external_data=True, location="mlp.data", size_threshold=0)
    proto = onnx.load(str(tmp_path / "mlp.onnx"), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../mlp.data"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelFileError, match=r"mlp\.onnx"):
        from_onnx(path)


def test_an_older_opset_is_converted_to_the_builders():
    proto = _mlp(opset=13)
    x, _ = _data()
    exported = from_onnx(proto).inference_model()
    assert exported.opset_import[0].version == 17
    np.testing.assert_allclose(_run(exported, input=x), _run(proto, x=x), rtol=1e-6, atol=1e-6)


def test_an_older_opset_than_the_graphs_is_refused_with_the_opset_to_export_at():
    model = from_onnx(_mlp(opset=19))
    with pytest.raises(UnsupportedError, match=r"opset-19 graph, newer than the opset-17.*opset=19"):
        model.inference_model(opset=17)
    x, _ = _data()
    np.testing.assert_allclose(_run(model.inference_model(opset=19), input=x), _run(_mlp(opset=19), x=x), rtol=1e-6)


@pytest.mark.slow
def test_an_uncompiled_import_exports_and_saves_at_the_opset_compile_uses(tmp_path):
    """A dynamo export (opset 20) imported and never compiled: export and save's model.onnx are at opset 20 / IR 9
    as after compile (not the default 17, which the graph cannot be downgraded to), and predict what the compiled
    export and the original graph predict."""
    path = FIXTURES / "cnn_dynamo.onnx"
    x = np.load(FIXTURES / "cnn_dynamo.npz")["x"][0]
    model = from_onnx(path)
    exported = onnx.load(str(model.export(tmp_path / "model.onnx")))
    saved = onnx.load(str(model.save(tmp_path / "saved") / "model.onnx"))
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    compiled = model.inference_model()
    model.close()
    assert (compiled.opset_import[0].version, compiled.ir_version) == (20, 9)
    expected = _run(compiled, input=x)
    np.testing.assert_allclose(expected, _run(onnx.load(str(path)), input=x), rtol=1e-5, atol=1e-6)
    for proto in (exported, saved):
        assert (proto.opset_import[0].version, proto.ir_version) == (20, 9)
        np.testing.assert_allclose(_run(proto, input=x), expected, rtol=1e-6, atol=1e-6)


def test_shape_subgraphs_over_a_symbolic_batch_train():
    """TorchScript's flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape, the batch dimension symbolic."""
    w = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 3])
    proto = _model(
        nodes, [x_info], [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], initializers
    )
    model = from_onnx(proto)
    assert list(model.get_weights()) == ["w"] and model.output_shape == (3,)
    x, y = _data()
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    before = model.evaluate(x, y).loss
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.evaluate(x, y).loss < before
    model.close()


def test_an_output_shape_that_inference_cannot_give_comes_from_a_run(monkeypatch):
    """Shape -> ReduceProd -> Reshape: onnx's shape inference leaves both dims unknown (ORT's folding, which would
    make the target a constant, is turned off here); running the graph gives (6,)."""
    monkeypatch.setattr(_graph, "fold_shapes", lambda model: model)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=1),
        helper.make_node("ReduceProd", ["s"], ["p"], keepdims=1),
        helper.make_node("Concat", ["minus_one", "p"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Mul", ["flat", "scale"], ["scaled"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
        numpy_helper.from_array(np.full(6, 2.0, np.float32), "scale"),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    scaled = helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 6])
    model = from_onnx(_model(nodes, [x_info], [scaled], initializers), outputs=["flat"])
    assert model.output_shape == (6,)


def test_a_graph_of_two_inputs_is_a_model_of_two():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("MatMul", ["s", "w"], ["logits"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("a", "b")]
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    proto = _model(nodes, inputs, [logits], [numpy_helper.from_array(w, "w")])
    model = from_onnx(proto)
    a, b = rng.normal(size=(2, 5, 4)).astype(np.float32)
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    logits_ours = model.predict_softly([a, b])
    expected = _run(proto, a=a, b=b)
    softmax = np.exp(expected) / np.exp(expected).sum(1, keepdims=True)
    np.testing.assert_allclose(logits_ours, softmax, rtol=1e-5, atol=1e-6)
    model.close()


@pytest.mark.parametrize("elem", [TensorProto.INT64, TensorProto.INT32], ids=["int64", "int32"])
def test_an_int_input_keeps_its_type_and_reaches_the_graph_uncast(elem):
    """Token ids: the model's input keeps the graph's integer type, in training and in the export, with no Cast in
    front; arrays of ids are fed as integers (never scaled), and floats holding whole numbers are accepted."""
    table = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["embedding", "ids"], ["vectors"], axis=0),
        helper.make_node("ReduceMean", ["vectors"], ["logits"], axes=[1], keepdims=0),
    ]
    ids_info = helper.make_tensor_value_info("ids", elem, ["N", 4])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    proto = _model(nodes, [ids_info], [logits], [numpy_helper.from_array(table, "embedding")])
    model = from_onnx(proto, input_scale=0.5)
    exported = model.inference_model()
    assert exported.graph.input[0].name == "input" and exported.graph.input[0].type.tensor_type.elem_type == elem
    assert exported.graph.node[0].op_type == "Gather"  # reads the input itself
    ids = np.array([[1, 2, 3, 4], [9, 9, 0, 0]], onnx.helper.tensor_dtype_to_np_dtype(elem))
    np.testing.assert_allclose(_run(exported, input=ids), table[ids].mean(1), rtol=1e-6)
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    probabilities = model.predict_softly(ids.astype(np.float32))  # whole floats are ids too, never scaled
    logits = table[ids].mean(1)
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5)
    model.fit(ids, np.array([0, 1]), batch_size=2, verbose=0)
    changed = np.flatnonzero(np.abs(model.get_weights()["embedding"] - table).sum(1))
    assert changed.tolist() == [0, 1, 2, 3, 4, 9]  # the rows the ids read, and only those
    model.close()


# --- selection ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trainable", "frozen", "expected"),
    [
        (None, None, {"fc1.weight", "fc1.bias", "head.weight", "head.bias"}),
        (["head.*"], None, {"head.weight", "head.bias"}),
        (None, ["fc1.*"], {"head.weight", "head.bias"}),
        (["*.weight"], ["fc1.weight"], {"head.weight"}),
        (False, None, set()),
    ],
)
def test_trainable_and_frozen_select_weights_by_name_and_glob(trainable, frozen, expected):
    model = from_onnx(_mlp(), trainable=trainable, frozen=frozen)
    assert set(model.graph.trainable_params_by_name()) == expected


@pytest.mark.parametrize(
    ("trainable", "frozen", "trains"),
    [
        (["encoder.layers.0.linear1.*"], None, {"encoder.layers.0.linear1.bias", "onnx::MatMul_391"}),
        (None, ["encoder.layers.1.*"], None),
    ],
)
def test_a_pattern_selects_a_torchscript_weight_by_the_scope_of_the_node_reading_it(trainable, frozen, trains):
    """TorchScript names a transposed Linear weight onnx::MatMul_NNN; its node /encoder/layers.0/linear1/MatMul
    reads as encoder.layers.0.linear1.MatMul, so a module's pattern selects its weight with its bias."""
    model = from_onnx(FIXTURES / "torch_encoder_torchscript.onnx", trainable=trainable, frozen=frozen)
    local = set(model.graph.trainable_params_by_name())  # from_onnx keeps the file's names
    if trains is not None:
        assert local == trains
    else:
        assert not any(name.startswith("encoder.layers.1.") for name in local)
        layer1 = {"onnx::MatMul_393", "onnx::MatMul_401", "onnx::MatMul_402"}  # layers.1's attention and linears
        assert not local & layer1 and {"onnx::MatMul_383", "onnx::MatMul_391", "onnx::MatMul_392"} <= local


def _mlp_with_a_scalar() -> onnx.ModelProto:
    """`_mlp` with its hidden values times a rank-0 initializer, as torch's dynamo exporter stores GELU's 0.5."""
    model = _mlp()
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "val_6"))
    scaled = helper.make_node("Mul", ["hidden", "val_6"], ["hidden_scaled"])
    model.graph.node.insert(3, scaled)
    model.graph.node[4].input[0] = "hidden_scaled"
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize(
    ("trainable", "trains_the_scalar"), [(None, False), (True, False), (["*"], True), (["val_6"], True)]
)
def test_a_scalar_initializer_is_an_exporters_constant_unless_named(trainable, trains_the_scalar):
    model = from_onnx(_mlp_with_a_scalar(), trainable=trainable)
    assert ("val_6" in model.graph.trainable_params_by_name()) == trains_the_scalar
    assert "val_6" in model.get_weights()  # a weight still: saved, loaded and exported under its name
    with model:
        model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
        model.fit(*_data(), batch_size=4, verbose=0)
        assert (model.get_weights()["val_6"] != np.float32(0.5)) == trains_the_scalar


def test_a_scalar_weight_keeps_its_shape_through_training_save_load_and_export(tmp_path):
    """A rank-0 initializer (torch's dynamo exporter's) stays rank 0: it became [1] in the weights and the export,
    so the save's config rebuilt a () weight its model.onnx declared (1,), and load_model refused it."""
    model = from_onnx(_mlp_with_a_scalar(), trainable=["*"])
    assert model.get_weights()["val_6"].shape == ()
    with model:
        model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
        model.fit(*_data(), batch_size=4, verbose=0)
        model.save(tmp_path / "saved")
        model.export(tmp_path / "exported.onnx")
        trained = model.get_weights()["val_6"]
    exported = {i.name: list(i.dims) for i in onnx.load(tmp_path / "exported.onnx").graph.initializer}
    assert exported["val_6"] == [] and trained.shape == () and trained != np.float32(0.5)
    with load_model(tmp_path / "saved") as loaded:
        np.testing.assert_array_equal(loaded.get_weights()["val_6"], trained)


def test_frozen_weights_do_not_change_in_training():
    model = from_onnx(_mlp(), frozen=["fc1.*"])
    before = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    model.fit(*_data(), batch_size=4, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after["fc1.weight"], before["fc1.weight"])
    assert not np.array_equal(after["head.weight"], before["head.weight"])
    model.close()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"trainable": ["fc9.*"]}, InvalidArgumentError, r"'fc9\.\*' matches no float initializer.*fc1\.weight"),
        ({"frozen": ["nope"]}, InvalidArgumentError, r"'nope' matches no float initializer"),
        ({"trainable": 3}, InvalidTypeError, r"trainable=3"),
        ({"outputs": ["hiden"]}, InvalidArgumentError, r"names no value of the graph: 'hiden'.*'hidden'"),
        ({"outputs": "hidden"}, InvalidArgumentError, r"list of value names"),
        ({"batch_norm": "sometimes"}, InvalidArgumentError, r"batch_norm=.*'sometimes'"),
    ],
)
def test_bad_arguments_are_refused_with_what_was_received(options, error, match):
    with pytest.raises(error, match=match):
        from_onnx(_mlp(), **options)


def test_a_graph_that_onnxtrain_cannot_hold_is_refused():
    node = helper.make_node("Inverse", ["x"], ["y"], domain="com.microsoft")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 2])],
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    with pytest.raises(UnsupportedError, match=r"default ONNX domain only.*com\.microsoft:Inverse"):
        from_onnx(proto)
    with pytest.raises(InvalidTypeError, match=r"path to an \.onnx file or an onnx\.ModelProto. Received: int"):
        from_onnx(3)


# --- cut, head, save, export ------------------------------------------------------------------------------
def test_a_cut_is_a_feature_extractor():
    proto = _mlp()
    model = from_onnx(proto, outputs=["hidden"])
    assert model.output_shape == (5,) and set(model.get_weights()) == {"fc1.weight", "fc1.bias"}
    x, _ = _data()
    w, b = (model.get_weights()[k] for k in ("fc1.weight", "fc1.bias"))
    expected = np.maximum(x.reshape(len(x), -1) @ w.T + b, 0)
    np.testing.assert_allclose(_run(model.inference_model(), input=x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_a_frozen_onnx_layer_under_a_new_head_trains_the_head_only(tmp_path, engine):
    base = OnnxLayer(_mlp(), outputs=["hidden"], trainable=False)
    model = Sequential.of(Input(2, 3), base, Dense(3), seed=0)
    assert list(model.get_weights()) == [
        "onnx_layer_1.fc1.weight",
        "onnx_layer_1.fc1.bias",
        "dense_1.kernel",
        "dense_1.bias",
    ]
    before = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS, engine=engine)
    model.fit(*_data(), batch_size=4, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after["onnx_layer_1.fc1.weight"], before["onnx_layer_1.fc1.weight"])
    assert not np.array_equal(after["dense_1.kernel"], before["dense_1.kernel"])
    exported = onnx.load(str(model.export(tmp_path / "head.onnx")))
    onnx.checker.check_model(exported, full_check=True)
    x, _ = _data()
    hidden = np.maximum(x.reshape(len(x), -1) @ after["onnx_layer_1.fc1.weight"].T + after["onnx_layer_1.fc1.bias"], 0)
    expected = hidden @ after["dense_1.kernel"] + after["dense_1.bias"]
    np.testing.assert_allclose(_run(exported, input=x), expected, rtol=1e-5, atol=1e-5)
    model.close()


def test_a_two_input_onnx_layer_in_the_functional_api():
    nodes = [helper.make_node("Sub", ["a", "b"], ["d"]), helper.make_node("MatMul", ["d", "w"], ["out"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("a", "b")]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2])
    w = np.arange(8, dtype=np.float32).reshape(4, 2)
    layer = OnnxLayer(_model(nodes, inputs, [out], [numpy_helper.from_array(w, "w")]), name="difference")
    a, b = Input(4, name="a"), Input(4, name="b")
    model = Model([a, b], Dense(3, activation="linear")(layer([a, b])), seed=0)
    xa, xb = np.random.default_rng(0).normal(size=(2, 5, 4)).astype(np.float32)
    weights = model.get_weights()
    expected = (xa - xb) @ w @ weights["dense_1.kernel"] + weights["dense_1.bias"]
    np.testing.assert_allclose(_run(model.inference_model(), a=xa, b=xb), expected, rtol=1e-5, atol=1e-5)


def test_onnx_layer_in_the_functional_api():
    x = Input(2, 3)
    features = OnnxLayer(_mlp(), outputs=["hidden"], trainable=["fc1.bias"], name="base")(x)
    model = Model(x, Dense(3)(features), seed=0)
    assert set(model.graph.trainable_params_by_name()) == {"base.fc1.bias", "dense_1.kernel", "dense_1.bias"}


@pytest.mark.slow
def test_save_and_load_round_trip_the_imported_model(tmp_path):
    model = from_onnx(_mlp(), frozen=["fc1.weight"], input_scale=0.5)
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    x, y = _data()
    model.fit(x, y, batch_size=4, verbose=0)
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert loaded.input_scale == 0.5
    assert set(loaded.graph.trainable_params_by_name()) == {"fc1.bias", "head.weight", "head.bias"}
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(loaded.get_weights()[name], value)
    np.testing.assert_allclose(loaded.predict_softly(x), model.predict_softly(x), rtol=1e-6)
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    entry = next(layer["config"] for layer in config["layers"] if layer["class_name"] == "OnnxLayer")
    stored = onnx.ModelProto.FromString(base64.b64decode(entry["model"]))  # the graph, its weights as inputs
    assert not [t.name for t in stored.graph.initializer if t.data_type == TensorProto.FLOAT]
    assert [v.name for v in stored.graph.input] == ["x", "fc1.weight", "fc1.bias", "head.weight", "head.bias"]
    model.close()
    loaded.close()


def test_what_folding_computes_stays_a_constant_through_save_and_load(tmp_path):
    """ORT folds Sqrt(Constant) into a float tensor: a constant in the stored graph, not a weight on loading."""
    w = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    four = numpy_helper.from_array(np.array(4.0, np.float32), "four")
    nodes = [
        helper.make_node("Constant", [], ["four"], value=four),
        helper.make_node("Sqrt", ["four"], ["two"]),
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("Mul", ["flat", "two"], ["doubled"]),
        helper.make_node("MatMul", ["doubled", "w"], ["logits"]),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    model = from_onnx(_model(nodes, [x_info], [logits], [numpy_helper.from_array(w, "w")]))
    assert "Sqrt" not in {node.op_type for node in model.layers[-1].graph.graph.node}  # folded
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert list(loaded.get_weights()) == ["w"]
    x, _ = _data()
    np.testing.assert_allclose(_run(loaded.inference_model(), input=x), 2 * x.reshape(8, 6) @ w, rtol=1e-5)


# --- BatchNormalization and Dropout -----------------------------------------------------------------------
def _bn_model() -> onnx.ModelProto:
    """[N, 2, 3] (channels first: 2 channels, 3 steps) -> BatchNormalization -> Flatten -> MatMul: logits."""
    rng = np.random.default_rng(3)
    arrays = {
        "bn.weight": np.array([1.0, 2.0], np.float32),
        "bn.bias": np.array([0.1, -0.1], np.float32),
        "bn.running_mean": np.array([0.5, -0.5], np.float32),
        "bn.running_var": np.array([2.0, 0.5], np.float32),
        "w": rng.normal(size=(6, 3)).astype(np.float32),
    }
    nodes = [
        helper.make_node(
            "BatchNormalization", ["x", *list(arrays)[:4]], ["bn_out"], name="bn", epsilon=1e-5, momentum=0.8
        ),
        helper.make_node("Flatten", ["bn_out"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    return _model(nodes, [x], [y], [numpy_helper.from_array(a, n) for n, a in arrays.items()])


def test_batch_norm_trains_in_inference_form_by_default():
    model = from_onnx(_bn_model())
    assert set(model.graph.trainable_params_by_name()) == {"bn.weight", "bn.bias", "w"}
    before = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    model.fit(*_data(), batch_size=8, verbose=0)
    after = model.get_weights()
    for name in ("bn.running_mean", "bn.running_var"):
        np.testing.assert_array_equal(after[name], before[name])
    assert not np.array_equal(after["bn.weight"], before["bn.weight"])
    model.close()


def test_batch_norm_train_mode_updates_the_running_statistics_as_onnx_defines():
    model = from_onnx(_bn_model(), batch_norm="train", trainable=["w"])
    before = model.get_weights()
    x, y = _data()
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    after = model.get_weights()
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    np.testing.assert_allclose(after["bn.running_mean"], 0.8 * before["bn.running_mean"] + 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(after["bn.running_var"], 0.8 * before["bn.running_var"] + 0.2 * var, rtol=1e-5)
    model.close()


@pytest.mark.training
def test_batch_norm_train_mode_is_refused_by_ort_training():
    model = from_onnx(_bn_model(), batch_norm="train")
    with pytest.raises(UnsupportedError, match=r"batch_norm='train'.*node 'bn'.*only the portable engine") as caught:
        model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS, engine="ort-training")
    message = str(caught.value)
    assert message.count("engine='portable'") == 1 and ".." not in message  # the advice once


def _training_mode_bn_model(saved_mean_read: bool = False) -> onnx.ModelProto:
    """`_bn_model` as torch exports it in training mode at opset 13: BatchNormalization with 5 outputs (Y, running
    mean and variance, saved mean and variance), which onnx's version converter refuses to take to opset 14."""
    model = _bn_model()
    bn = model.graph.node[0]
    bn.output.extend(["running_mean_out", "running_var_out", "saved_mean", "saved_var"])
    if saved_mean_read:  # a graph that reads the saved mean cannot drop it
        model.graph.node[2].output[0] = "mm"
        model.graph.node.extend(
            [
                helper.make_node("ReduceSum", ["saved_mean"], ["saved_sum"], keepdims=0),
                helper.make_node("Add", ["mm", "saved_sum"], ["logits"]),
            ]
        )
    model.opset_import[0].version = 13
    onnx.checker.check_model(model, full_check=True)
    return model


def test_a_training_mode_batch_norm_of_opset_13_is_upgraded_without_its_unread_outputs():
    """The unread statistics outputs are dropped at import, so the default opset (17) takes the graph."""
    model = from_onnx(_training_mode_bn_model())
    layer = model.layers[-1]
    assert isinstance(layer, OnnxLayer)
    assert [list(n.output) for n in layer.graph.graph.node if n.op_type == "BatchNormalization"] == [["bn_out"]]
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    x, y = _data()
    model.fit(x, y, batch_size=4, verbose=0)
    exported = model.inference_model()
    assert exported.opset_import[0].version == 17
    logits = _run(exported, input=x)
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(1, keepdims=True), model.predict_softly(x), rtol=1e-5, atol=1e-6)
    model.close()


@pytest.mark.training
def test_a_graph_the_converter_refuses_gets_no_portable_advice_from_ort_training():
    """Both engines fail the same way on a graph that cannot be upgraded: no advice to switch engines."""
    messages = []
    for engine in ("portable", "ort-training"):
        model = from_onnx(_training_mode_bn_model(saved_mean_read=True))
        with pytest.raises(UnsupportedError, match=r"cannot turn into opset 17: .*Compile with opset=13") as caught:
            model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS, engine=engine)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "engine='portable'" not in messages[1]


def _two_training_mode_bns(outputs_read: bool = False) -> onnx.ModelProto:
    """[N, 2, 3] -> BatchNormalization /b0 -> Relu -> BatchNormalization /b1 -> Flatten -> MatMul, each
    BatchNormalization as torch exports TrainingMode.TRAINING at opset 14+: training_mode=1 and three outputs (Y,
    running mean and variance). `outputs_read`: /b0 keeps only its running mean, which the logits read, so
    training_mode=1 stays with two outputs, a node onnx's shape inference refuses."""
    rng = np.random.default_rng(4)
    arrays = {}
    nodes = []
    for i, x in enumerate(["x", "/Relu_output_0"]):
        names = [f"b{i}.{n}" for n in ("weight", "bias", "running_mean", "running_var")]
        arrays |= {n: np.array([1.5, 0.5], np.float32) if n.endswith("var") else rng.normal(size=2) for n in names}
        outputs = [f"/b{i}/BatchNormalization_output_{k}" for k in range(3)]
        nodes.append(
            helper.make_node(
                "BatchNormalization", [x, *names], outputs, name=f"/b{i}/BatchNormalization", training_mode=1
            )
        )
        if i == 0:
            nodes.append(helper.make_node("Relu", [outputs[0]], ["/Relu_output_0"], name="/Relu"))
    arrays["w"] = rng.normal(size=(6, 3))
    nodes += [
        helper.make_node("Flatten", ["/b1/BatchNormalization_output_0"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["mm" if outputs_read else "logits"]),
    ]
    if outputs_read:
        del nodes[0].output[2]
        nodes += [
            helper.make_node("ReduceSum", ["/b0/BatchNormalization_output_1"], ["mean_sum"], keepdims=0),
            helper.make_node("Add", ["mm", "mean_sum"], ["logits"]),
        ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    initializers = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in arrays.items()]
    model = helper.make_model(
        helper.make_graph(nodes, "foreign", [x], [y], initializers), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


@pytest.mark.parametrize("batch_norm", ["inference", "train"])
def test_a_training_mode_export_with_two_batch_norms_imports_and_trains(batch_norm):
    """Dropping a BatchNormalization's unread statistics drops its training_mode too, which onnx's shape inference
    refuses with one output: the second BatchNormalization then had no input shape."""
    model = from_onnx(_two_training_mode_bns(), batch_norm=batch_norm)
    layer = model.layers[-1]
    assert isinstance(layer, OnnxLayer)
    for node in (n for n in layer.graph.graph.node if n.op_type == "BatchNormalization"):
        assert len(node.output) == 1 and "training_mode" not in [a.name for a in node.attribute]
    before = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    x, y = _data()
    model.fit(x, y, batch_size=8, verbose=0)
    after = model.get_weights()
    assert not np.array_equal(after["b1.weight"], before["b1.weight"])
    statistics_moved = not np.array_equal(after["b1.running_mean"], before["b1.running_mean"])
    assert statistics_moved == (batch_norm == "train")
    model.close()


def test_a_shape_inference_failure_names_the_node_that_failed_and_onnxs_reason():
    model = from_onnx(_two_training_mode_bns(outputs_read=True))
    with pytest.raises(
        UnsupportedError,
        match=r"onnx's shape inference fails at the BatchNormalization node '/b0/BatchNormalization': "
        r"This number of op outputs should be 3 when Training_mode = True.*no shape for '/Relu_output_0'",
    ):
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)


@pytest.mark.training
def test_a_dropout_node_is_refused_by_ort_training_under_its_own_name():
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], name="/flatten/Flatten"),
        helper.make_node("Dropout", ["flat", "ratio"], ["/drop/Dropout_output_0"], name="/drop/Dropout"),
        helper.make_node("MatMul", ["/drop/Dropout_output_0", "w"], ["logits"], name="/fc/MatMul"),
    ]
    initializers = [
        numpy_helper.from_array(np.eye(6, 3, dtype=np.float32), "w"),
        numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    y_info = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    model = from_onnx(_model(nodes, [x_info], [y_info], initializers))
    with pytest.raises(
        UnsupportedError,
        match=r"ort-training engine cannot train this model: OnnxLayer 'onnx_model': Dropout node '/drop/Dropout' "
        r"\(output '/drop/Dropout_output_0'\) draws a new mask in each training step.*Compile with engine='portable'",
    ) as caught:
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS, engine="ort-training")
    assert str(caught.value).count("engine='portable'") == 1


def test_dropout_is_the_identity_outside_training_and_drops_in_it():
    w = np.eye(6, 3, dtype=np.float32)
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("Dropout", ["flat", "ratio", "training"], ["dropped"]),
        helper.make_node("MatMul", ["dropped", "w"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
        numpy_helper.from_array(np.array(True), "training"),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    proto = _model(
        nodes, [x_info], [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], initializers
    )
    model = from_onnx(proto)
    assert list(model.get_weights()) == ["w"]  # the ratio is a setting, not a weight
    x, y = _data()
    np.testing.assert_allclose(_run(model.inference_model(), input=x), x.reshape(8, 6) @ w, rtol=1e-6)
    logits = x.reshape(8, 6) @ w
    expected = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(8), y])
    model.compile(optimizer=SGD(learning_rate=1e-9), loss=LOSS)
    assert model.evaluate(x, y).loss == pytest.approx(expected, rel=1e-5)
    history = model.fit(x, y, batch_size=8, verbose=0)
    assert history.history["loss"][0] != pytest.approx(expected, rel=1e-3)  # the training graph dropped
    model.close()


def _shrink_model() -> onnx.ModelProto:
    """x -> Gemm /blk/fc -> Shrink /blk/act/Shrink (no gradient rule) -> Gemm /head: logits."""
    rng = np.random.default_rng(7)
    shapes = {"fc.weight": (4, 6), "fc.bias": (4,), "head.weight": (3, 4), "head.bias": (3,)}
    arrays = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], name="/blk/Flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["/blk/fc/Gemm_output_0"], transB=1, name="/blk/fc"),
        helper.make_node("Shrink", ["/blk/fc/Gemm_output_0"], ["/blk/act/Shrink_output_0"], name="/blk/act/Shrink"),
        helper.make_node("Gemm", ["/blk/act/Shrink_output_0", "head.weight", "head.bias"], ["logits"], transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    return _model(nodes, [x], [y], [numpy_helper.from_array(a, n) for n, a in arrays.items()])


def test_a_missing_gradient_names_the_files_node_and_the_weights_that_need_it():
    with pytest.raises(
        UnsupportedError,
        match=r"No gradient rule for op 'Shrink' .*: node '/blk/act/Shrink' computes '/blk/act/Shrink_output_0' "
        r"\(here .*\), "
        r"which the loss .* depends on, and the gradients of 'fc.weight', 'fc.bias' need it\. .* or freeze those "
        r"weights\.$",
    ):
        from_onnx(_shrink_model()).compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
    with from_onnx(_shrink_model(), frozen=["fc.*"]) as model:  # what the message says to do works
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)
        model.fit(*_data(), batch_size=4, verbose=0)


def test_a_rule_refusal_names_the_files_node_and_the_spatial_dims():
    """torch's x.flatten(2) with a dynamic batch (a Reshape to Concat(Shape(x)[:2], [-1])) hides the Conv's length."""
    nodes = [
        *torch_flatten_from_axis_2("x", "flat"),
        helper.make_node("Conv", ["flat", "w"], ["/0/0.1/Conv_output_0"], name="/0/0.1/Conv"),
        helper.make_node("Flatten", ["/0/0.1/Conv_output_0"], ["features"]),
        helper.make_node("MatMul", ["features", "head"], ["logits"]),
    ]
    rng = np.random.default_rng(2)
    weights = {"w": rng.normal(size=(2, 2, 1)), "head": rng.normal(size=(6, 3))}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    initializers = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in weights.items()]
    model = from_onnx(_model(nodes, [x], [y], initializers))
    with pytest.raises(
        UnsupportedError,
        match=r"No gradient for Conv node '/0/0\.1/Conv' \(here '[^']+'\) with spatial shape=\('[^']+',\) "
        r"\(X has shape \('batch', 2, '[^']+'\);",
    ):
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)


def _tanh_gelu_model() -> onnx.ModelProto:
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["h"]),
        helper.make_node("Gelu", ["h"], ["g"], approximate="tanh"),
        helper.make_node("MatMul", ["g", "v"], ["logits"]),
    ]
    weights = [
        numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n) for n, s in (("w", (6, 5)), ("v", (5, 3)))
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    return _model(nodes, [x_info], [logits], weights, opset=20)


def _numpy_tanh_gelu_step(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, lr: float) -> np.ndarray:
    """numpy's SGD step of `_tanh_gelu_model`: the new `w`."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    h = flat @ weights["w"]
    inner = np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)
    g = 0.5 * h * (1 + np.tanh(inner))
    logits = g @ weights["v"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_g = ((p - np.eye(3)[y]) / len(x)) @ weights["v"].T
    d_inner = 0.5 * h * (1 - np.tanh(inner) ** 2) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * h**2)
    d_h = d_g * (0.5 * (1 + np.tanh(inner)) + d_inner)
    return weights["w"] - lr * flat.T @ d_h


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_tanh_gelu_trains_as_its_formula_and_exports_as_gelu(engine):
    """ORT's gradient builder differentiates Gelu(approximate="tanh") as the exact Gelu: training graphs emit the
    formula, the export keeps the node."""
    model = from_onnx(_tanh_gelu_model())
    expected = _numpy_tanh_gelu_step(model.get_weights(), *_data(), 0.5)
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS, engine=engine, opset=20, ir_version=9)
    model.fit(*_data(), batch_size=8, verbose=0)
    np.testing.assert_allclose(model.get_weights()["w"], expected, rtol=1e-5, atol=1e-6)
    assert "Gelu" in {node.op_type for node in model.inference_model().graph.node}
    model.close()


# --- the exporters' fixtures --------------------------------------------------------------------------------
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_five_sgd_steps_equal_the_exporting_frameworks(name, engine):
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    data = np.load(FIXTURES / f"{name}.npz")
    batch_norm = "train" if str(meta["batch_norm"]).startswith("training mode") else "inference"
    model = from_onnx(FIXTURES / f"{name}.onnx", trainable=list(meta["trainable"]), batch_norm=batch_norm)
    opset, ir_version = max(meta["opset"], 17), max(meta["ir_version"], 8)  # a dynamo export's opset 20 stays
    options = {"engine": engine, "opset": opset, "ir_version": ir_version}
    if batch_norm == "train" and engine == "ort-training":
        with pytest.raises(UnsupportedError, match=r"batch_norm='train'.*only the portable engine"):
            model.compile(SGD(learning_rate=meta["learning_rate"]), LOSS, **options)
        return
    model.compile(SGD(learning_rate=meta["learning_rate"]), LOSS, **options)
    for step in range(meta["steps"]):
        model.fit(data["x"][step], data["labels"][step], batch_size=len(data["x"][step]), shuffle=False, verbose=0)
    weights = model.get_weights()
    for initializer in meta["trainable"]:
        reference = data[f"step_{meta['steps']}/{initializer}"]
        scale = max(float(np.abs(reference).max()), 1e-12)
        assert float(np.abs(weights[initializer] - reference).max()) / scale <= 1e-5, initializer
    model.close()


def test_export_merges_lora_adapters_into_plain_weights(tmp_path):
    proto = _mlp()
    model = lora(from_onnx(proto), rank=2)
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    x, y = _data()
    model.fit(x, y, batch_size=4, verbose=0)
    adapted = _run(model.inference_model(), input=x)
    merged = onnx.load(str(model.export(tmp_path / "merged.onnx", merge_adapters=True)))
    assert sorted(t.name for t in merged.graph.initializer if t.data_type == TensorProto.FLOAT) == sorted(
        t.name for t in proto.graph.initializer if t.data_type == TensorProto.FLOAT
    )
    np.testing.assert_allclose(_run(merged, x=x), adapted, rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidArgumentError, match=r"merge_adapters=.*'yes'"):
        model.export(tmp_path / "other.onnx", merge_adapters="yes")
    model.close()


# --- opset defaults, from_onnx's errors, a batch fixed by a Reshape ---------------------------------------------
def test_compile_follows_a_graph_newer_than_the_default_opset():
    proto = _mlp(opset=20)
    model = from_onnx(proto)
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)  # nothing about opsets written
    assert (model._compiled.opset, model._compiled.ir_version) == (20, 9)
    exported = model.inference_model()
    assert (exported.opset_import[0].version, exported.ir_version) == (20, 9)
    x, _ = _data()
    np.testing.assert_allclose(_run(exported, input=x), _run(proto, x=x), rtol=1e-6, atol=1e-6)
    model.close()


@pytest.mark.training
def test_ort_training_compiles_an_opset_21_graph_at_ir_10():
    model = from_onnx(_mlp(opset=21))
    model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS, engine="ort-training")
    assert (model._compiled.opset, model._compiled.ir_version) == (21, 10)  # ONNX Runtime 1.19 loads IR <= 10
    model.close()


def test_an_older_opset_given_to_compile_says_what_to_change():
    model = from_onnx(_mlp(opset=20))
    with pytest.raises(UnsupportedError, match=r"opset-20 graph.*Pass opset=20 \(or newer\), or leave opset out"):
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS, opset=17)


def test_a_graph_newer_than_the_runtime_runs_names_the_opset_to_export_at():
    from onnxtrain._runtime import check_runtime_loads

    try:
        check_runtime_loads(23, 11)
        pytest.skip("the installed ONNX Runtime loads opset 23")
    except InvalidArgumentError:
        pass
    model = from_onnx(_mlp(opset=23))
    with pytest.raises(UnsupportedError, match=r"opset-23 graph, which the installed ONNX Runtime cannot run\. Export"):
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"trainable": ["nope*"]}, InvalidArgumentError, r"^from_onnx\(trainable=\.\.\.\): 'nope\*' matches no"),
        ({"frozen": [3]}, InvalidTypeError, r"^from_onnx\(frozen=\.\.\.\) expects a bool or a list"),
        ({"trainable": 3}, InvalidTypeError, r"^from_onnx\(trainable=\.\.\.\) expects a bool or a list"),
        ({"batch_norm": "moving"}, InvalidArgumentError, r"^from_onnx\(batch_norm=\.\.\.\) expects one of"),
        ({"outputs": ["nowhere"]}, InvalidArgumentError, r"^from_onnx\(outputs=\.\.\.\) names no value"),
    ],
)
def test_from_onnx_errors_name_from_onnx_and_onnx_layers_name_onnx_layer(options, error, message):
    with pytest.raises(error, match=message):
        from_onnx(_mlp(), **options)
    with pytest.raises(error, match=message.replace("from_onnx", "OnnxLayer")):
        OnnxLayer(_mlp(), **options)


def _fixed_batch_model(shape: list[int], reshaped: str = "x") -> onnx.ModelProto:
    """x [1, 2, 3] (exported at batch 1) -> Reshape(`reshaped`, shape) ... -> logits [1, 3]."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (6, 3)).astype(np.float32), "fc.weight")
    bias = numpy_helper.from_array(np.zeros(3, np.float32), "fc.bias")
    target = numpy_helper.from_array(np.array(shape, np.int64), "target")
    if reshaped == "x":  # the batch goes through the Reshape
        nodes = [
            helper.make_node("Reshape", ["x", "target"], ["flat"], name="/Reshape"),
            helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"]),
        ]
    else:  # a weight is reshaped: no batch there
        nodes = [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("Reshape", ["fc.bias", "target"], ["row"], name="/bias_row"),
            helper.make_node("MatMul", ["flat", "fc.weight"], ["mm"]),
            helper.make_node("Add", ["mm", "row"], ["logits"]),
        ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    return _model(nodes, [x], [y], [weight, bias, target])


def test_a_reshape_that_fixes_the_batch_is_refused_at_import_naming_the_node():
    with pytest.raises(
        UnsupportedError,
        match=r"^from_onnx: Reshape node '/Reshape' fixes the batch dimension: its shape \[1, -1\] makes the first "
        r"dimension 1, but its input 'x' has shape \['batch', 2, 3\].*only batches of exactly 1",
    ):
        from_onnx(_fixed_batch_model([1, -1]))


@pytest.mark.parametrize(("shape", "reshaped"), [([0, -1], "x"), ([-1, 6], "x"), ([1, 3], "fc.bias")])
def test_reshapes_that_keep_the_batch_import_and_run_at_any_batch(shape, reshaped):
    proto = _fixed_batch_model(shape, reshaped)
    model = from_onnx(proto)
    x = np.random.default_rng(1).random((5, 2, 3), dtype=np.float32)
    expected = x.reshape(5, 6) @ numpy_helper.to_array(proto.graph.initializer[0])  # zero bias
    np.testing.assert_allclose(_run(model.inference_model(), input=x), expected, rtol=1e-5, atol=1e-6)


# --- onnxtrain summary FILE.onnx ---------------------------------------------------------------------------------
def test_summary_of_a_foreign_file_shows_the_nodes_that_hold_weights_as_its_layers(tmp_path, capsys):
    from onnxtrain.cli._main import main

    onnx.save(_mlp(), tmp_path / "foreign.onnx")
    assert main(["summary", str(tmp_path / "foreign.onnx")]) == 0
    shown = capsys.readouterr().out
    imported = shown[shown.index("As from_onnx imports it") :].splitlines()
    assert imported[0] == "As from_onnx imports it: x [None, 2, 3] -> OnnxLayer -> logits [None, 3]"
    rows = [line.split() for line in imported[3:6]]
    assert rows == [  # after Reshape(-1), shape inference cannot tell the batch: "?"
        ["h", "(Gemm)", "[?,", "5]", "fc1.weight", "[5,", "6],", "fc1.bias", "[5]", "35"],
        ["mm", "(MatMul)", "[?,", "3]", "head.weight", "[5,", "3]", "15"],
        ["logits", "(Add)", "[None,", "3]", "head.bias", "[3]", "3"],
    ]
    assert imported[6].startswith("Parameters: 53 in 4 weights (float initializers): 53 train by default, 0 frozen")
    assert imported[7] == "Nodes without weights: Relu 1, Reshape 1"


def test_summary_says_why_from_onnx_cannot_import_a_file(tmp_path, capsys):
    from onnxtrain.cli._main import main

    onnx.save(_fixed_batch_model([1, -1]), tmp_path / "fixed.onnx")
    assert main(["summary", str(tmp_path / "fixed.onnx")]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("As from_onnx imports it: it cannot (UnsupportedError: from_onnx: Reshape node '/Reshape'")


# --- torch.onnx exports that need care (tests/data/onnx_torch_cases/, tools/onnx_fixtures_torch_cases.py) -------
TORCH_CASES = Path(__file__).parent / "data" / "onnx_torch_cases"


@pytest.mark.parametrize(
    ("name", "node", "requested"),
    [
        ("tokens_fixed_batch_torchscript", "/enc/self_attn/Reshape_5", r"\{7,8,8\}"),  # [seq, batch * heads, dim]
        ("tokens_fixed_batch_dynamo", "node_view", r"\{7,4,3,16\}"),
    ],
)
def test_a_fixed_batch_transformer_export_is_refused_at_import_naming_the_node(name, node, requested):
    """torch.onnx.export without dynamic_axes / dynamic_shapes writes batch 4 into the attention's seq-first
    Reshapes, where no Reshape puts it first: the import runs the graph at 4 and 5 and refuses it, rather than
    fit or predict failing in ONNX Runtime at the first batch of another size."""
    if not ort.__version__.startswith("1.19."):  # later versions fuse the Reshape into another first
        node, requested = "[^']+", r"\{[\d,]+\}"
    with pytest.raises(
        UnsupportedError,
        match=rf"^from_onnx: the graph was exported for a batch of exactly 4 and cannot run another: at a batch of 1, "
        rf"ONNX Runtime fails in the Reshape node '{node}': The input tensor cannot be "
        rf"reshaped to the requested shape\. Input shape:\{{7,1,\d+\}}, requested shape:"
        rf"{requested}\..*Export the model again with a dynamic "
        r"batch \(torch: torch\.onnx\.export\(\.\.\., "
        r"dynamic_axes=\{'ids': \{0: 'batch'\}, 'logits': \{0: 'batch'\}\}\)",
    ):
        from_onnx(TORCH_CASES / f"{name}.onnx")


def test_a_fixed_batch_export_that_mixes_examples_is_refused():
    """A graph exported at batch 2 that runs at batch 1 but gives 2 rows (a seq-first view [4, batch] reshaped to
    [2, -1], which no batch-first check sees) mixes the examples: refused too."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["seq_first"], perm=[1, 0]),
        helper.make_node("Reshape", ["seq_first", "target"], ["mixed"], name="/view"),
        helper.make_node("ReduceSum", ["mixed", "axes"], ["summed"], keepdims=1),
        helper.make_node("Mul", ["summed", "w"], ["logits"]),
    ]
    w = numpy_helper.from_array(np.ones(1, np.float32), "w")
    target = numpy_helper.from_array(np.array([2, -1], np.int64), "target")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 1])
    proto = _model(nodes, [x], [y], [w, target, axes])
    symbolic = onnx.ModelProto()
    symbolic.CopyFrom(proto)
    _graph.check_batch_not_fixed(_graph.with_dynamic_batch(symbolic), "from_onnx")  # the static check lets it pass
    with pytest.raises(
        UnsupportedError,
        match=r"^from_onnx: the graph was exported for a batch of exactly 2: a batch of 1 gives an output of shape "
        r"\[2, 1\], not 1 row, so its shape constants mix the examples of a batch\. Export the model again",
    ):
        from_onnx(proto)


def test_a_dynamic_batch_transformer_export_imports_and_predicts_at_any_batch():
    model = from_onnx(TORCH_CASES / "tokens_torchscript.onnx")
    session = ort.InferenceSession(str(TORCH_CASES / "tokens_torchscript.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 5):
        ids = np.random.default_rng(batch).integers(0, 50, (batch, 7))
        expected = session.run(None, {"ids": ids})[0]
        np.testing.assert_allclose(_run(model.inference_model(), input=ids), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_a_quantized_qdq_graph_is_refused_at_compile_naming_the_quantize_node(engine):
    """onnxruntime.quantization's QDQ export: int8 weights (constants), and every float weight left (the scales)
    reaches the loss only through a QuantizeLinear's integers, so fit would change nothing. Both engines refuse
    it at compile, naming the node, before ONNX Runtime's training build could say anything about opsets."""
    model = from_onnx(TORCH_CASES / "mlp_qdq_int8.onnx")
    assert model.graph.trainable_params_by_name()  # the [1]-shaped scales would train by default
    with pytest.raises(
        UnsupportedError,
        match=r"^OnnxLayer 'onnx_model' cannot train a quantized graph: \d+ trainable weight\(s\) reach the output "
        r"only through QuantizeLinear nodes, whose integer outputs pass no gradient, so training would change "
        r"nothing: QuantizeLinear node '[^']+_QuantizeLinear' cuts off \['[^']+_scale'.*Fine-tune the float32 model "
        r"and quantize the result, or freeze these weights .*\(frozen=\[\.\.\.\], or OnnxLayer",
    ):
        model.compile(optimizer=SGD(learning_rate=0.1), loss=LOSS, engine=engine)
    model.close()


def test_a_frozen_quantized_graph_under_a_new_head_trains_the_head():
    base = OnnxLayer(TORCH_CASES / "mlp_qdq_int8.onnx", trainable=False, name="base")
    model = Sequential.of(Input(12), base, Dense(2, name="head"), seed=0)
    before = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.5), loss=LOSS)
    x = np.random.default_rng(0).standard_normal((16, 12)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(np.int64), batch_size=8, verbose=0)
    after = model.get_weights()
    assert not np.array_equal(after["head.kernel"], before["head.kernel"])
    assert all(np.array_equal(after[name], before[name]) for name in before if name.startswith("base."))
    model.close()


def test_ort_trainings_refusal_of_a_graph_suggests_an_opset_only_when_it_is_about_one():
    from onnxtrain._ort_training_limits import explained

    qdq = RuntimeError(
        "[ONNXRuntimeError] qdq_actions.cc:42 quantize_node.GetOutputEdgesCount() == 1 was false. There must only "
        "be a single node consuming the output of QuantizeLinear node."
    )
    message = str(explained(qdq, 17, 8))
    assert "Try an older --opset" not in message and "compile(engine='portable')" in message, message
    opset = str(explained(RuntimeError("Opset 22 is under development and support for this is limited."), 22, 10))
    assert "Try an older --opset or opset=... (the default is 17)" in opset, opset


@pytest.mark.parametrize("outputs", [None, ["/fc1/Gemm_output_0"]])
def test_a_float16_export_says_to_convert_it_to_float32_not_to_cut_it(outputs):
    """torch's model.half() export: every value is float16, so no cut gives a float32 output."""
    with pytest.raises(UnsupportedError) as raised:
        from_onnx(TORCH_CASES / "mlp_fp16_torchscript.onnx", outputs=outputs)
    message = str(raised.value)
    assert re.match(
        r"from_onnx trains float32 graphs: its weights are the float32 initializers\. Received: output '[^']+' of "
        r"type FLOAT16, in a graph with no float32 weight \(its \d FLOAT16 initializers would be constants\)\. "
        r"Convert the model to float32 first: export it again in float32 \(torch: model\.float\(\) before "
        r"torch\.onnx\.export\)",
        message,
    ), message
    assert "Cut the graph" not in message


def test_an_integer_output_of_a_float32_graph_says_to_cut_before_it():
    proto = _mlp()
    proto.graph.node.append(helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0))
    del proto.graph.output[:]
    proto.graph.output.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
    with pytest.raises(UnsupportedError, match=r"Received: output 'label' of type INT64\. Cut the graph before it"):
        from_onnx(proto)
