"""The torch parameter behind each weight of a torch.onnx dynamo export, as the exporter's metadata proves it.

The dynamo exporter's optimizer (`optimize=True`, its default) folds `Transpose(enc.linear1.weight)` into an
unnamed initializer (`val_93`, read by `node_MatMul_90`): by its name no module pattern (`enc.*`) reaches it. The
export says whose it is: the graph's `pkg.torch.export.ExportedProgram.graph_signature` maps each FX placeholder to
its parameter (`p_enc_linear1_weight: PARAMETER target='enc.linear1.weight'`), and each node's
`pkg.torch.onnx.fx_node` names the aten call it lowers (`aten.linear(%layer_norm_1, %p_enc_linear1_weight,
%p_enc_linear1_bias)`). Of the parameters that call reads, those the graph holds under their own name
(`enc.linear1.bias`, read by the call's Add) are accounted for; the one left is the unnamed initializer's.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import onnx

from onnxtrain.foreign._graph import argument
from onnxtrain.foreign._user_frame import user_stacklevel

SIGNATURE = "pkg.torch.export.ExportedProgram.graph_signature"
FX_NODE, NAME_SCOPES = "pkg.torch.onnx.fx_node", "pkg.torch.onnx.name_scopes"
REWRITE_RULES = "pkg.onnxscript.rewriter.rule_name"
# aten calls whose tensor arguments are the ONNX node's inputs in order: (input, weight, bias, ...)
POSITIONAL = re.compile(r"aten\.(linear|conv[123]d|convolution|conv_transpose[123]d)\b")


@dataclass(frozen=True)
class FxCall:
    """The aten call a node lowers, from its `pkg.torch.onnx.fx_node` text: the FX node's name (one per call,
    shared by every ONNX node the call became), its target and its positional arguments as written."""

    name: str
    target: str
    args: tuple[str, ...]


def signature(graph: onnx.GraphProto) -> dict[str, str]:
    """{FX placeholder: torch name} of the parameters and buffers, from the export's graph signature; empty for a
    graph without it (TorchScript's, or a dynamo export older than the metadata)."""
    text = next((e.value for e in graph.metadata_props if e.key == SIGNATURE), "")
    return dict(re.findall(r"^(\w+): (?:PARAMETER|BUFFER) target='([^']+)'", text, flags=re.MULTILINE))


def fx_call(node: onnx.NodeProto) -> FxCall | None:
    """The aten call `node` lowers; None for a node without the metadata (or of no call_function)."""
    text = next((p.value for p in node.metadata_props if p.key == FX_NODE), "")
    found = re.match(r"%(\w+) .*?call_function\[target=([\w.]+)\]\(args = \(", text)
    if found is None:
        return None
    args, depth, start = [], 0, found.end()
    for i in range(start, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}" and depth:
            depth -= 1
        elif text[i] in ")," and not depth:  # a comma or the closing parenthesis at the top level
            args.append(text[start:i].strip())
            start = i + 1
            if text[i] == ")":
                break
    return FxCall(found.group(1), found.group(2), tuple(a for a in args if a))


def module_of(node: onnx.NodeProto) -> str | None:
    """The torch module whose forward the node comes from (`enc.linear1`), from its name scopes; None unknown."""
    text = next((p.value for p in node.metadata_props if p.key == NAME_SCOPES), "")
    scopes = re.findall(r"'([^']*)'", text)
    return scopes[-2] if len(scopes) >= 2 else None


def torch_names(graph: onnx.GraphProto, weights: Collection[str]) -> dict[str, str]:
    """{weight: torch name} for the weights (initializer or graph input names) that are not named after a torch
    parameter but hold one (or a value computed from one alone, as a folded transpose), as the metadata proves:
    every node that reads the weight lowers an aten call that reads that parameter, which the graph holds under
    no name of its own among the call's other inputs. Empty for a graph without the export's signature."""
    placeholders = signature(graph)
    if not placeholders:
        return {}
    named = set(placeholders.values())
    unnamed = {w for w in weights if w not in named}
    nodes = list(graph.node)
    calls = [fx_call(node) for node in nodes]
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node, call in zip(nodes, calls, strict=True):
        if call is not None:
            groups.setdefault(call.name, []).append(node)
    proven: dict[str, set[str | None]] = {}
    for node, call in zip(nodes, calls, strict=True):
        for index, name in enumerate(node.input):
            if name in unnamed:
                found = None if call is None else _held(call, groups[call.name], node, index, placeholders, unnamed)
                proven.setdefault(name, set()).add(found)
    return {w: found for w, p in proven.items() if len(p) == 1 for found in p if found is not None}


def call_parameters(call: FxCall, placeholders: dict[str, str]) -> list[str]:
    """The torch names of the parameters and buffers `call` reads, in argument order."""
    read = [placeholders.get(a[1:]) for a in call.args if a.startswith("%")]
    return list(dict.fromkeys(name for name in read if name is not None))


def unaccounted(
    call: FxCall, group: Sequence[onnx.NodeProto], placeholders: dict[str, str], held: Collection[str]
) -> list[str]:
    """The parameters `call` reads that none of the nodes it became (`group`) reads under the parameter's own name
    or as a weight of `held` (weights already known to hold a parameter)."""
    read = {name for node in group for name in node.input}
    return [p for p in call_parameters(call, placeholders) if p not in read and p not in held]


def _held(
    call: FxCall,
    group: list[onnx.NodeProto],
    node: onnx.NodeProto,
    index: int,
    placeholders: dict[str, str],
    unnamed: set[str],
) -> str | None:
    """The parameter that `node`'s input `index`, an unnamed weight, holds: the one parameter of the call left
    once its named inputs are accounted for, where the call's nodes read one unnamed weight; or, for a linear or
    convolution call, the argument at that position (`aten.linear(x, W, b)`: MatMul's or Gemm's input 1 is W)."""
    left = unaccounted(call, group, placeholders, ())
    if len(left) == 1 and len({n for g in group for n in g.input if n in unnamed}) == 1:
        return left[0]
    if POSITIONAL.search(call.target) and node.op_type in ("MatMul", "Gemm", "Conv", "ConvTranspose"):
        if index < len(call.args) and call.args[index].startswith("%"):
            return placeholders.get(call.args[index][1:])
    return None


def warn_unnamed(
    graph: onnx.GraphProto,
    weights: Collection[str],
    patterns: dict[str, Sequence[str] | None],
    owner: str,
) -> None:
    """Warn once about the `weights` of a dynamo export that hold no parameter the metadata proves while a
    pattern of `patterns` ({argument: patterns}) names the module of a node reading them (`enc.*`, read in
    `enc.linear1`): that pattern does not select them, which the user meant it to."""
    calls = [(node, fx_call(node)) for node in graph.node]
    if all(call is None for _, call in calls):
        return  # not a dynamo export: TorchScript's node names are module paths (`_selection.reader_scopes`)
    named = set(signature(graph).values()) | set(torch_names(graph, weights))
    for node, call in calls:  # without the signature: a weight the aten call reads under its own name
        named |= {n for n in node.input if call is not None and {f"%p_{_flat(n)}", f"%b_{_flat(n)}"} & {*call.args}}
    missed: dict[str, tuple[str, str, str]] = {}  # weight -> (argument, pattern, module)
    for node, _ in calls:
        module = module_of(node)
        for name in node.input:
            if name not in weights or name in named or name in missed or not module:
                continue
            for arg, given in patterns.items():
                pattern = next((p for p in given or () if _names_module(p, module, name)), None)
                if pattern is not None:
                    missed[name] = (arg, pattern, module)
                    break
    if not missed:
        return
    shown = [f"{w!r} (read in module {m!r}: {argument(owner, a)} has {p!r})" for w, (a, p, m) in missed.items()]
    listed = "; ".join(shown[:6]) + (f"; and {len(shown) - 6} more" if len(shown) > 6 else "")
    warnings.warn(
        f"{owner}: {len(missed)} weight(s) of this torch dynamo export hold no torch parameter that the export's "
        f"metadata proves, so module patterns do not select them: {listed}. Name them as they are (the "
        "initializer names above) in trainable/frozen, or export with torch.onnx.export(..., dynamo=True, "
        "optimize=False), which keeps each parameter under its own name.",
        UserWarning,
        stacklevel=user_stacklevel(),  # from_onnx's caller, OnnxLayer's
    )


def _flat(name: str) -> str:
    return name.replace(".", "_")


def _names_module(pattern: str, module: str, weight: str) -> bool:
    """Whether `pattern` selects what module `module` holds (`enc.*`, `enc.linear1.*` for `enc.linear1`)."""
    return fnmatch.fnmatchcase(f"{module}.{weight}", pattern) and not fnmatch.fnmatchcase(weight, pattern)
