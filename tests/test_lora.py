"""LoRA (onnxtrain.adapters, onnxtrain.lora): the adapted graph against numpy, merging, the adapters' gradients
against finite differences, the trainable set of `lora()` on an imported model, and the errors."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import Dataset, Model, Sequential, autodiff, from_onnx, lora
from onnxtrain.adapters import A_SUFFIX, add_adapters, merge_adapters
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import SGD

ROOT = Path(__file__).resolve().parents[1]
MLP_FIXTURE = ROOT / "tests" / "data" / "onnx_models" / "mlp_torchscript.onnx"
RNG = np.random.default_rng(0)
W_GEMM = RNG.standard_normal((5, 4))  # Gemm transB=1: (out, in), as torch exports Linear
C_GEMM = RNG.standard_normal(5)
W_RIGHT = RNG.standard_normal((5, 3))  # MatMul(x, W): (in, out)
W_LEFT = RNG.standard_normal((2, 3))  # MatMul(W, x): (out, in)


def _model(dtype: type = np.float32, gemm_alpha: float = 0.5) -> onnx.ModelProto:
    """x (N, 4) -> Gemm(transB, alpha) -> Relu -> MatMul(., W_RIGHT) -> Transpose -> MatMul(W_LEFT, .) = y (2, N)."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes = [
        helper.make_node("Gemm", ["x", "w_gemm", "c"], ["h"], name="fc1", transB=1, alpha=gemm_alpha),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w_right"], ["m"], name="fc2"),
        helper.make_node("Transpose", ["m"], ["mt"], name="t"),
        helper.make_node("MatMul", ["w_left", "mt"], ["y"], name="fc3"),
    ]
    weights = {"w_gemm": W_GEMM, "c": C_GEMM, "w_right": W_RIGHT, "w_left": W_LEFT}
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem, ["N", 4])],
        [helper.make_tensor_value_info("y", elem, [2, "N"])],
        [numpy_helper.from_array(w.astype(dtype), name) for name, w in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray, output: str = "y") -> np.ndarray:
    options = onnxruntime.SessionOptions()
    # ORT's fusions (FusedMatMul) have float32 kernels only; the gradient check runs in float64.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run([output], {"x": x})[0]


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _set(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> None:
    for tensor in model.graph.initializer:
        if tensor.name in values:
            tensor.CopyFrom(numpy_helper.from_array(values[tensor.name].astype(np.float32), tensor.name))


def _numpy_forward(x: np.ndarray, w: dict[str, np.ndarray], gemm_alpha: float = 0.5) -> np.ndarray:
    h = np.maximum(gemm_alpha * x @ w["w_gemm"].T + w["c"], 0)
    return w["w_left"] @ (h @ w["w_right"]).T


X = RNG.standard_normal((7, 4)).astype(np.float32)


def test_adapted_model_at_b_zero_equals_the_original() -> None:
    original = _model()
    adapted = add_adapters(original, rank=2, alpha=4)
    onnx.checker.check_model(adapted, full_check=True)
    np.testing.assert_array_equal(_run(adapted, X), _run(original, X))
    weights = _weights(adapted)
    assert weights["w_gemm.lora_A"].shape == (2, 4) and weights["w_gemm.lora_B"].shape == (5, 2)  # peft's layout
    assert weights["w_right.lora_A"].shape == (5, 2) and weights["w_right.lora_B"].shape == (2, 3)
    assert weights["w_left.lora_A"].shape == (2, 3) and weights["w_left.lora_B"].shape == (2, 2)
    for name in ("w_gemm", "w_right", "w_left"):
        assert not weights[f"{name}.lora_B"].any()
        fan_in = weights[f"{name}.lora_A"].size // 2
        assert 0 < np.abs(weights[f"{name}.lora_A"]).max() <= 1 / np.sqrt(fan_in)  # Kaiming uniform, as peft
    scales = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in adapted.graph.node[:3]}
    assert scales == {f"{name}.lora_scale": pytest.approx(2.0) for name in ("w_right", "w_left", "w_gemm")}  # a/r
    assert [n.name for n in adapted.graph.node][3:8] == [
        "fc1",
        "fc1.lora/down",
        "fc1.lora/up",
        "fc1.lora/scale",
        "fc1.lora/add",
    ]


def test_adapted_output_is_x_times_w_plus_scaled_a_b() -> None:
    with pytest.warns(UserWarning, match=r"LoRA rank 3 exceeds .* of 1 adapted weight\(s\): 'w_left' \(2, 3\)"):
        adapted = add_adapters(_model(), rank=3, alpha=6)
    w = {k: v.astype(np.float64) for k, v in _weights(adapted).items()}
    for name in ("w_gemm", "w_right", "w_left"):
        w[f"{name}.lora_A"] = RNG.standard_normal(w[f"{name}.lora_A"].shape)
        w[f"{name}.lora_B"] = RNG.standard_normal(w[f"{name}.lora_B"].shape)
    _set(adapted, w)
    s = 6 / 3
    effective = {  # W + s·A·B in each weight's own layout: (out, in) ones take B·A
        "w_gemm": w["w_gemm"] + s * w["w_gemm.lora_B"] @ w["w_gemm.lora_A"],
        "w_right": w["w_right"] + s * w["w_right.lora_A"] @ w["w_right.lora_B"],
        "w_left": w["w_left"] + s * w["w_left.lora_B"] @ w["w_left.lora_A"],
        "c": w["c"],
    }
    expected = _numpy_forward(X.astype(np.float64), effective)
    np.testing.assert_allclose(_run(adapted, X), expected, rtol=1e-4, atol=1e-4)


def test_merge_folds_adapters_into_plain_weights_exactly() -> None:
    original = _model()
    adapted = add_adapters(original, rank=2)
    _set(adapted, {k: RNG.standard_normal(v.shape) for k, v in _weights(adapted).items() if k.endswith(".lora_B")})
    merged = merge_adapters(adapted)
    onnx.checker.check_model(merged, full_check=True)
    np.testing.assert_allclose(_run(merged, X), _run(adapted, X), rtol=1e-5, atol=1e-5)
    assert [(n.name, n.op_type, list(n.input), list(n.output)) for n in merged.graph.node] == [
        (n.name, n.op_type, list(n.input), list(n.output)) for n in original.graph.node
    ]
    assert sorted(_weights(merged)) == sorted(_weights(original))
    assert merged.ByteSize() == original.ByteSize()


def test_merge_of_a_fresh_adapter_returns_the_original_weights() -> None:
    original = _model()
    with pytest.warns(UserWarning, match=r"LoRA rank 8 exceeds"):  # the default rank, on 2-5 features
        merged = merge_adapters(add_adapters(original))
    for name, value in _weights(original).items():
        np.testing.assert_array_equal(_weights(merged)[name], value)


def test_a_rank_above_a_weights_smaller_side_warns_once_naming_each_such_weight() -> None:
    # w_gemm is (5, 4), w_right (5, 3), w_left (2, 3): rank 4 exceeds the smaller side of the last two only.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapted = add_adapters(_model(), rank=4)
    assert [w.category for w in caught] == [UserWarning]
    message = str(caught[0].message)
    assert message.startswith(
        "LoRA rank 4 exceeds min(in_features, out_features) of 2 adapted weight(s): 'w_right' (5, 3) of node 'fc2'; "
        "'w_left' (2, 3) of node 'fc3'. Each of their adapters then has more parameters than the weight it adapts"
    )
    assert caught[0].filename == __file__  # attributed to the caller's line
    weights = _weights(adapted)
    for name in ("w_right", "w_left"):  # the claim the warning makes
        assert weights[f"{name}.lora_A"].size + weights[f"{name}.lora_B"].size > weights[name].size
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        add_adapters(_model(), rank=2)  # at most every weight's smaller side: no warning
        add_adapters(_model(), rank=4, nodes=["fc1"])  # w_gemm (5, 4) alone: rank 4 is its full rank


def test_adapters_on_a_torch_exported_mlp_and_a_batched_matmul() -> None:
    original = onnx.load(MLP_FIXTURE)
    adapted = add_adapters(original, rank=4, targets=("Gemm",), nodes=["/fc2/*", "head.weight"])
    assert sorted(n for n in _weights(adapted) if n.endswith(".lora_A")) == ["fc2.weight.lora_A", "head.weight.lora_A"]
    x = RNG.standard_normal((3, 8)).astype(np.float32)
    session = onnxruntime.InferenceSession(adapted.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = onnxruntime.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], reference.run(None, {"input": x})[0])
    # A 3-D input (a transformer's tokens) through MatMul(x, W): the adapters broadcast over the batch.
    w = RNG.standard_normal((4, 6)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", 6])],
        [numpy_helper.from_array(w, "w")],
    )
    adapted = add_adapters(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), rank=2)
    a, b = RNG.standard_normal((4, 2)), RNG.standard_normal((2, 6))
    _set(adapted, {"w.lora_A": a, "w.lora_B": b})
    x3 = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    expected = x3.astype(np.float64) @ (w + 8 * a.astype(np.float32) @ b.astype(np.float32))
    np.testing.assert_allclose(_run(adapted, x3), expected, rtol=1e-4, atol=1e-4)


def test_adapter_gradients_match_finite_differences() -> None:
    adapted = add_adapters(_model(np.float64), rank=2, alpha=4, seed=3)
    r = RNG.standard_normal((2, 7))
    x = RNG.standard_normal((7, 4))
    w = _weights(adapted)
    for name in ("w_gemm", "w_right", "w_left"):
        w[f"{name}.lora_B"] = 0.3 * RNG.standard_normal(w[f"{name}.lora_B"].shape)
    graph = adapted.graph
    for tensor in graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(w[tensor.name], tensor.name))
    graph.initializer.append(numpy_helper.from_array(r, "projection"))
    graph.node.extend(
        [
            helper.make_node("Mul", ["y", "projection"], ["yr"]),
            helper.make_node("ReduceSum", ["yr"], ["loss"], keepdims=0),
        ]
    )
    graph.output.append(helper.make_tensor_value_info("loss", TensorProto.DOUBLE, []))
    adapters = sorted(n for n in w if n.endswith((".lora_A", ".lora_B")))
    with_grads = autodiff.gradients(adapted, adapters, loss="loss")
    grads = {n: _run(with_grads, x, f"{n}_grad") for n in adapters}

    def loss(values: dict[str, np.ndarray]) -> float:
        model = onnx.ModelProto()
        model.CopyFrom(adapted)
        for tensor in model.graph.initializer:
            if tensor.name in values:
                tensor.CopyFrom(numpy_helper.from_array(values[tensor.name], tensor.name))
        return float(_run(model, x, "loss"))

    eps = 1e-6
    for name in adapters:
        numeric = np.zeros_like(w[name])
        for index in np.ndindex(w[name].shape):
            plus, minus = w[name].copy(), w[name].copy()
            plus[index] += eps
            minus[index] -= eps
            numeric[index] = (loss({name: plus}) - loss({name: minus})) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.abs(numeric).max() > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rank": 0}, InvalidArgumentError, r"rank to be a positive int. Received: rank=0"),
        ({"rank": 2.5}, InvalidTypeError, r"Received: rank=2.5"),
        ({"rank": 2.0}, InvalidTypeError, r"rank to be a positive int. Received: rank=2.0"),
        ({"rank": "8"}, InvalidTypeError, r"Received: rank='8'"),
        ({"alpha": 0}, InvalidArgumentError, r"alpha to be a positive number. Received: alpha=0"),
        ({"alpha": -1.0}, InvalidArgumentError, r"Received: alpha=-1.0"),
        (
            {"targets": ("Conv",)},
            InvalidArgumentError,
            r"targets among 'MatMul' and 'Gemm'. Received: targets=\['Conv'\]",
        ),
        (
            {"nodes": ["fc9"]},
            InvalidArgumentError,
            r"'fc9' matches no adaptable node or weight. Adaptable: fc1 \(w_gemm\)",
        ),
    ],
)
def test_add_adapters_rejects_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        add_adapters(_model(), **kwargs)


def test_add_adapters_lists_the_op_types_when_nothing_matches() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"targets=\['Gemm'\] match no node .* op types: MatMul, Relu, Transpose"
    ):
        add_adapters(_model_without_gemm(), targets=("Gemm",))
    with pytest.raises(InvalidArgumentError, match="already has them"), pytest.warns(UserWarning, match="rank 8"):
        add_adapters(add_adapters(_model()))


def _model_without_gemm() -> onnx.ModelProto:
    model = _model()
    gemm = model.graph.node[0]
    replacement = helper.make_node("MatMul", ["x", "x_t"], ["h"], name="fc1")  # x·x^T: no weight operand
    del model.graph.node[0]
    model.graph.node.insert(0, replacement)
    model.graph.node.insert(0, helper.make_node("Transpose", ["x"], ["x_t"], name="t0"))
    assert gemm.op_type == "Gemm"
    return model


# --- lora() on an imported model -------------------------------------------------------------------------------
def _mlp_data(n: int = 24) -> Dataset:
    rng = np.random.default_rng(1)
    return Dataset(rng.standard_normal((n, 8)).astype(np.float32), rng.integers(0, 4, n))


@pytest.mark.slow
def test_lora_trains_the_adapters_only_and_merges_to_the_original_size(tmp_path: Path) -> None:
    base = from_onnx(MLP_FIXTURE)
    data = _mlp_data()
    model = lora(base, rank=2, alpha=4)
    weights = model.get_weights()
    adapters = {n for n in weights if n.endswith((".lora_A", ".lora_B"))}
    assert adapters == {f"{w}.weight.lora_{m}" for w in ("fc1", "fc2", "head") for m in "AB"}
    assert set(weights) == adapters | set(base.get_weights())
    assert _trainable(model) == adapters
    model.compile(optimizer=SGD(0.5), loss="softmax_cross_entropy_with_logits")
    base.compile(optimizer=SGD(0.5), loss="softmax_cross_entropy_with_logits")
    np.testing.assert_array_equal(model.predict(data.x), base.predict(data.x))  # B = 0: the original's outputs
    model.fit(data, epochs=2, batch_size=8, verbose=0)
    trained = model.get_weights()
    for name, value in base.get_weights().items():
        np.testing.assert_array_equal(trained[name], value, err_msg=name)  # frozen
    assert all(np.abs(trained[n]).max() > 0 for n in adapters if n.endswith("_B"))
    # The export's adapters fold into its weights: the original's graph and size, the adapted model's outputs.
    path = model.export(tmp_path / "adapted.onnx")
    merged = onnx.load(model.export(tmp_path / "merged.onnx", merge_adapters=True))
    plain = onnx.load(base.export(tmp_path / "plain.onnx"))
    assert sorted(t.name for t in merged.graph.initializer) == sorted(t.name for t in plain.graph.initializer)
    assert [n.op_type for n in merged.graph.node] == [n.op_type for n in plain.graph.node]
    assert abs(merged.ByteSize() - plain.ByteSize()) < 64  # the same tensors; only names of values may differ
    adapted_outputs, merged_outputs = (_outputs(m, data.x) for m in (onnx.load(path), merged))
    np.testing.assert_allclose(merged_outputs, adapted_outputs, rtol=1e-5, atol=1e-5)
    assert np.abs(adapted_outputs - _outputs(plain, data.x)).max() > 1e-3  # and the training changed them


def _outputs(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([model.graph.output[0].name], {model.graph.input[0].name: x})[0]


def _trainable(model: Model) -> set[str]:
    return {name for layer in model.layers for name in layer.trainable_params()}


def test_lora_takes_a_path_and_refuses_other_models() -> None:
    model = lora(MLP_FIXTURE, rank=1, targets=("Gemm",), nodes=["head.weight"])
    assert _trainable(model) == {"head.weight.lora_A", "head.weight.lora_B"}
    with pytest.raises(InvalidTypeError, match=r"lora expects a model that from_onnx made .* Received: a Sequential"):
        lora(Sequential.of(Input(8), Dense(4)))
    with pytest.raises(InvalidArgumentError, match=r"Received: rank=0"):
        lora(from_onnx(MLP_FIXTURE), rank=0)
    with pytest.raises(InvalidArgumentError, match=r"no node to adapt: targets=\['MatMul'\] .* op types: Gemm, Relu"):
        lora(MLP_FIXTURE, targets=("MatMul",))


@pytest.mark.training
def test_lora_trains_the_same_adapters_on_both_engines() -> None:
    data = _mlp_data(16)
    weights = {}
    for engine in ("portable", "ort-training"):
        with lora(MLP_FIXTURE, rank=2) as model:
            model.compile(optimizer=SGD(0.1), loss="softmax_cross_entropy_with_logits", engine=engine)
            model.fit(data, epochs=3, batch_size=8, shuffle=False, verbose=0)
            weights[engine] = model.get_weights()
    for name, value in weights["portable"].items():
        np.testing.assert_allclose(weights["ort-training"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
        if name.endswith(".lora_B"):
            assert np.abs(value).max() > 0
        elif not name.endswith(".lora_A"):
            np.testing.assert_array_equal(value, numpy_helper.to_array(_fixture_weights()[name]))


def _fixture_weights() -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in onnx.load(MLP_FIXTURE).graph.initializer}


def test_a_weight_that_another_node_reads_is_left_alone() -> None:
    """A tied embedding: Gather reads the table that the MatMul `tied` multiplies by; `proj` has its own weight."""
    table, w2 = RNG.standard_normal((4, 4)).astype(np.float32), RNG.standard_normal((4, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["embedded"], name="embed"),
            helper.make_node("MatMul", ["embedded", "w2"], ["hidden"], name="proj"),
            helper.make_node("MatMul", ["hidden", "table"], ["logits"], name="tied"),
        ],
        "tied",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.warns(
        UserWarning, match=r"LoRA adds no adapter to 1 MatMul/Gemm node\(s\).*'tied'.*also read by Gather 'embed'"
    ):
        adapted = add_adapters(model, rank=2)
    onnx.checker.check_model(adapted, full_check=True)
    assert sorted(n for n in _weights(adapted) if n.endswith(A_SUFFIX)) == ["w2.lora_A"]
    with pytest.raises(
        InvalidArgumentError, match=r"weight 'table' of node 'tied' is also read by Gather node 'embed'"
    ):
        add_adapters(model, nodes=["tied"])


def _tied(w: np.ndarray) -> onnx.ModelProto:
    """A tied autoencoder: Gemm(x, W, transB=1) -> Relu -> Gemm(r, W, transB=0), W of shape (hidden, in)."""
    hidden, width = w.shape
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "b1"], ["h"], name="encode", transB=1),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Gemm", ["r", "W", "b2"], ["logits"], name="decode", transB=0),
        ],
        "tied",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", width])],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.zeros(hidden, np.float32), "b1"),
            numpy_helper.from_array(np.zeros(width, np.float32), "b2"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("shape", [(8, 8), (16, 8)])
def test_a_weight_read_in_both_layouts_shares_one_pair_and_merges_in_its_own(shape: tuple, tmp_path: Path) -> None:
    """Each Gemm applies the shared pair in the layout it reads W in; the merge is W + scale·B·A in W's layout."""
    w = (np.random.default_rng(2).standard_normal(shape) * 0.3).astype(np.float32)
    rng = np.random.default_rng(3)
    data = Dataset(rng.standard_normal((40, shape[1])).astype(np.float32), rng.integers(0, shape[1], 40))
    model = lora(_tied(w), rank=2, alpha=4)
    assert {n: v.shape for n, v in model.get_weights().items() if "lora" in n} == {
        "W.lora_A": (2, shape[1]),
        "W.lora_B": (shape[0], 2),
    }
    model.compile(optimizer=SGD(0.5), loss="softmax_cross_entropy_with_logits")
    model.fit(data, epochs=2, batch_size=10, verbose=0)
    trained = model.get_weights()
    assert np.abs(trained["W.lora_B"]).max() > 0
    merged = onnx.load(model.export(tmp_path / "merged.onnx", merge_adapters=True))
    assert [n.op_type for n in merged.graph.node] == ["Gemm", "Relu", "Gemm", "Softmax"]
    merged_w = numpy_helper.to_array(next(t for t in merged.graph.initializer if t.name == "W"))
    np.testing.assert_allclose(merged_w, w + 2 * trained["W.lora_B"] @ trained["W.lora_A"], rtol=1e-5, atol=1e-6)
    session = onnxruntime.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {merged.graph.input[0].name: data.x})[0]
    np.testing.assert_allclose(probabilities, model.predict_softly(data.x), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["transformer_torchscript", "transformer_dynamo", "cnn_dynamo"])
def test_lora_on_torch_exported_graphs_starts_at_the_original_and_merges_exactly(fixture: str, tmp_path: Path) -> None:
    folder = MLP_FIXTURE.parent
    meta = json.loads((folder / f"{fixture}.json").read_text())
    arrays = np.load(folder / f"{fixture}.npz")
    x, labels = arrays["x"][0], arrays["labels"][0]
    settings = {"opset": meta["opset"], "ir_version": meta["ir_version"]}
    with from_onnx(folder / f"{fixture}.onnx") as base, lora(base, rank=2) as model:
        base.compile(optimizer=SGD(0.1), **settings)
        model.compile(optimizer=SGD(0.1), **settings)
        np.testing.assert_array_equal(model.predict_softly(x), base.predict_softly(x))
        model.fit(Dataset(x, labels), epochs=2, batch_size=len(x), verbose=0)
        adapted = _outputs(onnx.load(model.export(tmp_path / "adapted.onnx")), x)
        merged = onnx.load(model.export(tmp_path / "merged.onnx", merge_adapters=True))
        plain = onnx.load(base.export(tmp_path / "plain.onnx"))
    assert not any(t.name.endswith((A_SUFFIX, ".lora_B", ".lora_scale")) for t in merged.graph.initializer)
    assert {t.name for t in merged.graph.initializer} <= {t.name for t in plain.graph.initializer}
    np.testing.assert_allclose(_outputs(merged, x), adapted, rtol=1e-5, atol=1e-5)
    assert np.abs(adapted - _outputs(plain, x)).max() > 1e-4  # the adapters trained


@pytest.mark.slow
def test_the_lora_example_runs_on_a_small_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("lora_finetune", ROOT / "examples" / "lora_finetune.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rng = np.random.default_rng(0)
    images = [Dataset(rng.random((n, 28, 28, 1), np.float32), rng.integers(0, 10, n)) for n in (200, 100)]
    monkeypatch.setattr(example, "fashion_mnist", lambda: tuple(images))
    with Sequential.of(Input(28, 28, 1), Flatten(), Dense(10, activation="linear")) as small:
        small.compile()
        path = small.export(tmp_path / "small.onnx")
    arguments = ["--ranks", "2", "--tasks", "inverted", "--batch-size", "50", "--output", str(tmp_path / "out")]
    rows = example.run(example.build_parser().parse_args([str(path), *arguments]))
    assert [(row["task"], row["rank"], row["trainable"], row["total"]) for row in rows] == [
        ("inverted", 2, 2 * (784 + 10), 784 * 10 + 10 + 2 * (784 + 10))
    ]
    assert rows[0]["max_diff"] < 1e-5
