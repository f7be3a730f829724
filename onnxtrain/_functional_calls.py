"""A Functional's calls: its `inputs` and `outputs` arguments checked; every call the outputs depend on, each
after the calls it reads (the order `Functional.emit` emits them in); the call of a graph of several outputs as a
layer of another (`call_several`); the refs a config and a summary name each call's tensors by (`call_refs`); the
outputs' names (`output_names`); and the float32 cast of an integer input that a layer reads (`as_float`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Input, Layer, format_shape
from onnxtrain.layers._layer import SymbolicTensor, called_tensors, describe
from onnxtrain.layers._layer_checks import check_same_shapes, check_training_argument

Refs = dict[int, list[str | int]]  # a tensor's id -> [layer name, call index(, output index)] (`call_refs`)


def listed(value: Any, argument: str, kind: type, expected: str) -> list[Any]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise InvalidArgumentError(f"Functional({argument}=...) expects at least one. Received: an empty list")
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            received = describe(item.layer) + " output" if isinstance(item, SymbolicTensor) else type(item).__name__
            raise InvalidTypeError(
                f"Functional({argument}=...) expects {expected}. Received: {argument}[{i}]: {received}"
            )
    return items


def topological_calls(inputs: list[Input], outputs: list[SymbolicTensor]) -> list[SymbolicTensor]:
    """The inputs, then every call that the outputs depend on, each after the calls it reads (depth first). An
    input that no output reads is taken, as Keras takes it: the model's graphs declare it and ignore its values."""
    order: list[SymbolicTensor] = list(inputs)
    done = {id(x) for x in inputs}
    for index, output in enumerate(outputs):
        stack: list[tuple[SymbolicTensor, bool]] = [(output, False)]
        while stack:
            tensor, inputs_done = stack.pop()
            if isinstance(tensor, Input):
                if id(tensor) not in done:
                    given = ", ".join(_label(x) for x in inputs)
                    raise InvalidArgumentError(
                        f"Graph disconnected: outputs[{index}] depends on {_label(tensor)}, which is not in inputs "
                        f"({given}). Add it to inputs."
                    )
            elif id(tensor) in done:
                continue
            elif inputs_done:
                done.add(id(tensor))
                order.append(tensor)
            else:
                stack.append((tensor, True))
                stack.extend((x, False) for x in reversed(tensor.inputs))
    return order


def _label(x: Input) -> str:
    return f"Input {x.name!r}" if x.name else f"Input of shape {format_shape(x.shape)}"


def call_several(graph: Any, inputs: object, training: object) -> list[SymbolicTensor]:
    """`graph(inputs)` for a Functional `graph` of several outputs, called on symbolic tensors as a layer of another
    graph: one tensor per output, in order, all of the one call (its `output_index` tells which output it is).

    Raises:
        InvalidTypeError / ShapeError: inputs a call of the graph would refuse (`Layer.__call__`'s checks).
    """
    tensors = called_tensors(graph, inputs)
    check_same_shapes(graph, [tensor.shape for tensor in tensors])
    mode = check_training_argument(graph, training)
    call_index = len(graph.symbolic_calls)
    outputs = [
        SymbolicTensor(y.shape, graph, call_index, tensors, mode, output_index=index)
        for index, y in enumerate(graph.outputs)
    ]
    graph.symbolic_calls.append(outputs[0])
    return outputs


def call_refs(
    layers: Sequence[Layer], nodes: Sequence[SymbolicTensor], several: set[int]
) -> tuple[dict[int, list[SymbolicTensor]], Refs]:
    """Each layer's calls in a graph of `nodes` (one tensor per call, in call order: a config's call indices count
    these only), and each tensor's ref, as Keras' config names it: [layer name, call index], with the output's
    index after them for a tensor of a layer of several outputs (`several`: their ids), [name, call, output]."""
    calls: dict[int, list[SymbolicTensor]] = {id(layer): [] for layer in layers}
    index: dict[tuple[int, int], int] = {}
    for node in sorted(nodes, key=lambda node: (node.call_index, node.output_index)):
        if (id(node.layer), node.call_index) not in index:
            index[(id(node.layer), node.call_index)] = len(calls[id(node.layer)])
            calls[id(node.layer)].append(node)
    ref: Refs = {}
    for node in nodes:
        ref[id(node)] = [str(node.layer.name), index[(id(node.layer), node.call_index)]]
        if id(node.layer) in several:
            ref[id(node)].append(node.output_index)
    return calls, ref


def connected_to(node: SymbolicTensor, ref: Refs) -> str:
    """A call's "Connected to" text in a summary: `layer[call index]` of each tensor it reads (with `[output
    index]` after it for an output of a call of several, as Keras shows it), and its `training` where given."""
    text = ", ".join("".join([str(ref[id(x)][0]), *(f"[{i}]" for i in ref[id(x)][1:])]) for x in node.inputs)
    return text if node.training is None else f"{text} (training={node.training})"


def output_names(outputs: Sequence[SymbolicTensor]) -> list[str]:
    """The names of a graph's `outputs`: their layers', as Keras names them; where two outputs would share one (one
    tensor listed twice, two calls of one layer, or two outputs of one call of a nested model), the later ones
    numbered as Keras numbers names (`h`, `h_1`), since the outputs of an ONNX graph need names of their own."""
    names: list[str] = []
    for y in outputs:
        base = str(y.layer.name)
        name, count = base, 0
        while name in names:
            count += 1
            name = f"{base}_{count}"
        names.append(name)
    return names


def as_float(builder: GraphBuilder, x: str, floats: dict[str, str]) -> str:
    """`x` as float32 where it is an integer graph input (an `Input(dtype="int64")`), else `x` itself."""
    if builder.input_type(x) in (None, onnx.TensorProto.FLOAT):
        return x
    if x not in floats:
        floats[x] = builder.node("Cast", [x], hint=f"{x}_float", to=onnx.TensorProto.FLOAT)
    return floats[x]
