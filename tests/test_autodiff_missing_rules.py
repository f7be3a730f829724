"""What gradients() refuses because no rule differentiates a node on the path to the loss: ops without a rule (all
listed in one error, each op once) and nodes whose subgraphs (If, Loop, Scan) read a differentiated value from the
graph around them, whose gradient was silently zero before."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxtrain import autodiff
from onnxtrain.errors import UnsupportedError

FLOAT = TensorProto.FLOAT


def model_of(nodes, inputs, initializers=(), opset=17) -> onnx.ModelProto:
    """x [3] and the given inputs, loss = ReduceSum(y); `initializers` as (name, array)."""
    graph = helper.make_graph(
        [*nodes, helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)],
        "g",
        [helper.make_tensor_value_info("x", FLOAT, [3]), *inputs],
        [helper.make_tensor_value_info("loss", FLOAT, [])],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def body(nodes, inputs, outputs) -> onnx.GraphProto:
    return helper.make_graph(nodes, "body", inputs, outputs)


def value(name: str, elem: int = FLOAT, shape=(3,)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape) if shape is not None else None)


W = [("w", np.array([0.5], np.float32))]
HW = helper.make_node("Mul", ["x", "w"], ["hw"])  # the differentiated value the subgraphs read


def if_reading_hw() -> onnx.ModelProto:
    then = body([helper.make_node("Mul", ["hw", "hw"], ["sq"])], [], [value("sq")])
    other = body([helper.make_node("Identity", ["hw"], ["same"])], [], [value("same")])
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then, else_branch=other)
    return model_of([HW, node], [value("cond", TensorProto.BOOL, ())], W)


def loop_reading_hw(nested_if: bool = False) -> onnx.ModelProto:
    """y = hw added to zeros M times, in a Loop body; with `nested_if`, by an If inside the body."""
    if nested_if:
        branch = body([helper.make_node("Identity", ["hw"], ["taken"])], [], [value("taken")])
        step = helper.make_node("If", ["keep_in"], ["add"], then_branch=branch, else_branch=branch)
    else:
        step = helper.make_node("Identity", ["hw"], ["add"])
    loop_body = body(
        [
            step,
            helper.make_node("Add", ["v_in", "add"], ["v_out"]),
            helper.make_node("Identity", ["keep_in"], ["keep"]),
        ],
        [value("i", TensorProto.INT64, ()), value("keep_in", TensorProto.BOOL, ()), value("v_in")],
        [value("keep", TensorProto.BOOL, ()), value("v_out")],
    )
    node = helper.make_node("Loop", ["trips", "", "zeros"], ["y"], name="repeat", body=loop_body)
    initializers = [*W, ("trips", np.array(2, np.int64)), ("zeros", np.zeros(3, np.float32))]
    return model_of([HW, node], [], initializers)


def scan_reading_hw() -> onnx.ModelProto:
    """y = the running sum of hw * t over the rows t of a constant, in a Scan body."""
    scan_body = body(
        [helper.make_node("Mul", ["hw", "t"], ["term"]), helper.make_node("Add", ["s_in", "term"], ["s_out"])],
        [value("s_in"), value("t")],
        [value("s_out")],
    )
    node = helper.make_node("Scan", ["zeros", "rows"], ["y"], name="accumulate", body=scan_body, num_scan_inputs=1)
    initializers = [*W, ("zeros", np.zeros(3, np.float32)), ("rows", np.ones((2, 3), np.float32))]
    return model_of([HW, node], [], initializers)


@pytest.mark.parametrize(
    ("model", "op", "node"),
    [
        (if_reading_hw(), "If", "branch"),
        (loop_reading_hw(), "Loop", "repeat"),
        (scan_reading_hw(), "Scan", "accumulate"),
        (loop_reading_hw(nested_if=True), "Loop", "repeat"),
    ],
    ids=["If branches", "Loop body", "Scan body", "If inside a Loop body"],
)
def test_a_subgraph_that_reads_a_differentiated_value_is_refused(model, op, node):
    with pytest.raises(
        UnsupportedError,
        match=rf"No gradient rule for op '{op}' \(domain 'ai.onnx'\): node '{node}' computes 'y', which the loss "
        r"'loss' depends on; its subgraphs read 'hw' from the graph around it \(implicit inputs, which no rule "
        r"differentiates\), and the gradients of 'w', 'x' need it\.",
    ) as caught:
        autodiff.gradients(model, ["w", "x"])
    assert ("fold_constants" in str(caught.value)) == (op == "If")


def test_a_subgraph_that_reads_no_differentiated_value_needs_no_rule():
    """An If that reads only what the loss does not differentiate (here `x` when only `v` is wanted) is left alone."""
    model = if_reading_hw()
    graph = model.graph
    graph.node.append(helper.make_node("Mul", ["loss", "v"], ["scaled"]))
    graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), "v"))
    graph.output.append(value("scaled", shape=()))
    trained = autodiff.gradients(model, ["v"], loss="scaled")
    assert "v_grad" in [o.name for o in trained.graph.output]


def test_a_rule_for_the_op_does_not_make_its_subgraph_reads_differentiable(monkeypatch):
    """A rule returns gradients of a node's inputs only: one registered for If still leaves `hw` without its own."""
    from onnxtrain.autodiff import _rules

    monkeypatch.setitem(_rules.RULES, ("", "If"), lambda ctx: [None])
    with pytest.raises(UnsupportedError, match=r"op 'If' .*its subgraphs read 'hw'"):
        autodiff.gradients(if_reading_hw(), ["w"])


def test_every_op_without_a_rule_is_listed_once_with_its_first_node_and_what_it_blocks():
    nodes = [
        helper.make_node("Shrink", ["x"], ["a"], name="s1"),
        helper.make_node("Shrink", ["a"], ["b"], name="s2"),
        helper.make_node("Mul", ["b", "w"], ["c"]),
        helper.make_node("LpNormalization", ["c"], ["y"], name="norm", axis=0),
    ]
    with pytest.raises(
        UnsupportedError,
        match=r"No gradient rule for 2 ops on the path from the wrt values to the loss 'loss': \(1\) 'Shrink' "
        r"\(domain 'ai.onnx'\): node 's1' computes 'a' \(2 Shrink nodes on the path\), which the loss depends on, "
        r"and the gradient of 'x' needs it; \(2\) 'LpNormalization' \(domain 'ai.onnx'\): node 'norm' computes 'y', "
        r"which the loss depends on, and the gradients of 'x', 'w' need it\. Add a rule with "
        r"@onnxtrain.autodiff.rule \(see docs/autodiff.md\) for each, or freeze those weights\.",
    ):
        autodiff.gradients(model_of(nodes, [], W), ["x", "w"])
