"""The value names a node list uses across its If branches and Loop bodies, for GraphBuilder: the names those
subgraphs define and read, and the folding of output renames into the nodes that compute the renamed values.
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
