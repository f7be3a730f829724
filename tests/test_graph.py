"""GraphBuilder: names, shared values and subgraphs."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
from onnx import helper

from onnxtrain.graph import GraphBuilder


def test_a_shared_value_is_emitted_once_and_reused():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (None, 3))
    made: list[str] = []

    def make() -> str:
        made.append(b.node("Shape", [x]))
        return made[-1]

    assert b.shared("shape", make) == b.shared("shape", make) == made[0] and len(made) == 1
    b.add_output(made[0], "shape_out", np.int64, (2,))
    assert [n.op_type for n in b.build().graph.node] == ["Shape"]  # which writes shape_out itself


def test_a_value_shared_inside_a_subgraph_is_not_reused_outside_it():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (2,))
    with b.subgraph() as body:
        inner = b.shared("relu", lambda: b.node("Relu", [x]))
        assert b.shared("relu", lambda: b.node("Relu", [x])) == inner
    outer = b.shared("relu", lambda: b.node("Relu", [x]))
    assert outer != inner and [n.output[0] for n in body] == [inner]


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


def test_subgraph_collects_nodes_apart_with_names_unique_across_both():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (2,))
    outer = b.node("Relu", [x])
    with b.subgraph() as body:
        inner = b.node("Relu", [x])
    assert [n.output[0] for n in body] == [inner] and inner != outer
    b.add_output(outer, "y", np.float32, (2,))
    assert [(n.op_type, n.output[0]) for n in b.build().graph.node] == [("Relu", "y")]
