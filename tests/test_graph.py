"""GraphBuilder: names, shared values and subgraphs."""

from __future__ import annotations

import numpy as np

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


def test_subgraph_collects_nodes_apart_with_names_unique_across_both():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (2,))
    outer = b.node("Relu", [x])
    with b.subgraph() as body:
        inner = b.node("Relu", [x])
    assert [n.output[0] for n in body] == [inner] and inner != outer
    b.add_output(outer, "y", np.float32, (2,))
    assert [(n.op_type, n.output[0]) for n in b.build().graph.node] == [("Relu", "y")]
