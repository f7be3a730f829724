"""Weights an exporter merged: each parameter its own weight again where the file says they were separate, and a
warning (or `untie`) where it cannot tell a merge from a real tie.

torch's exporters merge parameters that hold equal values (fresh LayerNorm/BatchNorm weights are ones, biases
zeros). TorchScript keeps one initializer and names the others through `Identity` nodes
(`Identity_57: enc.self_attn.out_proj.bias -> norm.bias`); the dynamo exporter's optimizer (`optimize=True`) has
several nodes read one initializer directly. Imported as they are, every reader's gradient would be summed into one
weight and the export would keep the layers tied. A real tie (an embedding read again as the LM head) is written
the same way by dynamo, so a directly shared initializer is only untied where the node's torch metadata
(`pkg.torch.onnx.fx_node`) names a parameter of another name, or where `untie` asks for it.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.foreign._graph import argument
from onnxtrain.foreign._selection import patterns
from onnxtrain.foreign._user_frame import user_stacklevel

Untie = bool | str | Sequence[str] | None
_STATISTICS = {"BatchNormalization": {3, 4}}  # running statistics: `_statistics.own_statistics` gives them copies
_FX_NODE, _SCOPES = "pkg.torch.onnx.fx_node", "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class Untied:
    """What `untie_weights` did: the graph, the copies it made (name -> the initializer copied), and the shared
    initializers it left tied without proof either way (name -> the nodes reading it)."""

    model: onnx.ModelProto
    copies: dict[str, str]
    ambiguous: dict[str, list[onnx.NodeProto]]


def untie_weights(model: onnx.ModelProto, untie: Untie, owner: str) -> Untied:
    """`model` (copied) with separate parameters that an exporter merged made separate float initializers again.

    - An Identity of a float initializer (through any chain of Identities) becomes an initializer of its output's
      name holding the same value (TorchScript's merged parameters: `norm.bias`).
    - A float initializer that several nodes read directly: a reader whose torch metadata names another parameter
      (`%p_enc_norm2_weight` where the initializer is `enc.norm1.weight`) gets a copy of that name; readers that
      `untie` selects (True: all; names or glob patterns: those initializers) get a copy named after the node
      (`node_layer_norm_1.weight`). The first reader keeps the initializer. Shared initializers neither proven
      nor selected are returned as `ambiguous`, for the caller to warn about those that train.

    `untie=False` keeps the file's sharing as it is, Identities included. Graphs whose weights were stripped
    before (a stored graph: `load_model`, `lora`) have no float initializers, and nothing changes.

    Raises:
        InvalidTypeError: `untie` is not a bool, a name, or a list of names.
        InvalidArgumentError: a name or pattern in `untie` matches no initializer that several nodes read.
    """
    patterns = _untie_patterns(untie, owner)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    if untie is False:
        return Untied(result, {}, {})
    graph = result.graph
    initializers = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    taken = names_in(graph)
    statistics_only = _read_only_as_statistics(graph)  # `own_statistics`' to copy, in batch_norm="train" only
    copies = identity_copies(graph, initializers, only={n.output[0] for n in graph.node} - statistics_only)
    readers = _shared_readers(graph, initializers)
    if patterns:
        _check_patterns(patterns, readers, owner)
    ambiguous: dict[str, list[onnx.NodeProto]] = {}
    for name, nodes in readers.items():
        selected = untie is True or any(fnmatch.fnmatchcase(name, p) for p in patterns)
        left: list[onnx.NodeProto] = []
        for node in nodes[1:]:
            own = _torch_parameter(node, name)
            if own == name and not selected:  # the metadata says the node reads this very parameter: a real tie
                continue
            if own is None and not selected:
                left.append(node)
                continue
            wanted = own if own is not None and own != name and own not in taken else None
            copy = fresh(wanted or f"{scope(node)}.{name.rsplit('.', 1)[-1]}", taken)
            taken.add(copy)
            graph.initializer.append(tensor_copy(initializers[name], copy))
            copies[copy] = name
            for i, read in enumerate(node.input):
                if read == name:
                    node.input[i] = copy
        if left:
            ambiguous[name] = [nodes[0], *left]
    return Untied(result, copies, ambiguous)


def warn_tied(ambiguous: dict[str, list[onnx.NodeProto]], trained: set[str], owner: str) -> None:
    """Warn once about the shared initializers of `ambiguous` that train: every reader's gradient goes into one
    weight, which is right for a real tie and wrong for parameters an exporter merged for their equal values."""
    shown = [
        f"{name!r} (read by {', '.join(f'{n.op_type} {n.name or n.output[0]!r}' for n in nodes[:4])}"
        + (f" and {len(nodes) - 4} more" if len(nodes) > 4 else "")
        + ")"
        for name, nodes in ambiguous.items()
        if name in trained
    ]
    if not shown:
        return
    listed = "; ".join(shown[:6]) + (f"; and {len(shown) - 6} more" if len(shown) > 6 else "")
    warnings.warn(
        f"{owner}: {len(shown)} trainable initializer(s) are read by several nodes, so those nodes train one tied "
        f"weight: {listed}. That is right for a real tie (an embedding read again as the LM head), and wrong where "
        "the exporter merged separate parameters of equal value (torch.onnx.export(..., dynamo=True) with its "
        f"default optimize=True merges fresh LayerNorm weights and zero biases). Pass {argument(owner, 'untie')} "
        "with their names (or True) to give each node its own copy, or export with dynamo=True, optimize=False, "
        "or dynamo=False (TorchScript), which keep each parameter.",
        UserWarning,
        stacklevel=user_stacklevel(),  # from_onnx's caller, OnnxLayer's
    )


def identity_copies(
    graph: onnx.GraphProto, initializers: dict[str, onnx.TensorProto], only: set[str] | None = None
) -> dict[str, str]:
    """Replace each Identity whose input is (through Identities) one of `initializers` by an initializer of the
    Identity's output name holding the same value, unless that output is a graph output (`only`: for the outputs
    among these). Returns {copy: the initializer copied}; `initializers` gains the copies."""
    identities = {n.output[0]: n for n in graph.node if n.op_type == "Identity" and n.input and n.output}
    outputs = {o.name for o in graph.output}
    copies: dict[str, str] = {}
    replaced: list[onnx.NodeProto] = []
    for name, node in identities.items():
        source = node.input[0]
        while source in identities and source not in initializers:
            source = identities[source].input[0]
        if (
            source not in initializers
            or name in outputs
            or name in initializers
            or (only is not None and name not in only)
        ):
            continue
        initializers[name] = tensor_copy(initializers[source], name)
        graph.initializer.append(initializers[name])
        copies[name] = source
        replaced.append(node)
    kept = [n for n in graph.node if all(n is not r for r in replaced)]
    del graph.node[:]
    graph.node.extend(kept)
    return copies


def _shared_readers(
    graph: onnx.GraphProto, initializers: dict[str, onnx.TensorProto]
) -> dict[str, list[onnx.NodeProto]]:
    """The float initializers (of more than one element, all finite: not an exporter's constant) that several
    nodes read, each with its readers in graph order; BatchNormalization's running statistics aside."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        skipped = _STATISTICS.get(node.op_type, set())
        for i, name in enumerate(node.input):
            if name in initializers and i not in skipped and all(n is not node for n in readers.get(name, [])):
                readers.setdefault(name, []).append(node)
    return {
        name: nodes
        for name, nodes in readers.items()
        if len(nodes) > 1
        and int(np.prod(initializers[name].dims)) > 1
        and np.isfinite(numpy_helper.to_array(initializers[name])).all()
    }


def _read_only_as_statistics(graph: onnx.GraphProto) -> set[str]:
    """The values that nodes read only as BatchNormalization's running statistics."""
    kinds: dict[str, set[bool]] = {}
    for node in graph.node:
        skipped = _STATISTICS.get(node.op_type, set())
        for i, name in enumerate(node.input):
            kinds.setdefault(name, set()).add(i in skipped)
    return {name for name, found in kinds.items() if found == {True}}


def _torch_parameter(node: onnx.NodeProto, name: str) -> str | None:
    """The torch parameter `node` reads where the file has initializer `name`, as the dynamo exporter's metadata
    tells: `name` itself when its FX text reads `%p_<name>` (`%p_enc_norm1_weight`); another, proven, when it reads
    its module scope plus the initializer's last part instead (`enc.norm2` + `weight`: `%p_enc_norm2_weight`);
    None where the node has no such metadata or it proves neither."""
    meta = {p.key: p.value for p in node.metadata_props}
    reads = set(re.findall(r"%(p_\w+)", meta.get(_FX_NODE, "")))
    if "p_" + name.replace(".", "_") in reads:
        return name
    scopes = re.findall(r"'([^']*)'", meta.get(_SCOPES, ""))
    if len(scopes) < 2:
        return None
    leaf = name.rsplit(".", 1)[-1]
    candidate = f"{scopes[-2]}.{leaf}" if scopes[-2] else leaf
    return candidate if "p_" + candidate.replace(".", "_") in reads else None


def _untie_patterns(untie: Untie, owner: str) -> tuple[str, ...]:
    return () if untie is None or isinstance(untie, bool) else patterns(owner, "untie", untie)


def _check_patterns(patterns: Sequence[str], readers: dict[str, list[onnx.NodeProto]], owner: str) -> None:
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in readers):
            raise InvalidArgumentError(
                f"{argument(owner, 'untie')}: {pattern!r} matches no initializer that several nodes read. Shared "
                f"initializers: {sorted(readers) or 'none'}"
            )


def names_in(graph: onnx.GraphProto) -> set[str]:
    """Every value name a graph defines or reads: what a new initializer's name must not be."""
    return {v.name for v in [*graph.input, *graph.output, *graph.initializer]} | {
        name for n in graph.node for name in (*n.input, *n.output)
    }


def scope(node: onnx.NodeProto) -> str:
    """The node's name as a weight name's prefix: "/b1/BatchNormalization" -> "b1.BatchNormalization"."""
    return re.sub(r"[/:]+", ".", node.name or node.output[0]).strip(".") or "node"


def fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def tensor_copy(tensor: onnx.TensorProto, name: str) -> onnx.TensorProto:
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    copy.name = name
    return copy
