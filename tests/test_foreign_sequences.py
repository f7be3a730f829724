"""SplitToSequence read by SequenceAt at constant positions becomes a Split at import (`foreign._sequence_split`):
the same outputs as the original graph in ONNX Runtime, and torch's weights after five SGD steps of a model that
`chunk`s and `split`s, exported as docs/foreign.md recommends (dynamo, optimize=False; the fixture is written by
tools/onnx_sequence_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import from_onnx, load_model
from onnxtrain.errors import UnsupportedError
from onnxtrain.foreign._sequence_split import split_sequences
from onnxtrain.optimizers import SGD

FIXTURE = Path(__file__).parent / "data" / "onnx_sequences" / "chunk_dynamo"
LOSS = "softmax_cross_entropy_with_logits"
SEQUENCE_OPS = {"SplitToSequence", "SequenceAt", "SequenceLength", "ConcatFromSequence"}


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _graph(
    split: np.ndarray | None,
    axis: int,
    positions: list[int],
    concat_axis: int,
    opset: int = 17,
    keepdims: int | None = None,
) -> onnx.ModelProto:
    """x [batch, 3, 10] -> SplitToSequence(split, axis, keepdims) -> one SequenceAt per position -> Concat."""
    inputs = ["x", "split"] if split is not None else ["x"]
    attributes = {"axis": axis} | ({"keepdims": keepdims} if keepdims is not None else {})
    nodes = [helper.make_node("SplitToSequence", inputs, ["seq"], name="to_sequence", **attributes)]
    initializers = [numpy_helper.from_array(split, "split")] if split is not None else []
    parts = []
    for i, position in enumerate(positions):
        index = helper.make_tensor(f"at_{i}", TensorProto.INT64, [], [position])
        nodes.append(helper.make_node("Constant", [], [f"position_{i}"], value=index))
        nodes.append(helper.make_node("SequenceAt", ["seq", f"position_{i}"], [f"part_{i}"], name=f"at_{i}"))
        parts.append(f"part_{i}")
    nodes.append(helper.make_node("Concat", parts, ["y"], axis=concat_axis))
    graph = helper.make_graph(
        nodes,
        "sequences",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c"][: 2 if keepdims == 0 else 3])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


@pytest.mark.parametrize(
    "split, axis, positions, concat_axis, keepdims",
    [
        (np.array(4, np.int64), -1, [0, 2, -2], -1, None),  # parts 4, 4, 2: the last one smaller
        (np.array(4, np.int64), 2, [1, 1], 0, None),  # one part read twice
        (np.array([1, 3, 6], np.int64), 2, [2, 0], -1, None),
        (np.array([2, 1], np.int64), 1, [-1, 0], 1, None),
        (None, 1, [0, 1, 2], 1, 1),  # parts of 1, axis kept
        (None, 1, [2, 0], -1, 0),  # parts of 1, axis dropped: a Squeeze each
        (None, -2, [1, 1, 0], 0, 0),
    ],
)
@pytest.mark.parametrize("opset", [11, 17, 20])
def test_a_split_to_sequence_becomes_a_split_of_the_same_outputs(split, axis, positions, concat_axis, keepdims, opset):
    model = _graph(split, axis, positions, concat_axis, opset, keepdims)
    rewritten = split_sequences(model)
    ops = {node.op_type for node in rewritten.graph.node}
    assert "Split" in ops and not ops & SEQUENCE_OPS
    assert next(node for node in rewritten.graph.node if node.op_type == "Split").name == "to_sequence"
    onnx.checker.check_model(rewritten, full_check=True)
    x = np.random.default_rng(0).normal(size=(2, 3, 10)).astype(np.float32)
    np.testing.assert_array_equal(_run(rewritten, x), _run(model, x))


def _read_otherwise(kind: str) -> onnx.ModelProto:
    """A sequence that something other than a SequenceAt at a constant position reads."""
    model = _graph(np.array(5, np.int64), -1, [0], -1)
    graph = model.graph
    if kind == "SequenceLength":
        graph.node.append(helper.make_node("SequenceLength", ["seq"], ["count"]))
        graph.output.append(helper.make_tensor_value_info("count", TensorProto.INT64, []))
    elif kind == "computed position":
        graph.input.append(helper.make_tensor_value_info("i", TensorProto.INT64, []))
        graph.node.insert(len(graph.node) - 1, helper.make_node("SequenceAt", ["seq", "i"], ["other"]))
    elif kind == "graph output":
        sequence = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, None))
        graph.output.append(helper.make_value_info("seq", sequence))
    elif kind == "scalar split of the batch axis":
        graph.node[0].attribute[0].i = 0
    return model


@pytest.mark.parametrize(
    "kind", ["SequenceLength", "computed position", "graph output", "scalar split of the batch axis"]
)
def test_a_sequence_read_otherwise_stays(kind):
    model = _read_otherwise(kind)
    assert split_sequences(model) is model


def test_a_sequence_left_as_it_is_is_refused_by_the_portable_engine_naming_it():
    """A weight before the split: its gradient would pass through the SplitToSequence, which SequenceLength reads."""
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["scaled"]),
        helper.make_node("SplitToSequence", ["scaled", "five"], ["seq"], axis=-1),
        helper.make_node("SequenceAt", ["seq", "zero"], ["part"]),
        helper.make_node("SequenceLength", ["seq"], ["count"]),
        helper.make_node("ReduceMean", ["part"], ["logits"], axes=[1], keepdims=0),
    ]
    initializers = [
        numpy_helper.from_array(np.ones(10, np.float32), "w"),
        numpy_helper.from_array(np.array(5, np.int64), "five"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
    ]
    graph = helper.make_graph(
        nodes,
        "left",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 10])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        initializers,
    )
    imported = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert "SplitToSequence" in {node.op_type for node in imported.layers[-1].graph.graph.node}
    with pytest.raises(UnsupportedError, match=r"No gradient rule for 2 ops .*'SplitToSequence'"):
        imported.compile(SGD(0.1), LOSS, engine="portable")
    imported.close()


def test_the_import_of_torchs_chunk_predicts_what_the_file_does():
    arrays = np.load(f"{FIXTURE}.npz")
    original = onnx.load(f"{FIXTURE}.onnx")
    assert {"SplitToSequence", "SequenceAt"} <= {node.op_type for node in original.graph.node}
    model = from_onnx(f"{FIXTURE}.onnx")
    assert not {node.op_type for node in model.layers[-1].graph.graph.node} & SEQUENCE_OPS
    session = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": arrays["x"][0]})[0]
    np.testing.assert_allclose(model.predict(arrays["x"][0]), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(expected, arrays["logits_0"], rtol=0, atol=1e-5)  # torch's


@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_five_sgd_steps_of_torchs_chunk_equal_torchs(engine):
    arrays = np.load(f"{FIXTURE}.npz")
    model = from_onnx(f"{FIXTURE}.onnx")
    model.compile(SGD(learning_rate=0.1), LOSS, engine=engine)
    for step in range(len(arrays["x"])):
        model.fit(
            arrays["x"][step], arrays["labels"][step], batch_size=len(arrays["x"][step]), shuffle=False, verbose=0
        )
    weights = model.get_weights()
    trained = [key for key in arrays.files if key.startswith("step_")]
    assert sorted(key.split("/", 1)[1] for key in trained) == sorted(weights)
    for key in trained:
        reference = arrays[key]
        difference = float(np.abs(weights[key.split("/", 1)[1]] - reference).max()) / float(np.abs(reference).max())
        assert difference <= 1e-5, key
    model.close()


def test_the_rewritten_graph_saves_and_loads(tmp_path):
    arrays = np.load(f"{FIXTURE}.npz")
    model = from_onnx(f"{FIXTURE}.onnx")
    model.compile(SGD(learning_rate=0.1), LOSS)
    model.fit(arrays["x"][0], arrays["labels"][0], batch_size=4, verbose=0)
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    np.testing.assert_allclose(loaded.predict(arrays["x"][1]), model.predict(arrays["x"][1]), rtol=0, atol=1e-6)
    model.export(tmp_path / "finetuned.onnx")
    exported = onnx.load(tmp_path / "finetuned.onnx")
    assert not {node.op_type for node in exported.graph.node} & SEQUENCE_OPS
    model.close()
    loaded.close()
