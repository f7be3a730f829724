"""GraphBuilder: names, shared values and subgraphs."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import UnsupportedError
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


@pytest.mark.parametrize(
    ("op_type", "opset", "message"),
    [
        (
            "NotAnOp",
            17,
            r"^Layer 'scale_1' emits op type 'NotAnOp', which ONNX's default domain \(ai.onnx\) does not define in "
            r"opset 17: check its spelling against ONNX's operators",
        ),
        ("relu", 17, r"op type 'relu', which ONNX's default domain"),  # op types are case-sensitive
        ("Gelu", 17, r"op type 'Gelu'.* in opset 17: it exists from opset 20: compile or export with opset 20"),
    ],
)
def test_a_node_of_an_op_type_the_opset_lacks_is_refused_naming_it_the_layer_and_the_opset(op_type, opset, message):
    b = GraphBuilder(opset=opset)
    x = b.add_input("x", np.float32, (None, 3))
    with b.scope("scale_1"), pytest.raises(UnsupportedError, match=message):
        b.node(op_type, [x])
    assert not b.nodes


def test_an_op_of_another_domain_is_not_checked_and_default_ops_pass():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (None, 3))
    assert b.node("Relu", [x]) and b.node("Relu", [x], domain="ai.onnx")
    custom = b.node("MyOp", [x], domain="com.example")
    assert b.nodes[-1].domain == "com.example" and b.has_value(custom) and not b.has_value("nothing")


def test_inferred_shape_reads_shape_inference_without_copying_weights():
    b = GraphBuilder()
    x = b.add_input("x", np.float32, (None, 3))
    w = b.add_initializer("w", np.ones((3, 5), np.float32))
    y = b.node("MatMul", [x, w])
    assert b.inferred_shape(y) == ["batch", 5]
    flat = b.inferred_shape(b.node("Reshape", [y, b.add_initializer("shape", np.array([-1], np.int64))]))
    assert flat is not None and len(flat) == 1 and not isinstance(flat[0], int)  # an initializer's value is not read
    assert b.inferred_shape("nothing") is None
