"""A SplitToSequence read only by SequenceAt at constant positions, as the plain Split it stands for.

torch's dynamo exporter (`optimize=False`, what docs/foreign.md recommends for fine-tuning) writes `x.chunk(3, -1)`
and `torch.split(x, [1, 3], -1)` as `SplitToSequence` and one `SequenceAt` per part taken. Neither engine has a
gradient for sequence ops; a `Split` (with a `Squeeze` per part where `keepdims=0` drops the axis) computes the
same tensors and has one on both. `split_sequences` rewrites each such pattern at import, after the shape
subgraphs are folded (`_graph.fold_shapes`), so the split sizes are constants by then. A SplitToSequence read any
other way (SequenceLength, ConcatFromSequence, a graph output, a position computed at run time) stays as it is,
for the engine to name.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain.foreign._graph_shapes import infer


def split_sequences(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each SplitToSequence whose sequence only `SequenceAt` nodes at constant positions read turned
    into a `Split` (in the node's place, under its name and metadata), each part named after the first SequenceAt
    that takes it; another SequenceAt of the same part becomes an `Identity` of it, and where the SplitToSequence,
    having no `split`, drops the axis (`keepdims=0`) each becomes a `Squeeze` of its part (under the SequenceAt's
    name and output). The sizes come from `split` (a constant: a scalar k gives parts of k, the last one smaller
    where k does not divide the axis; a list gives each size) or, without it, parts of 1; a scalar or an absent
    `split` needs the axis' size, which shape inference must know. Returns `model` itself when nothing changes."""
    graph = model.graph
    splits = [node for node in graph.node if node.op_type == "SplitToSequence" and node.domain in ("", "ai.onnx")]
    if not splits:
        return model
    constants = _int_constants(graph)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    types: dict[str, onnx.TypeProto] | None = None
    taken = {name for node in graph.node for name in [*node.input, *node.output]}
    taken |= {value.name for value in [*graph.input, *graph.output, *graph.initializer]}
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id(old node) -> the nodes in its place
    for node in splits:
        taking = _positions(node.output[0], readers.get(node.output[0], []), constants)
        if node.output[0] in outputs or taking is None:
            continue
        if types is None:
            types = infer(model)
        sizes = _sizes(node, constants, types)
        if sizes is None or any(not -len(sizes) <= position < len(sizes) for _, position in taking):
            continue
        replaced |= _rewrite(node, sizes, taking, opset, taken)
    if not replaced:
        return model
    nodes = [new for old in graph.node for new in replaced.get(id(old), [old])]
    read = {name for node in nodes for name in node.input} | outputs
    # Constants (the positions, the split) that only the rewritten nodes read go with them.
    dropped = {
        id(node)
        for node in graph.node
        if node.op_type == "Constant" and node.output and node.output[0] not in read and readers.get(node.output[0])
    }
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(node for node in nodes if id(node) not in dropped)
    return result


def _positions(
    sequence: str, readers: list[onnx.NodeProto], constants: dict[str, np.ndarray]
) -> list[tuple[onnx.NodeProto, int]] | None:
    """Each SequenceAt that reads `sequence` with its constant position, when every reader is such a SequenceAt;
    else None."""
    taking: list[tuple[onnx.NodeProto, int]] = []
    for reader in readers:
        if reader.op_type != "SequenceAt" or reader.input[0] != sequence or reader.input[1] not in constants:
            return None
        position = constants[reader.input[1]]
        if position.size != 1:
            return None
        taking.append((reader, int(position.reshape(-1)[0])))
    return taking or None


def _sizes(
    node: onnx.NodeProto, constants: dict[str, np.ndarray], types: dict[str, onnx.TypeProto]
) -> list[int] | None:
    """The size of each part along the node's axis, or None when they are not known before the graph runs."""
    split = node.input[1] if len(node.input) > 1 else ""
    if split and split not in constants:
        return None
    if split and constants[split].ndim == 1:
        sizes = [int(size) for size in constants[split]]
        return sizes if sizes and all(size >= 0 for size in sizes) else None
    if split and constants[split].ndim != 0:
        return None
    dim = _axis_size(node, types)
    if dim is None or dim <= 0:
        return None
    if not split:
        return [1] * dim
    chunk = int(constants[split])
    if chunk <= 0:
        return None
    return [chunk] * (dim // chunk) + ([dim % chunk] if dim % chunk else [])


def _axis_size(node: onnx.NodeProto, types: dict[str, onnx.TypeProto]) -> int | None:
    known = types.get(node.input[0])
    if known is None or not known.tensor_type.HasField("shape"):
        return None
    dims = known.tensor_type.shape.dim
    axis = _attribute(node, "axis", 0)
    if not -len(dims) <= axis < len(dims):
        return None
    dim = dims[axis]
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def _rewrite(
    node: onnx.NodeProto,
    sizes: list[int],
    taking: list[tuple[onnx.NodeProto, int]],
    opset: int,
    taken: set[str],
) -> dict[int, list[onnx.NodeProto]]:
    """id(old node) -> its replacement: for `node` the Split (after a Constant of its sizes from opset 13), for
    each SequenceAt nothing (its output is a part of the Split), an Identity or a Squeeze of its part."""
    axis = _attribute(node, "axis", 0)
    squeeze = (len(node.input) < 2 or not node.input[1]) and _attribute(node, "keepdims", 1) == 0
    sequence = node.output[0]
    parts = [_fresh(f"{sequence}_part_{i}", taken) for i in range(len(sizes))]
    if not squeeze:  # the first SequenceAt of each part names it
        named: set[int] = set()
        for reader, position in taking:
            if position % len(sizes) not in named:
                named.add(position % len(sizes))
                parts[position % len(sizes)] = reader.output[0]
    if opset >= 13:
        sizes_name = _fresh(f"{sequence}_sizes", taken)
        value = numpy_helper.from_array(np.array(sizes, np.int64))
        constant = onnx.helper.make_node("Constant", [], [sizes_name], name=f"{node.name}_sizes", value=value)
        split = onnx.helper.make_node("Split", [node.input[0], sizes_name], parts, name=node.name, axis=axis)
        head = [constant, split]
    else:  # opsets 11 and 12 take the sizes as an attribute
        split = onnx.helper.make_node("Split", [node.input[0]], parts, name=node.name, axis=axis, split=sizes)
        head = [split]
    split.metadata_props.extend(node.metadata_props)
    result: dict[int, list[onnx.NodeProto]] = {id(node): head}
    for reader, position in taking:
        part = parts[position % len(sizes)]
        if part == reader.output[0]:
            result[id(reader)] = []
            continue
        if squeeze and opset >= 13:
            axes = _fresh(f"{reader.output[0]}_axes", taken)
            value = numpy_helper.from_array(np.array([axis], np.int64))
            new = [
                onnx.helper.make_node("Constant", [], [axes], name=f"{reader.name}_axes", value=value),
                onnx.helper.make_node("Squeeze", [part, axes], [reader.output[0]], name=reader.name),
            ]
        elif squeeze:
            new = [onnx.helper.make_node("Squeeze", [part], [reader.output[0]], name=reader.name, axes=[axis])]
        else:
            new = [onnx.helper.make_node("Identity", [part], [reader.output[0]], name=reader.name)]
        new[-1].metadata_props.extend(reader.metadata_props)
        result[id(reader)] = new
    return result


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    found = next((a for a in node.attribute if a.name == name), None)
    return int(found.i) if found is not None else default


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def _int_constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """The integer constants of `graph` by value name: Constant nodes and int initializers."""
    integers = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.data_type in integers}
    for node in graph.node:
        if node.op_type != "Constant" or not node.output:
            continue
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t.data_type in integers:
                found[node.output[0]] = numpy_helper.to_array(attribute.t)
            elif attribute.name == "value_int":
                found[node.output[0]] = np.array(attribute.i, np.int64)
            elif attribute.name == "value_ints":
                found[node.output[0]] = np.array(attribute.ints, np.int64)
    return found
