"""The value names a node list uses across its If branches and Loop bodies, for GraphBuilder: the names those
subgraphs define and read, and the folding of output renames into the nodes that compute the renamed values; and
renaming a built model's graph inputs and outputs (an imported model's export keeps the file's names).
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx


def subgraph_values(nodes: Sequence[onnx.NodeProto]) -> set[str]:
    """Every value name that the subgraphs of `nodes` (If branches, Loop bodies), at any depth, define."""
    names: set[str] = set()
    for node in nodes:
        for attribute in node.attribute:
            for body in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs:
                names.update(v.name for v in [*body.input, *body.output, *body.initializer])
                names.update(name for inner in body.node for name in inner.output)
                names |= subgraph_values(body.node)
    return names


def fold_output_renames(
    nodes: Sequence[onnx.NodeProto], renames: Sequence[tuple[str, str]], fixed: set[str], outputs: set[str]
) -> list[onnx.NodeProto]:
    """`nodes` (copied) with the producer of each renamed output writing the output's name itself, its Identity gone.

    ONNX Runtime keeps an Identity that feeds a graph output as a copy: once per run for `logits`, and once per
    parameter, state tensor or gradient and step in the portable engine's graphs. A rename stays an Identity where
    its value is a graph input or initializer (no node computes it), is itself a graph output, is renamed to a
    second output as well (only the first takes its name), or is read by a subgraph (an `If` branch reads outer
    values by name).
    """
    keep = fixed | outputs | subgraph_reads(nodes)
    produced = {name for node in nodes for name in node.output}
    identities = {(n.input[0], n.output[0]) for n in nodes if n.op_type == "Identity"}
    folds: dict[str, str] = {}
    for value, name in renames:
        if (value, name) in identities and value in produced and value not in keep and value not in folds:
            folds[value] = name
    result = []
    for original in nodes:
        if original.op_type == "Identity" and folds.get(original.input[0]) == original.output[0]:
            continue
        node = onnx.NodeProto()
        node.CopyFrom(original)
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                names[i] = folds.get(name, name)
        result.append(node)
    return result


def subgraph_reads(nodes: Sequence[onnx.NodeProto]) -> set[str]:
    """The names that the subgraphs of `nodes` (If branches, Loop bodies), at any depth, read."""
    reads: set[str] = set()
    for node in nodes:
        for attribute in node.attribute:
            bodies = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs
            for body in bodies:
                reads.update(name for inner in body.node for name in inner.input)
                reads |= subgraph_reads(body.node)
    return reads


def rename_values(model: onnx.ModelProto, renames: dict[str, str]) -> onnx.ModelProto:
    """`model` (copied) with each value `old` of `renames` called `new` wherever the graph, its subgraphs and its
    value infos name it. A value that already has a `new` name and is not renamed itself moves aside first
    (`<name>_1`, ...), so names stay unique."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    used = {v.name for v in [*graph.input, *graph.output, *graph.initializer, *graph.value_info]}
    used |= {name for node in graph.node for name in (*node.input, *node.output)} | subgraph_values(graph.node)
    mapping = dict(renames)
    for new in set(renames.values()):
        if new in used and new not in renames:
            n = 1
            while f"{new}_{n}" in used or f"{new}_{n}" in mapping.values():
                n += 1
            mapping[new] = f"{new}_{n}"
    _rename_in(graph, mapping)
    return result


def _rename_in(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    for value in [*graph.input, *graph.output, *graph.initializer, *graph.value_info]:
        value.name = mapping.get(value.name, value.name)
    for node in graph.node:
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                names[i] = mapping.get(name, name)
        for attribute in node.attribute:
            for body in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs:
                _rename_in(body, mapping)
