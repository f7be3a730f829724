"""The shared harness that checks a gradient rule: one ONNX node, its gradient by `onnxtrain.autodiff.gradients`,
against central finite differences and, where ONNX Runtime's training build differentiates the op, its gradient graph.

A rule's test is a table row (`Case`) run by `check_case`:

    Case("Mul broadcast", "Mul", {"a": rand(2, 3), "b": rand(3)})

Float inputs are graph inputs and are differentiated (all of them unless `wrt` names some); integer and bool inputs,
and the float inputs named in `constants`, are initializers. `None` leaves an optional input out. The loss is a random
projection of every float output, sum(y * r), so every output element's gradient is exercised.

Precision: the model runs in float64 where ONNX Runtime has every double kernel it needs; where creating a float64
session fails with NOT_IMPLEMENTED, the check runs in float32 with the wider `FLOAT32` tolerance (see `Tolerance`).
ONNX Runtime's gradient builder makes float32 constants only, so the comparison with it is float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from onnxtrain import autodiff
from onnxtrain._onnx_versions import DEFAULT_IR_VERSION, min_ir_version

LOSS = "loss"


@dataclass(frozen=True)
class Tolerance:
    """Finite-difference step and the tolerances of `assert_allclose` (atol scaled by the largest gradient, at
    least 1)."""

    eps: float
    rtol: float
    atol: float


FLOAT64 = Tolerance(eps=1e-6, rtol=1e-5, atol=1e-6)
# float32 central differences of a float64-accumulated loss: rounding ~1e-7 * |y| / eps plus eps^2 truncation.
FLOAT32 = Tolerance(eps=1e-3, rtol=1e-2, atol=5e-3)
ORT_MATCH = Tolerance(eps=0.0, rtol=1e-4, atol=1e-5)


@dataclass
class Case:
    """One test row: `op_type` with `inputs` (node input name -> array, None: absent) and `attributes`.

    wrt: the inputs to differentiate (default: every float input not in `constants`).
    constants: float inputs that are initializers instead of graph inputs (Pow's exponent, Clip's bounds).
    num_outputs: how many outputs the node declares; `loss_outputs` (default: all float ones) enter the loss.
    extra_nodes: nodes emitted before the op (e.g. a Constant it reads); their outputs may be named in `node_inputs`.
    node_inputs: the node's input names (default: the keys of `inputs`, "" for None).
    tolerance: instead of FLOAT64/FLOAT32 (e.g. a wider one for an op whose finite differences are noisy).
    float32: set (to the reason) where float64 cannot be the reference: ONNX has no float64 form of the op, or
    ONNX Runtime's float64 kernel is wrong.
    """

    id: str
    op_type: str
    inputs: Mapping[str, np.ndarray | None]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    opset: int = 17
    wrt: Sequence[str] | None = None
    constants: Sequence[str] = ()
    num_outputs: int = 1
    loss_outputs: Sequence[int] | None = None
    extra_nodes: Sequence[onnx.NodeProto] = ()
    node_inputs: Sequence[str] | None = None
    tolerance: Tolerance | None = None
    float32: str = ""  # why the row runs in float32 only (no float64 form of the op, or a wrong one)
    ort_skip: str = ""  # why ONNX Runtime training's gradient graph is no reference for this row

    def __str__(self) -> str:
        return self.id


@dataclass
class Result:
    dtype: np.dtype
    analytic: dict[str, np.ndarray]
    numeric: dict[str, np.ndarray]
    model: onnx.ModelProto


def rand(*shape: int, low: float = -1.0, high: float = 1.0, seed: int | None = None) -> np.ndarray:
    """Uniform float64 values in [low, high), reproducible per shape unless `seed` says otherwise."""
    rng = np.random.default_rng(seed if seed is not None else sum(shape) * 7919 + len(shape))
    return rng.uniform(low, high, size=shape)


def away_from_zero(*shape: int, margin: float = 0.1, seed: int | None = None) -> np.ndarray:
    """Values in ±[margin, 1): no kink of Relu, Abs, Sign, Max within a finite-difference step."""
    values = rand(*shape, seed=seed)
    return np.where(values >= 0, margin + values * (1 - margin), -margin + values * (1 - margin))


def distinct(*shape: int, seed: int | None = None) -> np.ndarray:
    """A permutation of evenly spaced values: no two within 1/size of each other (no ties for Max, MaxPool)."""
    size = int(np.prod(shape))
    rng = np.random.default_rng(seed if seed is not None else size)
    return (rng.permutation(size) / size * 2 - 1 + 0.5 / size).reshape(shape)


def check_case(case: Case) -> Result:
    """Check the rule on `case` against finite differences; returns what was compared (and in which dtype)."""
    for dtype, tolerance in ((np.dtype(np.float64), FLOAT64), (np.dtype(np.float32), FLOAT32)):
        if case.float32 and dtype == np.float64:
            continue
        try:
            return _check(case, dtype, case.tolerance or tolerance)
        except OrtNotImplemented:
            if dtype == np.float32:
                raise
    raise AssertionError("unreachable")


def check_rule(
    op_type: str,
    inputs: Mapping[str, np.ndarray | None],
    attributes: Mapping[str, Any] | None = None,
    opset: int = 17,
    **options: Any,
) -> Result:
    """`check_case` for one op without a table: `check_rule("Relu", {"x": away_from_zero(3, 4)})`."""
    return check_case(Case(op_type, op_type, inputs, attributes or {}, opset, **options))


def forward_model(case: Case, dtype: np.dtype) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[str]]:
    """(the node alone, outputs as graph outputs; its feeds in `dtype`; the wrt names)."""
    feeds, initializers, wrt = _split_inputs(case, dtype)
    node_inputs = (
        list(case.node_inputs)
        if case.node_inputs is not None
        else ["" if value is None else name for name, value in case.inputs.items()]
    )
    outputs = ["y"] + [f"y{i}" for i in range(1, case.num_outputs)]
    node = helper.make_node(case.op_type, node_inputs, outputs, name="node_under_test", **case.attributes)
    graph = helper.make_graph(
        [*(_constants_as(n, dtype) for n in case.extra_nodes), node],
        "rule_under_test",
        [helper.make_tensor_value_info(name, _elem(a.dtype), a.shape) for name, a in feeds.items()],
        [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in outputs],
        [numpy_helper.from_array(a, name) for name, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = max(DEFAULT_IR_VERSION, min_ir_version(case.opset))
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    # graph outputs take their inferred types
    inferred = {v.name: v for v in model.graph.value_info}
    for output in model.graph.output:
        if output.name in inferred:
            output.CopyFrom(inferred[output.name])
    untyped = [o.name for o in model.graph.output if not o.type.tensor_type.elem_type]
    if untyped:  # ONNX infers no type for some function ops (GroupNormalization): take what its reference makes
        values = ReferenceEvaluator(model).run(untyped, feeds)
        for output in model.graph.output:
            if output.name in untyped:
                value = values[untyped.index(output.name)]
                output.CopyFrom(helper.make_tensor_value_info(output.name, _elem(value.dtype), value.shape))
    return model, feeds, wrt


def loss_model(
    case: Case, dtype: np.dtype
) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[str], dict[str, np.ndarray]]:
    """The node plus loss = sum_k sum(y_k * r_k) over its float outputs; also returns the projections r_k."""
    model, feeds, wrt = forward_model(case, dtype)
    graph = model.graph
    chosen = case.loss_outputs if case.loss_outputs is not None else range(case.num_outputs)
    projections, terms = {}, []
    for k in chosen:
        output = graph.output[k]
        if output.type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
            continue
        shape = [d.dim_value for d in output.type.tensor_type.shape.dim]
        out_dtype = helper.tensor_dtype_to_np_dtype(output.type.tensor_type.elem_type)
        r = np.random.default_rng(100 + k).uniform(-1, 1, size=shape).astype(out_dtype)
        projections[output.name] = r
        graph.initializer.append(numpy_helper.from_array(r, f"r_{output.name}"))
        graph.node.append(helper.make_node("Mul", [output.name, f"r_{output.name}"], [f"p_{output.name}"]))
        graph.node.append(helper.make_node("ReduceSum", [f"p_{output.name}"], [f"s_{output.name}"], keepdims=0))
        terms.append(f"s_{output.name}")
    total = terms[0]
    for i, term in enumerate(terms[1:]):  # Add, not Sum: ONNX Runtime training has no gradient for Sum
        graph.node.append(helper.make_node("Add", [total, term], [f"total_{i}"]))
        total = f"total_{i}"
    graph.node.append(helper.make_node("Identity", [total], [LOSS]))
    loss_dtype = next(iter(projections.values())).dtype
    graph.output.insert(0, helper.make_tensor_value_info(LOSS, _elem(loss_dtype), []))
    onnx.checker.check_model(model, full_check=True)
    return model, feeds, wrt, projections


def autodiff_gradients(case: Case, dtype: np.dtype) -> tuple[dict[str, np.ndarray], onnx.ModelProto]:
    model, feeds, wrt, _ = loss_model(case, dtype)
    grad_model = autodiff.gradients(model, wrt, LOSS)
    assert {n.domain for n in grad_model.graph.node} <= {""}, "gradients must be default-domain ONNX"
    session = _session(grad_model)
    names = [f"{name}_grad" for name in wrt]
    values = session.run(names, feeds)
    for name, value in zip(wrt, values, strict=True):
        assert value.shape == feeds[name].shape and value.dtype == dtype, (name, value.shape, value.dtype)
    return dict(zip(wrt, values, strict=True)), grad_model


def numeric_gradients(case: Case, dtype: np.dtype, eps: float) -> dict[str, np.ndarray]:
    """Central differences of the float64 projection of the node's outputs."""
    _, feeds, wrt, projections = loss_model(case, dtype)
    forward, _, _ = forward_model(case, dtype)
    session = _session(forward)
    names = list(projections)

    def loss(inputs: dict[str, np.ndarray]) -> float:
        outputs = session.run(names, inputs)
        return float(sum(np.sum(y.astype(np.float64) * projections[n]) for n, y in zip(names, outputs, strict=True)))

    grads = {}
    for name in wrt:
        x = feeds[name]
        g = np.zeros(x.shape)
        for index in np.ndindex(x.shape):
            values = []
            for sign in (1, -1):
                shifted = x.copy()
                shifted[index] += sign * eps
                values.append(loss({**feeds, name: shifted}))
            g[index] = (values[0] - values[1]) / (2 * eps)
        grads[name] = g
    return grads


def ort_gradients(case: Case) -> dict[str, np.ndarray]:
    """ONNX Runtime training's gradient graph of the float32 loss model, run; pytest.skip where it has no gradient
    for the op. (The gradient builder lives in the training build's native module, which imports without torch.)"""
    import pytest

    from onnxtrain import _ort_training

    if not _ort_training.training_available():
        pytest.skip("no onnxruntime-training build installed")
    if case.ort_skip:
        pytest.skip(case.ort_skip)
    from onnxruntime.capi.onnxruntime_pybind11_state import GradientGraphBuilder

    model, feeds, wrt, _ = loss_model(case, np.dtype(np.float32))
    builder = GradientGraphBuilder(model.SerializeToString(), {LOSS}, set(wrt), LOSS)
    try:
        builder.build()
    except RuntimeError as e:
        if f"has not been registered: {case.op_type} " in str(e):
            pytest.skip(f"ONNX Runtime training has no gradient for {case.op_type} in this form")
        raise
    session = _session(onnx.load_from_string(builder.get_model()))
    return dict(zip(wrt, session.run([f"{name}_grad" for name in wrt], feeds), strict=True))


def _check(case: Case, dtype: np.dtype, tolerance: Tolerance) -> Result:
    analytic, model = autodiff_gradients(case, dtype)
    numeric = numeric_gradients(case, dtype, tolerance.eps)
    for name in analytic:
        scale = max(1.0, float(np.max(np.abs(numeric[name]), initial=0.0)))
        np.testing.assert_allclose(
            analytic[name],
            numeric[name],
            rtol=tolerance.rtol,
            atol=tolerance.atol * scale,
            err_msg=f"{case.id}: d loss / d {name} ({dtype.name}) differs from finite differences",
        )
    return Result(dtype, analytic, numeric, model)


def check_against_ort(case: Case) -> None:
    """The rule's float32 gradients against ONNX Runtime training's gradient graph."""
    expected = ort_gradients(case)
    actual, _ = autodiff_gradients(case, np.dtype(np.float32))
    for name, value in expected.items():
        scale = max(1.0, float(np.max(np.abs(value), initial=0.0)))
        np.testing.assert_allclose(
            actual[name],
            value,
            rtol=ORT_MATCH.rtol,
            atol=ORT_MATCH.atol * scale,
            err_msg=f"{case.id}: d loss / d {name} differs from ONNX Runtime training's gradient",
        )


def ort_cases(cases: Sequence[Case], differs: Mapping[str, str]) -> list[Any]:
    """`cases` as pytest parameters for `check_against_ort`, the ids in `differs` (where ONNX Runtime training's
    gradient differs from finite differences, which the rules match) as strict xfails giving the reason."""
    import pytest  # a test helper: pytest is there whenever the tests run

    return [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=differs[c.id])] if c.id in differs else []
        )
        for c in cases
    ]


def torch_flatten_from_axis_2(x: str, out: str, name: str = "") -> list[onnx.NodeProto]:
    """torch's `x.flatten(2)` as TorchScript exports it: Reshape(x, Concat(Shape(x)[:2], [-1])), a shape computed
    at run time, which hides the flattened length from ONNX's shape inference where the batch is symbolic."""

    def ints(output: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [output], value=numpy_helper.from_array(np.array(values, np.int64)))

    return [
        helper.make_node("Shape", [x], ["shape"]),
        ints("zero", [0]),
        ints("two", [2]),
        ints("minus_one", [-1]),
        helper.make_node("Slice", ["shape", "zero", "two"], ["first_two"]),
        helper.make_node("Concat", ["first_two", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", [x, "target"], [out], name=name),
    ]


def check_symbolic_batch(case: Case) -> None:
    """The rule's float32 gradients with the first axis of input x (and of the node's outputs) a symbolic "batch",
    as a graph for any batch size has it, against those of the static shapes."""
    dtype = np.dtype(np.float32)
    static, _ = autodiff_gradients(case, dtype)
    model, feeds, wrt, _ = loss_model(case, dtype)
    graph = model.graph
    for value in (*(v for v in graph.input if v.name == "x"), *graph.output[1:]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]
    session = _session(autodiff.gradients(model, wrt, LOSS))
    for name, value in zip(wrt, session.run([f"{name}_grad" for name in wrt], feeds), strict=True):
        np.testing.assert_allclose(value, static[name], rtol=1e-5, atol=1e-6, err_msg=f"{case.id}: {name}")


def _split_inputs(case: Case, dtype: np.dtype) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    feeds, initializers = {}, {}
    for name, value in case.inputs.items():
        if value is None:
            continue
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(dtype)
            (initializers if name in case.constants else feeds)[name] = value
        else:
            initializers[name] = value
    wrt = list(case.wrt) if case.wrt is not None else list(feeds)
    return feeds, initializers, wrt


def _constants_as(node: onnx.NodeProto, dtype: np.dtype) -> onnx.NodeProto:
    """`node`, with a Constant's float value in `dtype` (extra nodes are written in float64)."""
    if node.op_type != "Constant" or not node.attribute or node.attribute[0].name != "value":
        return node
    value = numpy_helper.to_array(node.attribute[0].t)
    if value.dtype.kind != "f":
        return node
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.attribute[0].t.CopyFrom(numpy_helper.from_array(value.astype(dtype)))
    return copy


def _elem(dtype: np.dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
