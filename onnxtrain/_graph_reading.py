"""GraphReading, the base of GraphBuilder that reads the graph so far: its nodes, inputs, outputs and initializers,
the types and shapes shape inference gives its values, and whether anything reads a value (autodiff reads these)."""

from __future__ import annotations

import onnx
from onnx import helper

from onnxtrain._graph_names import subgraph_reads

Dim = int | str | None


class GraphReading:
    """The read side of `GraphBuilder`, which subclasses it and fills the lists declared here."""

    opset: int
    ir_version: int
    _nodes: list[onnx.NodeProto]
    _initializers: list[onnx.TensorProto]
    _inputs: list[onnx.ValueInfoProto]
    _outputs: list[onnx.ValueInfoProto]
    _value_info: list[onnx.ValueInfoProto]
    _names: set[str]

    @property
    def nodes(self) -> tuple[onnx.NodeProto, ...]:
        """The nodes added so far, in order (a topological order). Read them; add outputs with `node_output`."""
        return tuple(self._nodes)

    @property
    def inputs(self) -> tuple[onnx.ValueInfoProto, ...]:
        return tuple(self._inputs)

    @property
    def outputs(self) -> tuple[onnx.ValueInfoProto, ...]:
        return tuple(self._outputs)

    @property
    def initializers(self) -> tuple[onnx.TensorProto, ...]:
        return tuple(self._initializers)

    def complete_output_types(self, types: dict[str, onnx.TypeProto]) -> None:
        """Give the graph outputs declared without a shape (valid, but refused by the full checker) their type from
        `types` (see `value_types`) where it has one."""
        for output in self._outputs:
            known = types.get(output.name)
            if (
                known is not None
                and not output.type.tensor_type.HasField("shape")
                and known.tensor_type.HasField("shape")
            ):
                output.type.CopyFrom(known)

    def remove_if_unread(self, value: str) -> bool:
        """Remove the node that computes `value` when nothing reads it and it is no graph output: a value made in case
        a later node needed it (autodiff's loss seed). Returns whether a node was removed."""
        read = {name for node in self._nodes for name in node.input} | subgraph_reads(self._nodes)
        if value in read or value in {o.name for o in self._outputs}:
            return False
        for i, node in enumerate(self._nodes):
            if list(node.output) == [value]:
                del self._nodes[i]
                return True
        return False

    def value_types(self) -> dict[str, onnx.TypeProto]:
        """The type (element type and shape where known) of every value of the graph so far, from the declared
        inputs, outputs and initializers and ONNX shape inference over the nodes (unknown values are missing)."""
        graph = helper.make_graph(
            self._nodes, "value_types", self._inputs, self._outputs, self._initializers, value_info=self._value_info
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = self.ir_version
        inferred = model.graph
        for data_prop in (True, False):  # propagating shape values (Shape -> Reshape) fails on a few graphs
            try:
                inferred = onnx.shape_inference.infer_shapes(model, data_prop=data_prop).graph
                break
            except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
                continue
        types = {t.name: helper.make_tensor_type_proto(t.data_type, list(t.dims)) for t in self._initializers}
        for value in [*inferred.input, *inferred.value_info, *inferred.output]:
            if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
                types.setdefault(value.name, value.type)
        return types

    def has_value(self, name: object) -> bool:
        """Whether `name` is a value of the graph so far: an input, an initializer or a node's output."""
        return isinstance(name, str) and name in self._names

    def inferred_shape(self, value: str) -> list[Dim] | None:
        """`value`'s shape by ONNX shape inference over the nodes so far (an int per known dimension, the name of a
        symbolic one, None for an unknown one), or None where inference gives no shape. Initializers take part by
        their types only, so no weight is copied."""
        weights = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self._initializers]
        graph = helper.make_graph(self._nodes, "shapes", [*self._inputs, *weights], [], value_info=self._value_info)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = self.ir_version
        for data_prop in (True, False):  # propagating shape values (Shape -> Reshape) fails on a few graphs
            try:
                inferred = onnx.shape_inference.infer_shapes(model, data_prop=data_prop).graph
                break
            except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
                continue
        else:
            return None
        for info in [*inferred.input, *inferred.value_info]:
            if info.name == value and info.type.tensor_type.HasField("shape"):
                dims = info.type.tensor_type.shape.dim
                return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]
        return None
