"""Which weights of an imported graph train: `trainable` and `frozen` patterns, matched against each weight's name,
the names of the nodes that read it, or the torch parameter a dynamo export's metadata proves it holds."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import onnx

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.foreign import _graph
from onnxtrain.foreign._torch_names import torch_names

# Float initializers read only here are settings, not weights: Dropout's ratio, Resize's roi and scales, ...
_SETTING_INPUTS = {"Dropout": {1}, "Resize": {1, 2}, "Upsample": {1}, "Pad": {2}, "Clip": {1, 2}}


def patterns(caller: str, argument: str, value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(p, str) and p for p in items):
        raise InvalidTypeError(
            f"{_graph.argument(caller, argument)} expects a bool or a list of initializer names and glob patterns, "
            f'e.g. ["head.*"]. Received: {argument}={value!r}'
        )
    return tuple(items)


def reader_scopes(graph: onnx.GraphProto, names: set[str]) -> dict[str, set[str]]:
    """For each weight in `names`, the other names a pattern selects it by:

    - the names of the nodes that read it, with "/" read as "." and no leading dot: TorchScript names a
      transposed Linear weight `onnx::MatMul_391`, read by `/encoder/layers.0/linear1/MatMul`, which reads as
      `encoder.layers.0.linear1.MatMul`, beside its bias `encoder.layers.0.linear1.bias`;
    - the torch parameter it holds, where a dynamo export's metadata proves it (`_torch_names`): the optimizer's
      `val_93` (a folded `Transpose(enc.linear1.weight)`) is `enc.linear1.weight`."""
    scopes: dict[str, set[str]] = {}
    for node in graph.node:
        scope = node.name.replace("/", ".").lstrip(".")
        for name in node.input:
            if name in names and scope:
                scopes.setdefault(name, set()).add(scope)
    for name, parameter in torch_names(graph, names).items():
        scopes.setdefault(name, set()).add(parameter)
    return scopes


def matching(
    caller: str, argument: str, patterns: Sequence[str], names: list[str], scopes: dict[str, set[str]]
) -> set[str]:
    """The weights a pattern selects: by their own name, or by the scope of a node that reads them."""
    matched: set[str] = set()
    for pattern in patterns:
        found = {
            name
            for name in names
            if fnmatch.fnmatchcase(name, pattern) or any(fnmatch.fnmatchcase(s, pattern) for s in scopes.get(name, ()))
        }
        if not found:
            shown = f"{names}" if len(names) <= 30 else f"{names[:30]} and {len(names) - 30} more"
            raise InvalidArgumentError(
                f"{_graph.argument(caller, argument)}: {pattern!r} matches no float initializer of the graph. "
                f"Available: {shown}"
            )
        matched |= found
    return matched


def settings(model: onnx.ModelProto) -> set[str]:
    """Float initializers that are settings, not weights: read only at `_SETTING_INPUTS` positions."""
    reads: dict[str, set[bool]] = {}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            reads.setdefault(name, set()).add(i in _SETTING_INPUTS.get(node.op_type, ()))
    return {name for name, kinds in reads.items() if kinds == {True}}
