"""The value names a node list uses across its subgraphs, and the folding of output renames at build time."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
from onnx import helper

from onnxtrain._graph_names import subgraph_reads, subgraph_values
from onnxtrain.graph import GraphBuilder


def test_subgraph_names_reach_every_depth_and_skip_the_outer_graph():
    inner = helper.make_graph(
        [helper.make_node("Neg", ["outer_read"], ["inner_out"])],
        "inner",
        [],
        [helper.make_tensor_value_info("inner_out", onnx.TensorProto.FLOAT, [2])],
    )
    branch = helper.make_graph(
        [
            helper.make_node("If", ["cond"], ["nested_out"], then_branch=inner, else_branch=inner),
            helper.make_node("Abs", ["nested_out"], ["branch_out"]),
        ],
        "branch",
        [],
        [helper.make_tensor_value_info("branch_out", onnx.TensorProto.FLOAT, [2])],
    )
    nodes = [
        helper.make_node("Relu", ["x"], ["outer_read"]),
        helper.make_node("If", ["cond"], ["chosen"], then_branch=branch, else_branch=branch),
    ]
    assert subgraph_values(nodes) == {"inner_out", "nested_out", "branch_out"}
    assert subgraph_reads(nodes) == {"outer_read", "cond", "nested_out"}


def test_a_renamed_output_is_written_by_its_producer_and_read_under_its_new_name():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (2,))
    y = b.node("Relu", [x])
    b.add_output(y, "logits", np.float32, (2,))
    b.add_output(b.node("Neg", [y]), "negated", np.float32, (2,))
    model = b.build()
    assert [(n.op_type, list(n.input), list(n.output)) for n in model.graph.node] == [
        ("Relu", ["x"], ["logits"]),
        ("Neg", ["logits"], ["negated"]),
    ]
    run = onnx.reference.ReferenceEvaluator(model).run(None, {"x": np.array([-1.0, 2.0], np.float32)})
    np.testing.assert_array_equal(run[0], [0.0, 2.0])
    np.testing.assert_array_equal(run[1], [-0.0, -2.0])


def test_renames_that_no_producer_can_take_keep_their_identity():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (2,))
    y = b.node("Relu", [x])
    b.add_output(x, "passed_through", np.float32, (2,))  # a graph input: no node computes it
    b.add_output(y, "first", np.float32, (2,))
    b.add_output(y, "second", np.float32, (2,))  # only one output can take the producer's name
    read = b.node("Sigmoid", [x])
    with b.subgraph() as branch:
        inner = b.node("Neg", [read])  # a branch reads `read` by name: it keeps it
    then_branch = helper.make_graph(branch, "then", [], [b.value_info(inner, np.float32, (2,))])
    with b.subgraph() as other:
        outer = b.node("Abs", [read])
    else_branch = helper.make_graph(other, "else", [], [b.value_info(outer, np.float32, (2,))])
    cond = b.node("Greater", [b.node("ReduceMax", [x], keepdims=0), b.constant(0.0)])
    b.add_output(b.node("If", [cond], then_branch=then_branch, else_branch=else_branch), "chosen", np.float32, (2,))
    b.add_output(read, "read", np.float32, (2,))
    nodes = b.build().graph.node
    identities = sorted((n.input[0], n.output[0]) for n in nodes if n.op_type == "Identity")
    assert identities == sorted([("x", "passed_through"), ("first", "second"), (read, "read")])
    assert [n.output[0] for n in nodes if n.op_type == "If"] == ["chosen"]  # an If's own output still folds
