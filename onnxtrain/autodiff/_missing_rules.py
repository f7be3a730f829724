"""The nodes on the gradient path that no rule differentiates, and the one error that lists them all.

A node depends on its inputs and on the values of the graph around it that its subgraphs (If branches, Loop and Scan
bodies) read by name: those implicit inputs are on the path too. A rule returns gradients of a node's inputs only,
so a node whose subgraphs read a differentiated value is refused even where its op has a rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from onnxtrain.autodiff._rules import lookup
from onnxtrain.errors import listing
from onnxtrain.graph import GraphBuilder

_GRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def outer_reads(node: onnx.NodeProto) -> list[str]:
    """The values of the enclosing graph that the subgraphs of `node` read (at any depth), in order."""
    reads: list[str] = []
    for attribute in node.attribute:
        if attribute.type not in _GRAPH_ATTRIBUTES:
            continue
        for body in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs:
            local = {v.name for v in [*body.input, *body.initializer]} | {o for n in body.node for o in n.output}
            for inner in body.node:
                reads += [name for name in [*inner.input, *outer_reads(inner)] if name and name not in local]
    return list(dict.fromkeys(reads))


def reads(node: onnx.NodeProto) -> list[str]:
    """What `node` depends on: its inputs, then what its subgraphs read from the graph around it."""
    return [*(name for name in node.input if name), *outer_reads(node)]


def _refused(node: onnx.NodeProto, active: set[str]) -> bool:
    """Whether `node`, on the gradient path (an output in `active`), cannot be differentiated: its op has no rule,
    or its subgraphs read an `active` value (no rule gives those a gradient)."""
    return lookup(node.domain, node.op_type) is None or any(name in active for name in outer_reads(node))


def missing_rules_message(
    builder: GraphBuilder, nodes: Sequence[onnx.NodeProto], loss: str, wrt: Sequence[str], active: set[str]
) -> str:
    """The error for every node on the path from a `wrt` value to the loss that cannot be differentiated, each op
    type once: its first node (in the names of the user's file where it comes from an imported graph) and the `wrt`
    values whose gradients need it (the weights to freeze to do without a rule)."""
    on_path = [
        node
        for node in nodes
        if any(out in active for out in node.output) and any(name in active for name in reads(node))
    ]
    groups: dict[tuple[str, str], list[onnx.NodeProto]] = {}
    for node in on_path:
        if _refused(node, active):
            groups.setdefault((node.domain or "ai.onnx", node.op_type), []).append(node)
    producers = {out: node for node in nodes for out in node.output if out}
    parts, blocked = [], []
    for (domain, op_type), members in groups.items():
        weights = _upstream_wrt(members, producers, wrt, active)
        blocked += weights
        loss_named = f"the loss {loss!r}" if len(groups) == 1 else "the loss"
        parts.append(_describe(builder, domain, op_type, members, weights, active, loss_named))
    blocked = list(dict.fromkeys(name for name in wrt if name in blocked))
    one = len(blocked) == 1
    freeze = f"freeze {'that weight' if one else 'those weights'}" if blocked else "freeze the values that reach it"
    add = "Add a rule with @onnxtrain.autodiff.rule (see docs/autodiff.md)"
    if len(parts) == 1:
        return f"No gradient rule for op {parts[0]}. {add}, or {freeze}.{_hints(groups)}"
    listed = "; ".join(f"({i}) {part}" for i, part in enumerate(parts, 1))
    return (
        f"No gradient rule for {len(parts)} ops on the path from the wrt values to the loss {loss!r}: {listed}. "
        f"{add} for each, or {freeze}.{_hints(groups)}"
    )


def _describe(
    builder: GraphBuilder,
    domain: str,
    op_type: str,
    members: list[onnx.NodeProto],
    weights: list[str],
    active: set[str],
    loss: str,
) -> str:
    node = members[0]
    needed = next((out for out in node.output if out in active), node.output[0])
    source = builder.source(needed)
    if source is not None:  # an imported graph's node, inlined under fresh names
        node_name, value = source
        where = f"node {node_name!r}" if node_name else f"an unnamed {op_type} node"
        where += f" computes {value!r} (here node {node.name!r}, value {needed!r})"
    else:
        where = f"node {node.name!r}" if node.name else f"an unnamed {op_type} node"
        where += f" computes {needed!r}"
    more = f" ({len(members)} {op_type} nodes on the path)" if len(members) > 1 else ""
    where += f"{more}, which {loss} depends on"
    captured = [name for name in outer_reads(node) if name in active]
    if captured:
        where += (
            f"; its subgraphs read {listing(captured, 5)} from the graph around it (implicit inputs, which no "
            "rule differentiates)"
        )
    one = len(weights) == 1
    needing = f", and the gradient{'' if one else 's'} of {listing(weights, 5)} need{'s' if one else ''} it"
    return f"{op_type!r} (domain {domain!r}): {where}{needing if weights else ''}"


def _upstream_wrt(
    members: list[onnx.NodeProto], producers: dict[str, onnx.NodeProto], wrt: Sequence[str], active: set[str]
) -> list[str]:
    """The `wrt` values among the active values the nodes `members` depend on: those train through them."""
    upstream: set[str] = set()
    pending = [name for node in members for name in reads(node) if name in active]
    while pending:
        name = pending.pop()
        if name not in upstream:
            upstream.add(name)
            if name in producers:
                pending.extend(i for i in reads(producers[name]) if i in active)
    return [name for name in dict.fromkeys(wrt) if name in upstream]


def _hints(groups: dict[tuple[str, str], list[onnx.NodeProto]]) -> str:
    if ("ai.onnx", "If") not in groups:
        return ""
    return (
        " An If whose condition is a constant (torch's TorchScript export tests a rank or size with one, as in "
        "F.local_response_norm) is removed by onnxtrain.autodiff.fold_constants(model, keep=[the weights to "
        "differentiate]): take the gradients of the folded model."
    )
