"""What gradients() takes (autodiff/_model_argument.py): a ModelProto or a path, `wrt` values of a float type, shapes
inferred from the graph inputs rather than an exporter's stale value_info, and a graph onnx's checker accepts;
errors name gradients(...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import autodiff
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelFileError

RNG = np.random.default_rng(11)


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def model_of(nodes, inputs, initializers=(), value_info=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers],
        value_info=list(value_info),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def embedding() -> onnx.ModelProto:
    """loss = sum(table[ids] * w): an Embedding as torch exports it, with an int64 input and a bool initializer."""
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["rows"]),
        helper.make_node("Mul", ["rows", "w"], ["scaled"]),
        helper.make_node("Where", ["keep", "scaled", "zero"], ["kept"]),
        helper.make_node("ReduceSum", ["kept"], ["loss"], keepdims=0),
    ]
    initializers = [
        ("table", RNG.normal(size=(5, 3)).astype(np.float32)),
        ("w", np.float32(2.0)),
        ("keep", np.array([True, False, True])),
        ("zero", np.float32(0.0)),
    ]
    return model_of(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])], initializers)


# --- the model argument -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_path", [str, Path], ids=["str", "Path"])
def test_a_path_is_read_as_from_onnx_reads_it_external_data_from_its_folder(tmp_path, as_path):
    model = embedding()
    ids = np.array([4, 0, 4], np.int64)
    expected = run(autodiff.gradients(model, ["table", "w"]), {"ids": ids})
    onnx.save(model, tmp_path / "model.onnx", save_as_external_data=True, size_threshold=0, location="weights.bin")
    assert (tmp_path / "weights.bin").is_file()
    got = run(autodiff.gradients(as_path(tmp_path / "model.onnx"), ["table", "w"]), {"ids": ids})
    assert sorted(got) == ["loss", "table_grad", "w_grad"]
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)


@pytest.mark.parametrize(
    ("model", "error", "match"),
    [
        (42, InvalidTypeError, r"gradients\(model=\.\.\.\) expects an onnx.ModelProto or a path to an .onnx file. "),
        ("missing.onnx", ModelFileError, r"missing.onnx"),
    ],
    ids=["not a model", "no such file"],
)
def test_a_model_that_is_neither_proto_nor_readable_file_is_refused(model, error, match):
    with pytest.raises(error, match=match):
        autodiff.gradients(model, ["w"])


@pytest.mark.parametrize(
    ("wrt", "match"),
    [
        (["ids"], r"'ids' \(int64\)"),
        (["w", "keep"], r"'keep' \(bool\)"),
    ],
    ids=["int64 input", "bool initializer"],
)
def test_a_wrt_value_of_an_integer_or_bool_type_is_refused_naming_its_dtype(wrt, match):
    with pytest.raises(InvalidArgumentError, match=rf"gradients\(wrt=\.\.\.\) expects floating-point values.*{match}"):
        autodiff.gradients(embedding(), wrt)


def test_an_invalid_graph_is_refused_with_onnx_s_reason_as_an_onnxtrain_error():
    """torch exports cross_entropy with probability targets as SoftmaxCrossEntropyLoss with float labels, which
    ONNX's schema refuses: onnx's InferenceError came out as it was."""
    nodes = [helper.make_node("SoftmaxCrossEntropyLoss", ["x", "target"], ["loss"], name="/SoftmaxCrossEntropyLoss")]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("x", "target")]
    with pytest.raises(
        InvalidArgumentError,
        match=r"gradients\(model=\.\.\.\) expects a valid ONNX model, but onnx's checker refuses this one: "
        r".*SoftmaxCrossEntropyLoss.*labels.*tensor\(float\)",
    ) as caught:
        autodiff.gradients(model_of(nodes, inputs), ["x"])
    assert isinstance(caught.value.__cause__, onnx.shape_inference.InferenceError | onnx.checker.ValidationError)


# --- value_info ---------------------------------------------------------------------------------------------------
def stale_value_info(sizes: list[int | str]) -> onnx.ModelProto:
    """x [batch, seq, 3] * w, averaged over the sequence, flattened by Reshape [-1], summed: its value_info records
    `h`, the product, at `sizes` (an exporter's sizes at export time)."""
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["h"]),
        helper.make_node("ReduceMean", ["h"], ["m"], axes=[1], keepdims=0),
        helper.make_node("Reshape", ["m", "flat"], ["r"]),
        helper.make_node("ReduceSum", ["r"], ["loss"], keepdims=0),
    ]
    initializers = [("w", RNG.normal(size=3).astype(np.float32)), ("flat", np.array([-1], np.int64))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 3])]
    recorded = [helper.make_tensor_value_info("h", TensorProto.FLOAT, sizes)]
    return model_of(nodes, inputs, initializers, recorded)


@pytest.mark.parametrize("sizes", [[2, 5, 3], ["batch", 5, 3]], ids=["batch and length", "length"])
def test_value_info_dims_the_inputs_do_not_imply_are_not_taken_for_static(sizes):
    """The value_info says h is [2, 5, 3]: the gradient built for that failed at another batch, and divided by 5
    at another length."""
    model = stale_value_info(sizes)
    trained = autodiff.gradients(model, ["w", "x"])
    w = numpy_helper.to_array(model.graph.initializer[0])
    for shape in [(2, 5, 3), (3, 4, 3)]:
        x = RNG.normal(size=shape).astype(np.float32)
        got = run(trained, {"x": x})
        np.testing.assert_allclose(got["w_grad"], x.sum((0, 1)) / shape[1], rtol=1e-5)
        np.testing.assert_allclose(got["x_grad"], np.broadcast_to(w / shape[1], shape), rtol=1e-6)


def test_a_value_inference_cannot_type_keeps_its_recorded_rank_but_not_its_sizes():
    from onnxtrain.autodiff._model_argument import drop_stale_value_info
    from onnxtrain.graph import GraphBuilder

    model = stale_value_info([2, 5, 3])
    model.graph.value_info.append(helper.make_tensor_value_info("elsewhere", TensorProto.FLOAT, [2, 5]))
    builder = GraphBuilder.from_model(model)
    drop_stale_value_info(builder)
    kept = {
        v.name: [d.dim_value or d.dim_param or None for d in v.type.tensor_type.shape.dim] for v in builder._value_info
    }
    assert kept == {"elsewhere": [None, None]}  # h is inferred from x: ['batch', 'seq', 3]
    assert builder.value_types()["h"].tensor_type.shape.dim[1].dim_param == "seq"


def test_a_graph_whose_inputs_are_static_keeps_its_value_info():
    from onnxtrain.autodiff._model_argument import drop_stale_value_info
    from onnxtrain.graph import GraphBuilder

    model = stale_value_info([2, 5, 3])
    model.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 3]))
    builder = GraphBuilder.from_model(model)
    drop_stale_value_info(builder)
    assert [v.name for v in builder._value_info] == ["h"]
