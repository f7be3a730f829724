"""Cutting a foreign graph at chosen values (`outputs=[...]`): which names a cut takes, what it suggests for one it
does not, and the graph that computes only those values.

A cut ends at a value a node computes from the graph's input (or at a data input itself). A module's name
(`layer2`, `encoder.layers.0`, `enc.2`) stands for the one value its nodes hand on to the rest of the graph:
TorchScript names a module's nodes under its path (`/layer2/conv1/Conv`; a Sequential's child `/enc/enc.2/Gemm`),
the dynamo exporter lists it in each node's `pkg.torch.onnx.name_scopes` metadata. A weight (an
initializer, or TorchScript's Identity naming a merged one) is refused, as is any value computed from weights and
constants alone.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence

import onnx

from onnxtrain.errors import InvalidArgumentError, listing
from onnxtrain.foreign._graph_shapes import infer

_SCOPES = "pkg.torch.onnx.name_scopes"


def value_names(model: onnx.ModelProto) -> list[str]:
    """Every value a cut can end at by name: the graph's data inputs and every node output, in graph order."""
    weights = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in weights]
    return names + [name for node in model.graph.node for name in node.output if name]


def cut(model: onnx.ModelProto, outputs: Sequence[str], what: str) -> onnx.ModelProto:
    """`model` computing `outputs` (value or module names) as its graph outputs, without the nodes and
    initializers they do not need. `what` is how errors name the argument (`from_onnx(outputs=...)`, `--outputs`).

    Raises:
        InvalidArgumentError: `outputs` is not a non-empty list of names; a name is a weight or a value computed
            from weights alone; a name is no value of the graph, or a module whose nodes hand on several values
            (the error names the values to choose from, the module's first).
    """
    if isinstance(outputs, str) or not outputs or not all(isinstance(o, str) for o in outputs):
        raise InvalidArgumentError(f"{what} expects a non-empty list of value names. Received: outputs={outputs!r}")
    names = [_resolve(model, name, what) for name in outputs]
    needed = set(names)
    kept: list[onnx.NodeProto] = []
    for node in reversed(model.graph.node):
        if needed & set(node.output):
            kept.append(node)
            needed |= {name for name in node.input if name}
    graph = model.graph
    types = {v.name: v for v in [*graph.input, *graph.output, *graph.value_info]}
    new_outputs = [types.get(name) or onnx.helper.make_empty_tensor_value_info(name) for name in names]
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(reversed(kept))
    keep_only(result.graph.initializer, needed)
    keep_only(result.graph.input, needed)
    del result.graph.output[:]
    result.graph.output.extend(new_outputs)
    return _with_output_types(result)


def keep_only(field: object, names: set[str]) -> None:
    """Keep the entries of a repeated proto field (initializers, inputs) whose name is in `names`."""
    items = [item for item in field if item.name in names]  # type: ignore[attr-defined]
    del field[:]  # type: ignore[attr-defined]
    field.extend(items)  # type: ignore[attr-defined]


def module_scopes(node: onnx.NodeProto) -> set[str]:
    """The torch modules `node` belongs to, each with its enclosing ones: from TorchScript's node name
    (`/encoder/layers.0/linear1/MatMul` -> encoder, encoder.layers, encoder.layers.0, encoder.layers.0.linear1;
    `/enc/enc.2/Gemm` -> enc, enc.2) or the dynamo exporter's `pkg.torch.onnx.name_scopes`
    (`['', 'layer2', 'layer2.conv1', 'conv2d_4']`, the last entry the op's own name)."""
    paths: list[list[str]] = []
    if node.name.startswith("/") and node.name.count("/") > 1:
        paths.append(_torchscript_module(node.name.split("/")[1:-1]))
    entry = next((p.value for p in node.metadata_props if p.key == _SCOPES), None)
    if entry is not None:
        try:
            scopes = ast.literal_eval(entry)
        except (ValueError, SyntaxError):
            scopes = []
        if isinstance(scopes, list) and len(scopes) > 2 and scopes[0] == "":
            paths.extend([part for part in str(scope).split(".") if part] for scope in scopes[1:-1])
    return {".".join(parts[: i + 1]) for parts in paths for i in range(len(parts))}


def _torchscript_module(segments: list[str]) -> list[str]:
    """The parts of the dotted name of the module whose scope TorchScript writes as `segments` (`['layer1',
    'layer1.0', 'conv1']` -> layer1.0.conv1). TorchScript names each module from the last part of its name that is
    not a number (torch.onnx.utils._unqualified_variable_name): a Sequential's child is `enc.2` under `enc`, its
    child `enc.2.0` under that, a module's own child `conv1`, the item of a ModuleList not called itself `layers.0`.
    A segment that begins with the end of the path so far (`enc.2` after `enc`) continues it; any other (`conv1`,
    a bare `2`) is appended. A ModuleDict's key comes without the dict's name (`/a/Gemm` for `blocks.a`): such a
    module is found by its key."""
    path: list[str] = []
    for segment in segments:
        parts = [part for part in segment.split(".") if part]
        overlap = next(
            (size for size in range(min(len(parts) - 1, len(path)), 0, -1) if path[-size:] == parts[:size]), 0
        )
        path.extend(parts[overlap:])
    return path


def _resolve(model: onnx.ModelProto, name: str, what: str) -> str:
    """The value `name` names (itself, or a module's output), or an error that says what it is and what to take."""
    graph = model.graph
    computed = _from_inputs(model)
    initializers = {t.name for t in graph.initializer}
    if name in computed:
        return name
    if name in initializers or name in value_names(model):
        raise InvalidArgumentError(_weight_message(model, name, name in initializers, computed, what))
    module = _module_outputs(model, name, computed)
    if len(module) == 1:
        return module[0]
    if module:
        raise InvalidArgumentError(
            f"{what}: the nodes of module {name!r} hand on {len(module)} values to the rest of the graph, so the "
            f"module names no one output: {listing(module, 8)}. Name one of them."
        )
    close = _close_matches(model, name, computed)
    hint = (f"Close matches: {close}. " if close else "") + f"The graph's last values: {computed[-6:]}."
    raise InvalidArgumentError(
        f"{what} names no value of the graph: {name!r}. Nor does it name a torch module of its nodes. {hint} A cut "
        "takes a value a node computes (Netron shows them; [n.output[0] for n in onnx.load(path).graph.node]) or a "
        "module's name (its last output)."
    )


def _from_inputs(model: onnx.ModelProto) -> list[str]:
    """The values computed from the graph's data inputs (and those inputs), in graph order: what a cut can end at."""
    initializers = {t.name for t in model.graph.initializer}
    found = [v.name for v in model.graph.input if v.name not in initializers]
    reached = set(found)
    for node in model.graph.node:
        if reached & set(node.input):
            outputs = [name for name in node.output if name]
            found.extend(outputs)
            reached.update(outputs)
    return found


def _weight_message(model: onnx.ModelProto, name: str, initializer: bool, computed: list[str], what: str) -> str:
    """Why `name` (an initializer, or a value computed from weights and constants only) is no cut, and where to cut."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output if out}
    source = producer.get(name)
    if initializer:
        kind = "is a weight (an initializer), not a value a node computes"
    elif source is not None and source.op_type == "Identity" and source.input[0] in {t.name for t in graph.initializer}:
        kind = (
            f"is a weight (the exporter names the initializer {source.input[0]!r} so, through the Identity node "
            f"{source.name!r}), not a value a node computes from the input"
        )
    else:
        kind = "is computed from weights and constants only (it depends on no input of the graph)"
    taken = set(computed)
    readers = [out for node in graph.node if name in node.input for out in node.output if out in taken]
    fix = f" Cut after a node that reads it: {listing(readers, 4)}." if readers else ""
    return f"{what}: {name!r} {kind}; a cut ends at a value computed from the graph's input.{fix}"


def _module_outputs(model: onnx.ModelProto, module: str, computed: list[str]) -> list[str]:
    """The values that the nodes of `module` compute from the input and that a node outside it (or the graph's
    output) reads, in graph order; empty when no node belongs to it."""
    inside = [node for node in model.graph.node if module in module_scopes(node)]
    if not inside:
        return []
    produced = {out for node in inside for out in node.output if out}
    own = {id(node) for node in inside}
    read_outside = {name for node in model.graph.node if id(node) not in own for name in node.input}
    read_outside |= {value.name for value in model.graph.output}
    return [name for name in computed if name in produced and name in read_outside]


def _close_matches(model: onnx.ModelProto, name: str, computed: list[str]) -> list[str]:
    """Up to 5 values a node computes from the input that `name` may have meant: first those of the modules whose
    name resembles it, the closest first, each module's own value (the one its name cuts at) before its others
    (`pool` -> `/pool/GlobalAveragePool_output_0`), then values whose own name resembles it."""
    taken = set(computed)
    members: dict[str, list[str]] = {}  # each module's values computed from the input, in graph order
    for node in model.graph.node:
        values = [out for out in node.output if out in taken]
        for scope in module_scopes(node):
            members.setdefault(scope, []).extend(values)
    order = {value: index for index, value in enumerate(computed)}
    scored: list[tuple[float, int, str]] = []
    for module, values in members.items():
        ratio = difflib.SequenceMatcher(None, name, module).ratio()
        if values and ratio >= 0.6:
            scored.append((-ratio, -order[values[-1]], module))  # ties: the module that ends later first
    ranked: list[str] = []
    for _, _, module in sorted(scored):
        own = _module_outputs(model, module, computed)
        ranked += own + [value for value in reversed(members[module]) if value not in own]
        if len(dict.fromkeys(ranked)) >= 5:
            break
    ranked += difflib.get_close_matches(name, computed, n=5, cutoff=0.4)
    return list(dict.fromkeys(ranked))[:5]


def _with_output_types(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give outputs declared without a type (a cut's) their inferred type."""
    inferred = infer(model)
    for output in model.graph.output:
        if not output.type.tensor_type.elem_type and output.name in inferred:
            output.type.CopyFrom(inferred[output.name])
    return model
