"""Gradient rules of the ops torch.onnx exports for cumsum, topk/sort, prod, scatter_add/index_put and
interpolate(size=...) with a dynamic batch: CumSum, TopK, ReduceProd, ScatterElements and Resize's sizes. One row per
attribute form against finite differences (tests/gradcheck.py) and, where ONNX Runtime training has the gradient,
against its gradient graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from gradcheck import (
    Case,
    Tolerance,
    autodiff_gradients,
    check_against_ort,
    check_case,
    check_symbolic_batch,
    distinct,
    loss_model,
    ort_cases,
    rand,
)
from onnx import helper

from onnxtrain import autodiff
from onnxtrain.errors import UnsupportedError


def ints(*values: int, dtype: type = np.int64) -> np.ndarray:
    return np.array(values, dtype)


# Rows of groups with no zero, one zero and two zeros: the gradient of a product is exact at zeros. ONNX Runtime 1.19
# has no float64 ReduceProd: float32, where a product is linear in each factor (central differences are exact but
# for rounding, ~1e-7 |y| / eps), so a wide step and a tolerance ten to a hundred times tighter than FLOAT32's.
PROD = {"float32": "ONNX Runtime 1.19 has no float64 ReduceProd kernel", "tolerance": Tolerance(1e-2, 1e-4, 1e-4)}
WITH_ZEROS = np.array([[0.5, -1.5, 2.0], [0.7, 0.0, -1.2], [0.0, 1.3, 0.0], [-0.9, 1.1, 0.8]])
WITH_ZEROS_3D = np.stack([WITH_ZEROS, WITH_ZEROS[::-1] * 1.1])  # (2, 4, 3)

CUMSUM = [
    Case("CumSum (opset 13)", "CumSum", {"x": rand(3, 4), "axis": ints(1)}, opset=13),
    Case("CumSum exclusive (opset 14)", "CumSum", {"x": rand(3, 4), "axis": ints(0)}, {"exclusive": 1}, opset=14),
    Case("CumSum reverse", "CumSum", {"x": rand(2, 3, 4), "axis": ints(1)}, {"reverse": 1}),
    Case(
        "CumSum exclusive reverse, negative int32 axis (opset 21)",
        "CumSum",
        {"x": rand(2, 3, 4), "axis": ints(-1, dtype=np.int32)},
        {"exclusive": 1, "reverse": 1},
        opset=21,
    ),
]

TOPK = [
    Case("TopK largest (opset 13)", "TopK", {"x": distinct(3, 5), "k": ints(2)}, num_outputs=2, opset=13),
    Case(
        "TopK smallest unsorted axis 0",
        "TopK",
        {"x": distinct(4, 3), "k": ints(3)},
        {"axis": 0, "largest": 0, "sorted": 0},
        num_outputs=2,
    ),
    Case(
        "TopK k = axis size (torch sort, opset 21)",
        "TopK",
        {"x": distinct(2, 5, 3), "k": ints(5)},
        {"axis": -2, "largest": 1},
        num_outputs=2,
        opset=21,
    ),
]

REDUCE_PROD = [
    Case("ReduceProd axes attribute (opset 13)", "ReduceProd", {"x": WITH_ZEROS}, {"axes": [1]}, opset=13, **PROD),
    Case("ReduceProd keepdims 0", "ReduceProd", {"x": WITH_ZEROS_3D}, {"axes": [-1], "keepdims": 0}, **PROD),
    Case(
        "ReduceProd all axes",
        "ReduceProd",
        {"x": np.array([[0.6, -1.1, 0.0], [1.3, 0.9, -0.7]])},
        {"keepdims": 0},
        **PROD,
    ),
    Case("ReduceProd all, two zeros", "ReduceProd", {"x": WITH_ZEROS[2:3]}, {"keepdims": 0}, **PROD),
    Case(
        "ReduceProd axes input (opset 18)",
        "ReduceProd",
        {"x": WITH_ZEROS_3D, "axes": ints(0, 2)},
        {"keepdims": 0},
        opset=18,
        **PROD,
    ),
    Case(
        "ReduceProd axes input keepdims (opset 21)",
        "ReduceProd",
        {"x": WITH_ZEROS_3D, "axes": ints(1)},
        opset=21,
        **PROD,
    ),
    Case(
        "ReduceProd empty axes (opset 18)",
        "ReduceProd",
        {"x": rand(2, 3, low=0.5, high=1.5), "axes": ints()},
        opset=18,
        **PROD,
    ),
    Case(
        "ReduceProd noop (opset 18)",
        "ReduceProd",
        {"x": rand(2, 3), "axes": ints()},
        {"noop_with_empty_axes": 1},
        opset=18,
        **PROD,
    ),
]

SCATTER_ELEMENTS = [
    Case(
        "ScatterElements axis 0 (opset 13)",
        "ScatterElements",
        {"x": rand(3, 4), "i": np.array([[1, 0, 2, 1]], np.int64), "u": rand(1, 4)},
        opset=13,
    ),
    Case(
        "ScatterElements axis 1, negative indices",
        "ScatterElements",
        {"x": rand(3, 4), "i": np.array([[0, -1], [2, 1], [3, 0]], np.int64), "u": rand(3, 2)},
        {"axis": 1},
    ),
    Case(
        "ScatterElements add duplicates (opset 16, torch scatter_add)",
        "ScatterElements",
        {"x": rand(2, 4), "i": np.array([[0, 1, 1, 2, 2, 2], [3, 3, 0, 0, 1, 3]], np.int64), "u": rand(2, 6)},
        {"axis": 1, "reduction": "add"},
        opset=16,
    ),
    Case(
        "ScatterElements none, updates only (opset 18, torch index_put)",
        "ScatterElements",
        {"x": rand(4, 6), "i": np.full((4, 1), 2, np.int64), "u": rand(4, 1)},
        {"axis": 1, "reduction": "none"},
        opset=18,
    ),
    Case(
        "ScatterElements add, negative axis (opset 21)",
        "ScatterElements",
        {"x": rand(3, 2), "i": np.array([[2, 2], [-3, 0]], np.int64), "u": rand(2, 2)},
        {"axis": -2, "reduction": "add"},
        opset=21,
    ),
]


def resize_keeping(case_id: str, mode: str, opset: int, exporter: str) -> Case:
    """Resize with sizes = Concat(X's first two sizes from Shape at run time, [7, 3]), as torch exports
    F.interpolate(size=(7, 3)): TorchScript slices Shape(X), dynamo (opset 15+) gives Shape start/end; "skip" takes
    [7, 3] from Shape(skip) too, as a U-Net's F.interpolate(x, size=skip.shape[2:])."""
    inputs = {"x": rand(2, 3, 4, 5), "hw": ints(7, 3), "zero": ints(0), "two": ints(2)}
    if exporter == "torchscript":
        nodes = [
            helper.make_node("Shape", ["x"], ["x_shape"]),
            helper.make_node("Slice", ["x_shape", "zero", "two"], ["kept"]),
        ]
    else:
        nodes = [helper.make_node("Shape", ["x"], ["kept"], start=0, end=2)]
    if exporter == "skip":
        del inputs["hw"]
        inputs["skip"] = rand(1, 1, 7, 3)
        nodes.append(helper.make_node("Shape", ["skip"], ["hw"], start=2))
    nodes.append(helper.make_node("Concat", ["kept", "hw"], ["sizes"], axis=0))
    return Case(
        case_id,
        "Resize",
        inputs,
        {"mode": mode},
        opset,
        wrt=["x"],
        extra_nodes=nodes,
        node_inputs=["x", "", "", "sizes"],
        float32="ONNX Runtime's CPU build has no float64 Resize",
        ort_skip="ONNX Runtime training's CPU build has no ResizeGrad kernel",
    )


RESIZE = [
    resize_keeping("Resize sizes from Shape, nearest (TorchScript, opset 13)", "nearest", 13, "torchscript"),
    resize_keeping("Resize sizes from Shape, linear (dynamo, opset 18)", "linear", 18, "dynamo"),
    resize_keeping("Resize sizes from Shape of X and of a skip (opset 21)", "linear", 21, "skip"),
]

CASES = CUMSUM + TOPK + REDUCE_PROD + SCATTER_ELEMENTS + RESIZE


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_matches_finite_differences(case: Case) -> None:
    check_case(case)


# Rows where ONNX Runtime training's gradient differs from finite differences (which these rules match): strict xfails.
ORT_IGNORES_ADD = "ORT 1.19's ScatterElements gradient ignores reduction='add' (zeroes data where updates added)"
ORT_DIFFERS = {
    "ScatterElements add duplicates (opset 16, torch scatter_add)": ORT_IGNORES_ADD,
    "ScatterElements add, negative axis (opset 21)": ORT_IGNORES_ADD,
}
ORT_CASES = ort_cases(CASES, ORT_DIFFERS)


@pytest.mark.training
@pytest.mark.parametrize("case", ORT_CASES)
def test_rule_matches_onnxruntime_training(case: Case) -> None:
    check_against_ort(case)


SYMBOLIC_BATCH = {c.id for c in RESIZE} | {"CumSum reverse", "TopK smallest unsorted axis 0", "ReduceProd keepdims 0"}


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SYMBOLIC_BATCH], ids=str)
def test_rule_takes_a_batch_known_at_run_time_only(case: Case) -> None:
    check_symbolic_batch(case)


# Rows of CASES whose axis, k or axes input is then computed at run time (the rule cannot read it as a constant).
RUN_TIME_INPUT = {
    "CumSum reverse": "axis",
    "TopK largest (opset 13)": "k",
    "TopK k = axis size (torch sort, opset 21)": "k",
    "ReduceProd axes input keepdims (opset 21)": "axes",
}


@pytest.mark.parametrize("case", [c for c in CASES if c.id in RUN_TIME_INPUT], ids=str)
def test_rule_takes_an_input_computed_at_run_time(case: Case) -> None:
    """The gradients with the input behind an Identity (as torch's sort computes k = Gather(Shape(x), axis)) equal
    those of the constant form, which the table checks."""
    dtype = np.dtype(np.float32)
    expected, _ = autodiff_gradients(case, dtype)
    model, feeds, wrt, _ = loss_model(case, dtype)
    name = RUN_TIME_INPUT[case.id]
    node = next(n for n in model.graph.node if n.name == "node_under_test")
    node.input[list(node.input).index(name)] = f"{name}_rt"
    model.graph.node.insert(0, helper.make_node("Identity", [name], [f"{name}_rt"]))
    del model.graph.value_info[:]
    grads = autodiff.gradients(model, wrt)
    session = onnxruntime.InferenceSession(grads.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, value in zip(wrt, session.run([f"{w}_grad" for w in wrt], feeds), strict=True):
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=f"{case.id}: {name}")


REFUSED = [
    *(
        (
            Case(
                f"ScatterElements {reduction}",
                "ScatterElements",
                {"x": rand(3, 4), "i": np.array([[1, 0]], np.int64), "u": rand(1, 2)},
                {"reduction": reduction},
                opset=18,
            ),
            rf"reduction='{reduction}' \(expected 'none' or 'add'\)",
        )
        for reduction in ("mul", "max")
    ),
]


@pytest.mark.parametrize(("case", "message"), REFUSED, ids=[c.id for c, _ in REFUSED])
def test_rule_refuses_what_it_cannot_differentiate(case: Case, message: str) -> None:
    model, _, wrt, _ = loss_model(case, np.dtype(np.float32))
    with pytest.raises(UnsupportedError, match=f"{case.op_type} node 'node_under_test' with {message}"):
        autodiff.gradients(model, wrt)


def _with_symbolic_batch(case: Case) -> tuple[onnx.ModelProto, list[str]]:
    model, _, wrt, _ = loss_model(case, np.dtype(np.float32))
    for value in (model.graph.input[0], *model.graph.output[1:]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    return model, wrt


def test_resize_refuses_constant_sizes_for_a_batch_known_at_run_time_only() -> None:
    # sizes [2, 3, 7, 3] resizes a batch of any other size to 2: no static interpolation matrix for axis 0
    case = Case(
        "Resize", "Resize", {"x": rand(2, 3, 4, 5), "sizes": ints(2, 3, 7, 3)}, node_inputs=["x", "", "", "sizes"]
    )
    model, wrt = _with_symbolic_batch(case)
    with pytest.raises(UnsupportedError, match=r"with sizes=2 \(axis 0 is resized from 'batch' to 2"):
        autodiff.gradients(model, wrt)


def test_resize_refuses_spatial_sizes_computed_at_run_time() -> None:
    # sizes = Shape(x) * [1, 1, 2, 2] with the image size symbolic: axis 2's output size is unknown before run time
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Mul", ["s", "twice"], ["sizes"])]
    case = Case(
        "Resize",
        "Resize",
        {"x": rand(2, 3, 4, 5), "twice": ints(1, 1, 2, 2)},
        {"mode": "linear"},
        extra_nodes=nodes,
        node_inputs=["x", "", "", "sizes"],
    )
    model, _, wrt, _ = loss_model(case, np.dtype(np.float32))
    for value in (model.graph.input[0], *model.graph.output[1:]):
        for axis in (2, 3):
            value.type.tensor_type.shape.dim[axis].dim_param = f"{value.name}_{axis}"
    del model.graph.value_info[:]
    with pytest.raises(UnsupportedError, match=r"sizes='computed at run time' \(axis 2 is resized"):
        autodiff.gradients(model, wrt)
