"""Which of the train step's `updated.<name>` outputs may be written over input `<name>` itself.

Writing an update over its input saves the engine a second copy of the weights and optimizer state (half their
memory) and a little time (1-3% of the tutorial's step on the CPU, docs/portable.md). ONNX Runtime promises nothing
about an output bound to an input's buffer, so this module proves it safe from the graph instead, for the shape
`train_step_model` emits: every update inside one `If` on a finite loss (`_update_if_finite`), whose else branch
passes the inputs through. An output `updated.X` may share X's buffer when

1. every node of the outer graph that reads X runs before the If: it is one of the If's ancestors, so no reader
   can see a half-written X;
2. inside the then branch, the node that writes the output is elementwise, and every other node there that reads
   X is one of its ancestors: X[i] is read before the same index of the output is written, and only then;
3. the else branch returns X unchanged, through an Identity (a copy onto itself).

Anything else keeps its own output buffer (the engine double-buffers it), so a rule that breaks these conditions
is slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

# Operators that read each input element at the index of the output element they write (inputs of the output's
# shape; smaller ones broadcast, and are other tensors than X, which has the output's shape).
ELEMENTWISE = frozenset(
    {"Abs", "Add", "Clip", "Div", "Max", "Min", "Mul", "Neg", "Pow", "Reciprocal", "Sign", "Sqrt", "Sub", "Where"}
)


def in_place_updates(graph: onnx.GraphProto, carried: Sequence[str], prefix: str) -> frozenset[str]:
    """The names in `carried` whose output `prefix + name` may be written into the input's own buffer."""
    outer = _Dependencies(graph)
    branches: dict[int, dict[str, tuple[onnx.GraphProto, _Dependencies]]] = {}
    safe = set()
    for name in carried:
        node = outer.producers.get(prefix + name)
        if node is None or node.op_type != "If":
            continue
        if id(node) not in branches:
            graphs = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
            branches[id(node)] = {key: (g, _Dependencies(g)) for key, g in graphs.items()}
        index = list(node.output).index(prefix + name)
        then_graph, then_dependencies = branches[id(node)]["then_branch"]
        else_graph, else_dependencies = branches[id(node)]["else_branch"]
        if (
            outer.all_before(node, name)
            and _writes_in_place(then_graph, then_dependencies, index, name)
            and _passes_through(else_graph, else_dependencies, index, name)
        ):
            safe.add(name)
    return frozenset(safe)


def _writes_in_place(branch: onnx.GraphProto, dependencies: _Dependencies, index: int, name: str) -> bool:
    writer = dependencies.producers.get(branch.output[index].name)
    if writer is None or writer.op_type not in ELEMENTWISE or name in (o.name for o in branch.output):
        return False
    return dependencies.all_before(writer, name)


def _passes_through(branch: onnx.GraphProto, dependencies: _Dependencies, index: int, name: str) -> bool:
    node = dependencies.producers.get(branch.output[index].name)
    return node is not None and node.op_type == "Identity" and list(node.input) == [name]


class _Dependencies:
    """Who reads what in one graph, and each node's ancestors as a bit set (ONNX lists nodes in topological order,
    so one pass builds them all: a few milliseconds for thousands of nodes).
    """

    def __init__(self, graph: onnx.GraphProto):
        self.producers = {out: node for node in graph.node for out in node.output}
        self._index = {id(node): i for i, node in enumerate(graph.node)}
        self._readers: dict[str, list[onnx.NodeProto]] = {}
        self._ancestors: dict[int, int] = {}
        for node in graph.node:
            bits = 0
            for value in _reads(node):
                self._readers.setdefault(value, []).append(node)
                parent = self.producers.get(value)
                if parent is not None:
                    bits |= self._ancestors[id(parent)] | 1 << self._index[id(parent)]
            self._ancestors[id(node)] = bits

    def all_before(self, node: onnx.NodeProto, value: str) -> bool:
        """Whether every other node that reads `value` is an ancestor of `node`, so it has run when `node` runs."""
        ancestors = self._ancestors[id(node)]
        return all(
            ancestors >> self._index[id(reader)] & 1 for reader in self._readers.get(value, []) if reader is not node
        )


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
