"""A Functional's calls: its `inputs` and `outputs` arguments checked; every call the outputs depend on, each
after the calls it reads (the order `Functional.emit` emits them in); the call of a graph of several outputs as a
layer of another (`call_several`, whose tensors `call_outputs` finds again); the refs a config and a summary name
each call's tensors by (`call_refs`) and the summary's rows (`summary_rows`); the outputs' names (`output_names`);
where a substitute for an output's layer is emitted (`place_substitutes`); how one call is emitted
(`emit_layer_call`), reading float32 where a layer reads no integers (`as_float`); and every layer of nested graphs
(`every_layer`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import onnx

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import Input, Layer, format_shape
from onnxtrain.layers._core import dtype_note
from onnxtrain.layers._layer import Mask, SymbolicTensor, called_tensors, describe
from onnxtrain.layers._layer_checks import check_same_shapes, check_training_argument
from onnxtrain.layers._layout import channels_last
from onnxtrain.layers._masking import emit_call

SummaryRow = tuple[str, str, str, str]  # layer (type), output shape, params, connected to
Refs = dict[int, list[str | int]]  # a tensor's id -> [layer name, call index(, output index)] (`call_refs`)
CALL_OUTPUTS = "_call_outputs"  # a graph's attribute: its calls' tensors by call index (`call_several`)


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
                    raise InvalidArgumentError(_disconnected(index, output, tensor, inputs))
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


def _disconnected(index: int, output: SymbolicTensor, missing: Input, inputs: list[Input]) -> str:
    """The message for `outputs[index]` depending on `missing`, an Input not in `inputs`. Where an Input of
    `inputs` has its name, they are two Inputs of one name: typically a nested model's own Input (made when that
    model was), which the outer model's calls of it never read."""
    given = ", ".join(_label(x) for x in inputs)
    layer = "" if output is missing else f" ({describe(output.layer)} output)"
    text = f"Graph disconnected: outputs[{index}]{layer} depends on {_label(missing)}, "
    namesake = missing.name is not None and any(x.name == missing.name for x in inputs)
    if not namesake:
        return text + f"which is not in inputs ({given}). Add it to inputs."
    example = f"inner.get_layer({output.layer.name!r}).output" if output.layer.name else "..."
    return text + (
        f"a different Input from the {_label(missing)} in inputs ({given}): two Inputs of one name, typically a "
        "nested model's own Input and the outer model's. A layer inside a nested model reads that model's own "
        f"Input: build from its inputs, e.g. Model(inner.inputs, {example}) with `inner` the nested model, or "
        "read the nested model's call in this graph (`inner(x)`), which reads the outer Input."
    )


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
    graph.__dict__.setdefault(CALL_OUTPUTS, {})[call_index] = outputs
    return outputs


def call_outputs(tensor: SymbolicTensor) -> list[SymbolicTensor]:
    """Every tensor of the call that returned `tensor`, one per output of its graph (`call_several`'s list), or
    `[tensor]` for a call of one output."""
    return list(tensor.layer.__dict__.get(CALL_OUTPUTS, {}).get(tensor.call_index, [tensor]))


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


def summary_rows(layers: Sequence[Layer], calls: dict[int, list[SymbolicTensor]], ref: Refs) -> list[SummaryRow]:
    """Keras' summary rows of a graph's `layers` whose `calls` read tensors named by `ref` (`call_refs`): layer
    (type), output shape (a list of them for a nested graph of several), parameter count, and "Connected to"."""
    rows = []
    for layer in layers:
        label = f"{layer.name}({type(layer).__name__})" + ("" if layer.trainable else " [frozen]")
        outputs = getattr(layer, "outputs", None) if is_graph(layer) else None
        shapes = [y.shape for y in outputs] if outputs is not None else [calls[id(layer)][0].shape]
        shape = format_shape(shapes[0]) if len(shapes) == 1 else f"[{', '.join(map(format_shape, shapes))}]"
        read = [connected_to(node, ref) for node in calls[id(layer)]]
        rows.append((label, shape + dtype_note(layer), str(layer.param_count), ", ".join(t for t in read if t)))
    return rows


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


def place_substitutes(
    nodes: Sequence[SymbolicTensor], outputs: Sequence[SymbolicTensor], substitutes: Mapping[int, Layer]
) -> tuple[dict[int, Layer], dict[int, Layer]]:
    """Where the graph of `nodes` emits `substitutes` (output position -> a layer computing that output instead of
    its call's layer): (tensor id -> substitute) for a call it replaces, where no layer reads the tensor and each
    position listing it has a substitute (all alike: the layer without its activation); and (position -> substitute)
    for a call of its own beside the call, which other layers, or an output without one, read as it is (one tensor
    twice among the outputs, one of them trained on logits and the other not).

    Raises:
        InvalidArgumentError: a key that is not an output position.
    """
    positions = range(len(outputs))
    wrong = [key for key in substitutes if isinstance(key, bool) or not isinstance(key, int) or key not in positions]
    if wrong:
        raise InvalidArgumentError(
            f"substitutes expects output positions (0 to {len(outputs) - 1}) as keys. Received: {wrong!r}"
        )
    read = {id(x) for node in nodes for x in node.inputs}
    listed_at: dict[int, list[int]] = {}
    for position, y in enumerate(outputs):
        listed_at.setdefault(id(y), []).append(position)
    in_place: dict[int, Layer] = {}
    beside: dict[int, Layer] = {}
    for position, layer in substitutes.items():
        y = outputs[position]
        if id(y) not in read and all(p in substitutes for p in listed_at[id(y)]):
            in_place[id(y)] = layer
        else:
            beside[position] = layer
    return in_place, beside


def as_float(builder: GraphBuilder, x: str, floats: dict[str, str]) -> str:
    """`x` as float32 where it is an integer graph input (an `Input(dtype="int64")`), else `x` itself."""
    if builder.input_type(x) in (None, onnx.TensorProto.FLOAT):
        return x
    if x not in floats:
        floats[x] = builder.node("Cast", [x], hint=f"{x}_float", to=onnx.TensorProto.FLOAT)
    return floats[x]


def is_graph(layer: object) -> bool:
    """Whether `layer` is a `Functional` (a model's graph, which this module, imported by it, cannot name)."""
    return isinstance(layer, Layer) and callable(getattr(layer, "emit_with_masks", None))


def emit_layer_call(
    builder: GraphBuilder, layer: Layer, xs: list[str], masks: list[Mask]
) -> tuple[list[str], list[Mask]]:
    """Emit `layer`'s call on `xs`, whose masks are `masks`; returns its outputs (one, but for a model of several)
    and their masks."""
    if is_graph(layer):  # a model called as a layer: its inputs' masks go in, its outputs' come out
        with builder.scope(layer.name or "functional"):
            return layer.emit_with_masks(builder, xs, input_masks=masks)  # type: ignore[attr-defined]
    if not getattr(layer, "prefix_names", True):  # OnnxLayer(prefix_names=False): weights keep their own names
        assert layer.input_shapes is not None or layer.input_shape is not None, "layers must be built"
        shapes = layer.input_shapes if layer.multi_input else [layer.input_shape]
        xs = [channels_last(builder, x, len(shape) + 1) for x, shape in zip(xs, shapes, strict=True)]  # type: ignore[arg-type]
        return [layer.emit(builder, xs if layer.multi_input else xs[0])], [None]  # type: ignore[arg-type]
    value, mask = emit_call(builder, layer, xs, masks)
    return [value], [mask]


def every_layer(layers: Sequence[Any]) -> list[Layer]:
    """`layers` and, for a nested model (a Functional) among them, its own layers, recursively, in order. A Model
    among them (as `model.layers` lists a nested one) stands for its graph."""
    found: list[Layer] = []
    for layer in layers:
        if not isinstance(layer, Layer) and is_graph(getattr(layer, "graph", None)):
            layer = layer.graph
        found.append(layer)
        if is_graph(layer):
            found.extend(every_layer(layer.layers))
    return found
