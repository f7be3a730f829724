"""Inlining a foreign graph into a GraphBuilder: every node copied under a fresh name, except the two whose form
depends on the graph being emitted.

- BatchNormalization: the inference form (running statistics), as arithmetic in training graphs; with
  `train_batch_norm`, the batch's statistics, and the running ones updated with `builder.update_state`.
- Dropout: drops in training graphs (the node's ratio, 0.5 by default), the identity in every other graph.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain.errors import PortableEngineOnlyError, UnsupportedError
from onnxtrain.foreign import _graph
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._dropout import keep_mask, layer_key

# Ops whose gradient in ONNX Runtime's training build reads optional outputs (LayerNormalization's mean and
# inverse standard deviation): training graphs emit them.
_OUTPUTS_FOR_GRADIENTS = {"LayerNormalization": 3}


class Inliner:
    """Copies one graph's nodes into a builder under fresh names.

    Args:
        builder: the graph being emitted (its `training` decides BatchNormalization's and Dropout's form).
        graph: the stripped graph, in the builder's opset.
        names: foreign name -> builder name, given for the weights (the layer's initializers); filled here.
        owner: the layer's name, for messages and Dropout's random stream.
        train_batch_norm: normalize with batch statistics and update the running ones (batch_norm="train", in a
            training graph, the layer trainable).
    """

    def __init__(
        self, builder: GraphBuilder, graph: onnx.ModelProto, names: dict[str, str], owner: str, train_batch_norm: bool
    ):
        self.builder, self.graph, self.names, self.owner = builder, graph, names, owner
        self.train_batch_norm = train_batch_norm
        self.weights = set(names)
        self.types: dict[str, onnx.TypeProto] | None = None

    def run(self, data_inputs: Sequence[onnx.ValueInfoProto], xs: list[str]) -> str:
        """Emit every node, reading `xs` for the graph's `data_inputs`; returns the builder name of its output."""
        b = self.builder
        for value, x in zip(data_inputs, xs, strict=True):
            elem = value.type.tensor_type.elem_type
            given = b.input_type(x) or onnx.TensorProto.FLOAT  # a model input's type, or a layer's float32 output
            self.names[value.name] = x if elem == given else b.node("Cast", [x], "input_cast", to=elem)
        for tensor in self.graph.graph.initializer:
            array = numpy_helper.to_array(tensor)
            self.names[tensor.name] = b.constant(array, _hint(tensor.name), array.dtype)
        for index, node in enumerate(self.graph.graph.node):
            if node.op_type == "BatchNormalization":
                self._batch_norm(node)
            elif node.op_type == "Dropout":
                self._dropout(node, index)
            elif node.op_type == "Gelu" and self.builder.training and _attribute(node, "approximate") == b"tanh":
                self._gelu_tanh(node)
            else:
                self._copy(node)
        return self.names[self.graph.graph.output[0].name]

    def _inputs(self, node: onnx.NodeProto) -> list[str]:
        return [self.names[name] if name else "" for name in node.input]

    def _copy(self, node: onnx.NodeProto) -> None:
        count = len(node.output)
        if self.builder.training:  # ORT's gradient builder reads optional outputs the exporter left out
            count = max(count, _OUTPUTS_FOR_GRADIENTS.get(node.op_type, 0))
        outs = self.builder.multi_output_node(node.op_type, self._inputs(node), count, copy_hint(node))
        emitted = self.builder.nodes[-1]
        emitted.attribute.extend(node.attribute)
        for i, name in enumerate(node.output):
            if name:
                self.names[name] = outs[i]
                self.builder.record_source(outs[i], node.name, name)
            else:
                emitted.output[i] = ""

    def _type(self, name: str) -> onnx.TypeProto:
        if self.types is None:
            self.types = _graph.infer(self.graph)
        if name not in self.types:
            failure = _graph.inference_failure(self.graph)
            if failure is not None:  # the node that failed, not the value it left without a shape
                raise UnsupportedError(
                    f"OnnxLayer {self.owner!r}: onnx's shape inference fails at {failure}, so it gives no shape "
                    f"for {name!r}, which the layer needs."
                )
            raise UnsupportedError(f"OnnxLayer {self.owner!r}: shape inference gives no shape for {name!r}.")
        return self.types[name]

    def _batch_norm(self, node: onnx.NodeProto) -> None:
        b = self.builder
        x, scale, bias, mean, var = self._inputs(node)[:5]
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        momentum = next((a.f for a in node.attribute if a.name == "momentum"), 0.9)
        statistics = (mean, var)
        if self.train_batch_norm:
            try:
                b.training_step()  # only the portable engine's train step updates state (and has a step counter)
            except PortableEngineOnlyError as e:
                raise PortableEngineOnlyError(
                    f"OnnxLayer {self.owner!r} (batch_norm='train') updates the statistics of BatchNormalization "
                    f"node {node.name!r} in each training step, which only the portable engine does; "
                    "batch_norm='inference' keeps them frozen, on either engine"
                ) from e
            rank = len(self._type(node.input[0]).tensor_type.shape.dim)
            axes = [0, *range(2, rank)]
            batch_mean = b.reduce("ReduceMean", x, axes, keepdims=False, hint="batch_mean")
            centered = b.node("Sub", [x, b.node("Reshape", [batch_mean, _channel_shape(b, rank)])], hint="centered")
            batch_var = b.reduce("ReduceMean", b.node("Mul", [centered, centered]), axes, keepdims=False, hint="var")
            kept = b.constant(np.float32(momentum), "momentum")
            rest = b.constant(np.float32(1.0 - momentum), "one_minus_momentum")
            for running, batch, foreign in ((mean, batch_mean, node.input[3]), (var, batch_var, node.input[4])):
                if foreign in self.weights:
                    updated = b.node("Add", [b.node("Mul", [running, kept]), b.node("Mul", [batch, rest])], "new")
                    b.update_state(running, updated)
            statistics = (batch_mean, batch_var)
        if b.training:
            y = self._normalized(node, [x, scale, bias, *statistics], epsilon)
        else:
            y = b.node("BatchNormalization", [x, scale, bias, *statistics], _hint(node.output[0]), epsilon=epsilon)
        self.names[node.output[0]] = y
        for extra, value in zip(node.output[1:3], (mean, var), strict=False):  # a training-mode export's outputs
            if extra:
                self.names[extra] = value

    def _normalized(self, node: onnx.NodeProto, inputs: list[str], epsilon: float) -> str:
        """BatchNormalization's inference form as arithmetic, in training graphs: ONNX Runtime's gradient builder
        differentiates a BatchNormalization node as if it normalized with the batch's statistics (ORT #17879),
        which is wrong for frozen statistics and for the batch statistics computed here alike."""
        b = self.builder
        rank = len(self._type(node.input[0]).tensor_type.shape.dim)
        x, scale, bias, mean, var = inputs
        shape = _channel_shape(b, rank)
        per_channel = [b.node("Reshape", [v, shape], hint="per_channel") for v in (scale, bias, mean, var)]
        eps = b.constant(np.float32(epsilon), "epsilon")
        factor = b.node("Div", [per_channel[0], b.node("Sqrt", [b.node("Add", [per_channel[3], eps])])], "factor")
        centered = b.node("Sub", [x, per_channel[2]], hint="centered")
        return b.node("Add", [b.node("Mul", [centered, factor]), per_channel[1]], hint=_hint(node.output[0]))

    def _gelu_tanh(self, node: onnx.NodeProto) -> None:
        """Gelu(approximate="tanh") as its formula, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in training graphs:
        ONNX Runtime's gradient builder differentiates it as the exact (erf) Gelu (its GeluGrad reads no
        `approximate`), 2e-5 relative off torch's weights after one step of the keras_cnn_torch fixture. The cube
        is a Pow: written x·(x·x), ORT's graph optimizer fails ("Argument mismatch when removing edge")."""
        b = self.builder
        x = self._inputs(node)[0]
        cube = b.node("Pow", [x, b.constant(np.float32(3.0), "three")], hint="cube")
        inner = b.node("Add", [x, b.node("Mul", [cube, b.constant(np.float32(0.044715), "gelu_c")])])
        scaled = b.node("Mul", [inner, b.constant(np.float32(np.sqrt(2.0 / np.pi)), "gelu_sqrt_2_over_pi")])
        one_plus = b.node("Add", [b.node("Tanh", [scaled]), b.constant(np.float32(1.0), "one")])
        half_x = b.node("Mul", [x, b.constant(np.float32(0.5), "half")])
        self.names[node.output[0]] = b.node("Mul", [half_x, one_plus], hint=_hint(node.output[0]))

    def _dropout(self, node: onnx.NodeProto, index: int) -> None:
        b = self.builder
        x = self._inputs(node)[0]
        if len(node.output) > 1 and node.output[1]:
            read = any(node.output[1] in other.input for other in self.graph.graph.node)
            if read or node.output[1] in {o.name for o in self.graph.graph.output}:
                raise UnsupportedError(f"OnnxLayer {self.owner!r}: Dropout {node.name!r}'s mask output is read.")
        rate = self._ratio(node)
        if not b.training or rate == 0.0:
            self.names[node.output[0]] = x
            return
        shape = _graph.per_example_shape(self._type(node.input[0]), f"Dropout {node.name!r}'s input", "OnnxLayer")
        try:
            mask = keep_mask(b, x, shape, True, rate, layer_key(f"{self.owner}.{index}", None))
        except PortableEngineOnlyError as e:  # named as the user's file names it, not by its inlined value
            raise PortableEngineOnlyError(
                f"OnnxLayer {self.owner!r}: Dropout node {node.name or '(unnamed)'!r} (output {node.output[0]!r}) "
                "draws a new mask in each training step, and this graph has no step counter: only the portable "
                "engine's train step has one"
            ) from e
        self.names[node.output[0]] = b.node("Mul", [x, mask], hint="dropped")

    def _ratio(self, node: onnx.NodeProto) -> float:
        attribute = next((a.f for a in node.attribute if a.name == "ratio"), None)
        if attribute is not None:
            return float(attribute)
        if len(node.input) < 2 or not node.input[1]:
            return 0.5
        constants = {t.name: t for t in self.graph.graph.initializer}
        constants |= {
            n.output[0]: n.attribute[0].t
            for n in self.graph.graph.node
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"
        }
        if node.input[1] not in constants:
            raise UnsupportedError(f"OnnxLayer {self.owner!r}: Dropout {node.name!r}'s ratio is not a constant.")
        return float(numpy_helper.to_array(constants[node.input[1]]))


def _attribute(node: onnx.NodeProto, name: str) -> object:
    found = next((a for a in node.attribute if a.name == name), None)
    return onnx.helper.get_attribute_value(found) if found is not None else None


def _channel_shape(builder: GraphBuilder, rank: int) -> str:
    return builder.constant(np.array([1, -1] + [1] * (rank - 2), np.int64), "channel_shape", np.int64)


def copy_hint(node: onnx.NodeProto) -> str:
    """The name hint of `node`'s copy (`_layer.imported_node` finds the node again by it)."""
    return _hint(node.output[0])


def _hint(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "value"
