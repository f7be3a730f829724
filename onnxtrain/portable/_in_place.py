"""Which of the train step's `updated.<name>` outputs may be written over input `<name>` itself.

Writing an update over its input saves the engine a second copy of the weights and optimizer state, and, on the
CPU, a pass of cache misses: the tutorial's first kernel and its two Adam moments are 2.8 MB, which a second set
doubles past the two cores' 4 MB of L2. ONNX Runtime gives no such guarantee for a bound output, so this module
proves it from the graph instead, for the shape `train_step_model` emits: every update inside one `If` on a finite
loss (`_update_if_finite`), whose else branch passes the inputs through. An output `updated.X` may share X's
buffer when

1. every node of the outer graph that reads X runs before the If: it is one of the If's ancestors, so no reader
   can see a half-written X;
2. inside the then branch, the node that writes the output is elementwise, and every other node there that reads
   X is one of its ancestors: X[i] is read before the same index of the output is written, and only then;
3. the else branch returns X unchanged, through an Identity (a copy onto itself, which ONNX Runtime skips).

Anything else keeps its own output buffer (the engine double-buffers it), so a rule that breaks these conditions
is slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import onnx

# Operators that read each input element at the index of the output element they write (inputs of the output's
# shape; smaller ones broadcast, and are other tensors than X, which has the output's shape).
ELEMENTWISE = frozenset(
    {"Abs", "Add", "Clip", "Div", "Max", "Min", "Mul", "Neg", "Pow", "Reciprocal", "Sign", "Sqrt", "Sub", "Where"}
)


def in_place_updates(graph: onnx.GraphProto, carried: Sequence[str], prefix: str) -> frozenset[str]:
    """The names in `carried` whose output `prefix + name` may be written into the input's own buffer."""
    producers = {out: node for node in graph.node for out in node.output}
    safe = set()
    for name in carried:
        node = producers.get(prefix + name)
        if node is None or node.op_type != "If":
            continue
        index = list(node.output).index(prefix + name)
        branches = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
        readers = [n for n in graph.node if n is not node and name in _reads(n)]
        if (
            _ancestors_include(graph.node, node, readers)
            and _writes_in_place(branches["then_branch"], index, name)
            and _passes_through(branches["else_branch"], index, name)
        ):
            safe.add(name)
    return frozenset(safe)


def _writes_in_place(branch: onnx.GraphProto, index: int, name: str) -> bool:
    producers = {out: node for node in branch.node for out in node.output}
    writer = producers.get(branch.output[index].name)
    if writer is None or writer.op_type not in ELEMENTWISE or name in (o.name for o in branch.output):
        return False
    readers = [n for n in branch.node if n is not writer and name in _reads(n)]
    return _ancestors_include(branch.node, writer, readers)


def _passes_through(branch: onnx.GraphProto, index: int, name: str) -> bool:
    producers = {out: node for node in branch.node for out in node.output}
    node = producers.get(branch.output[index].name)
    return node is not None and node.op_type == "Identity" and list(node.input) == [name]


def _ancestors_include(nodes: Iterable[onnx.NodeProto], node: onnx.NodeProto, wanted: list[onnx.NodeProto]) -> bool:
    """Whether every node of `wanted` is an ancestor of `node` (a node its inputs depend on)."""
    producers = {out: n for n in nodes for out in n.output}
    pending = {id(n) for n in wanted}
    seen: set[int] = set()
    stack = [node]
    while stack and pending:
        current = stack.pop()
        for value in _reads(current):
            parent = producers.get(value)
            if parent is not None and id(parent) not in seen:
                seen.add(id(parent))
                pending.discard(id(parent))
                stack.append(parent)
    return not pending


def _reads(node: onnx.NodeProto) -> set[str]:
    """Values a node reads: its inputs, and the outer values its subgraphs use (an If's branches)."""
    names = {i for i in node.input if i}
    for attribute in node.attribute:
        for graph in (attribute.g,) if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs:
            inner = {out for n in graph.node for out in n.output}
            inner |= {i.name for i in graph.input} | {i.name for i in graph.initializer}
            for n in graph.node:
                names |= _reads(n) - inner
            names |= {o.name for o in graph.output} - inner
    return names
