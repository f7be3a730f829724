"""Which matrix products LoRA adapts (`onnxtrain.adapters.add_adapters`): MatMul and Gemm nodes whose weight
operand is a 2-D float initializer W, read as it is or through a Transpose(perm=[1, 0]) (torch's dynamo exporter
writes `nn.Linear` as Transpose(W) -> MatMul), less those whose weight another node reads too; `nodes` patterns
select them by node, weight or torch parameter name (the optimizer's `val_93` holds `enc.linear1.weight`); and the
warnings about the products left out.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace

import onnx

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.foreign._torch_names import torch_names

FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
_PASS_THROUGH = {"Transpose", "Reshape", "Identity", "Cast", "CastLike", "Unsqueeze", "Squeeze", "Flatten", "Expand"}


@dataclass(frozen=True)
class Target:
    """A node to adapt: its weight initializer, which input holds it, and the layout of the product."""

    node: onnx.NodeProto
    weight: str
    weight_index: int
    out_in: bool  # W is stored (out, in): the adapters are peft's (rank, in) and (out, rank)
    transpose: onnx.NodeProto | None = None  # MatMul reads Transpose(W), perm [1, 0]: the adapters are Wᵀ's
    torch_name: str | None = None  # the torch parameter W holds where its name is not one (`_torch_names`)

    def names(self) -> tuple[str, ...]:
        """What a `nodes` pattern selects it by: the node's name, the weight's, and the torch parameter's."""
        return (self.node.name, self.weight, *([self.torch_name] if self.torch_name else []))


def find_targets(graph: onnx.GraphProto, targets: tuple[str, ...]) -> list[Target]:
    weights = _matrix_weights(graph)
    transposed = _transposed_weights(graph, weights)  # Transpose(W) outputs -> their node (torch's dynamo Linear)
    found = []
    for node in graph.node:
        if node.op_type not in targets or node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Gemm":
            if len(node.input) > 1 and node.input[1] in weights and node.input[0] not in weights:
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                found.append(Target(node, node.input[1], 1, bool(trans_b)))
        elif len(node.input) != 2:
            continue
        elif node.input[1] in weights and node.input[0] not in weights:
            found.append(Target(node, node.input[1], 1, False))
        elif node.input[0] in weights and node.input[1] not in weights:
            found.append(Target(node, node.input[0], 0, True))
        elif node.input[1] in transposed and node.input[0] not in weights | set(transposed):
            transpose = transposed[node.input[1]]
            found.append(Target(node, transpose.input[0], 1, False, transpose))
        elif node.input[0] in transposed and node.input[1] not in weights | set(transposed):
            transpose = transposed[node.input[0]]
            found.append(Target(node, transpose.input[0], 0, True, transpose))
    held = torch_names(graph, {t.weight for t in found})  # the dynamo optimizer's `val_93`: enc.linear1.weight
    return [replace(t, torch_name=held.get(t.weight)) for t in found]


def _matrix_weights(graph: onnx.GraphProto) -> set[str]:
    """The 2-D float initializers; an initializer that is also an input can be overridden: not a weight."""
    return {t.name for t in graph.initializer if len(t.dims) == 2 and t.data_type in FLOATS and t.name} - {
        i.name for i in graph.input
    }


def _transposed_weights(graph: onnx.GraphProto, weights: set[str]) -> dict[str, onnx.NodeProto]:
    """{output: node} of the Transpose nodes that swap the two axes of a weight of `weights`."""
    found = {}
    for node in graph.node:
        if node.op_type == "Transpose" and node.input and node.input[0] in weights and node.output:
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
            if perm == [1, 0]:
                found[node.output[0]] = node
    return found


def select(found: list[Target], patterns: Iterable[str]) -> list[Target]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for t in found for name in t.names()):
            adaptable = [f"{t.node.name or '(unnamed)'} ({' = '.join(t.names()[1:])})" for t in found]
            raise InvalidArgumentError(
                f"add_adapters: nodes entry {pattern!r} matches no adaptable node or weight. Adaptable: "
                f"{', '.join(adaptable) or 'none'}"
            )
    return [t for t in found if any(fnmatch.fnmatchcase(name, p) for name in t.names() for p in patterns)]


def warn_about_ranks_above_full(found: list[Target], initializers: dict[str, onnx.TensorProto], rank: int) -> None:
    """Warn once about the weights of `found` that `rank` exceeds the smaller side of: such a pair has
    rank·(in + out) > in·out parameters, more than the weight it adapts, and no more expressive power than a
    full-rank update of min(in, out)."""
    above = {}  # weight -> (its node, its shape), in the order found
    for target in found:
        shape = tuple(initializers[target.weight].dims)
        if rank > min(shape) and target.weight not in above:
            above[target.weight] = (target.node.name, shape)
    if not above:
        return
    listed = [
        f"{weight!r} {shape} of node {node!r}" if node else f"{weight!r} {shape}"
        for weight, (node, shape) in above.items()
    ]
    shown = "; ".join(listed[:10]) + (f"; and {len(listed) - 10} more" if len(listed) > 10 else "")
    warnings.warn(
        f"LoRA rank {rank} exceeds min(in_features, out_features) of {len(above)} adapted weight(s): {shown}. Each of "
        f"their adapters then has more parameters than the weight it adapts (rank*(in + out) > in*out) and can "
        "express no more than an update of rank min(in, out). A rank below the smaller side is the usual choice.",
        UserWarning,
        stacklevel=3,  # the caller of add_adapters (onnxtrain.lora, for an imported model)
    )


def without_shared_weights(
    graph: onnx.GraphProto, found: list[Target], *, explicit: bool
) -> tuple[list[Target], list[tuple[Target, onnx.NodeProto]]]:
    """`found` less the targets whose weight a node outside `found` reads (the merge would change that node), and
    those left out with that node. A Transpose that a target reads W through is the target's; its output must
    have no other reader, and a weight that other targets read directly is left out there (the pair has one
    layout)."""
    chosen = {t.node.output[0] for t in found} | {t.transpose.output[0] for t in found if t.transpose is not None}
    direct = {t.weight for t in found if t.transpose is None}
    others: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        if node.output and node.output[0] not in chosen:
            others.update((name, node) for name in node.input if name not in others)
    shared: list[tuple[Target, onnx.NodeProto]] = []
    for t in found:
        if t.weight in others:
            shared.append((t, others[t.weight]))
        elif t.transpose is not None and (t.transpose.output[0] in others or t.weight in direct):
            shared.append((t, others.get(t.transpose.output[0], t.transpose)))
    if shared and explicit:
        t, other = shared[0]
        raise InvalidArgumentError(
            f"add_adapters: weight {t.weight!r} of node {t.node.name!r} is also read by {other.op_type} node "
            f"{other.name!r}, which the adapters would not reach: merging them would change that node too"
        )
    left_out = {id(t) for t, _ in shared}
    return [t for t in found if id(t) not in left_out], shared


def warn_about_left_out(
    graph: onnx.GraphProto,
    targets: tuple[str, ...],
    adaptable: list[Target],
    shared: list[tuple[Target, onnx.NodeProto]],
) -> None:
    """Warn once about the MatMul/Gemm nodes of `targets` that read a float initializer but get no adapter: those
    whose weight another node reads too (`shared`), and those whose weight is not a 2-D initializer read as it is
    or through Transpose(perm=[1, 0]) (a 3-D weight, a Reshape or Cast on the way)."""
    reasons = [
        f"{t.node.op_type} {t.node.name or t.node.output[0]!r}: its weight {t.weight!r} is also read by "
        f"{other.op_type} {other.name or other.output[0]!r}"
        for t, other in shared
    ]
    seen = {id(t.node) for t in adaptable}
    initializers = {t.name: t for t in graph.initializer if t.data_type in FLOATS}
    producers = {name: node for node in graph.node for name in node.output}
    for node in graph.node:
        if node.op_type not in targets or id(node) in seen:
            continue
        for name in node.input[:2]:
            path = _path_to_initializer(name, initializers, producers)
            if path is None:
                continue
            source, through = path
            how = f"a {len(initializers[source].dims)}-D initializer" if not through else "read through "
            how += " -> ".join(f"{n.op_type} {n.name or n.output[0]!r}" for n in through)
            reasons.append(f"{node.op_type} {node.name or node.output[0]!r}: its operand {source!r} is {how}")
            break
    if not reasons:
        return
    shown = "; ".join(reasons[:10]) + (f"; and {len(reasons) - 10} more" if len(reasons) > 10 else "")
    warnings.warn(
        f"LoRA adds no adapter to {len(reasons)} {'/'.join(targets)} node(s) that read a float weight: {shown}. "
        "Adapters go on products whose weight is a 2-D float initializer, read as it is or through "
        "Transpose(perm=[1, 0]), that no other node reads (merging would change that node). Pass nodes=[...] to "
        "choose the nodes and silence this.",
        UserWarning,
        stacklevel=4,  # the caller of onnxtrain.lora: lora -> add_adapters -> here
    )


def _path_to_initializer(
    name: str, initializers: dict[str, onnx.TensorProto], producers: dict[str, onnx.NodeProto]
) -> tuple[str, list[onnx.NodeProto]] | None:
    """The float initializer `name` is, or is computed from through a few one-input ops (`_PASS_THROUGH`), with
    those ops in graph order; None when it is neither."""
    through: list[onnx.NodeProto] = []
    while name not in initializers:
        node = producers.get(name)
        if node is None or node.op_type not in _PASS_THROUGH or len(through) >= 4 or not node.input:
            return None
        through.insert(0, node)
        name = node.input[0]
    return name, through
