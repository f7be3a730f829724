"""Quantized (QDQ) graphs: a QuantizeLinear's output is integers, through which no gradient passes, so a weight
whose every path to the output crosses one would not train; training such a graph is refused, naming the node.

onnxruntime.quantization's QDQ format stores the weights as int8 initializers (constants here) behind
DequantizeLinear and quantizes the activations between layers, so every float weight left (the scales) is cut off
from the loss: the engines would run steps that change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx

from onnxtrain.errors import UnsupportedError
from onnxtrain.foreign import _graph

QUANTIZING = frozenset({"QuantizeLinear", "DynamicQuantizeLinear"})


def check_gradients_reach_weights(graph: onnx.ModelProto, trainable: Iterable[str], owner: str, caller: str) -> None:
    """Refuse training `graph` when a trainable weight reaches its output only through QuantizeLinear nodes.

    Args:
        graph: the stripped graph (weights as graph inputs).
        trainable: the names of the weights that train.
        owner: the layer's name, for the message.
        caller: what the layer's arguments are named after (`_graph.argument`): "from_onnx", "finetune", ...

    Raises:
        UnsupportedError: naming the QuantizeLinear node, the weights it cuts off and what to do instead.
    """
    output = graph.graph.output[0].name
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.graph.node:
        for name in node.input:
            if name:
                readers.setdefault(name, []).append(node)
    cut: dict[str, list[str]] = {}  # QuantizeLinear node -> the weights it cuts off
    for weight in trainable:
        reaches, quantizers = _reach(weight, readers, output)
        if not reaches and quantizers:
            cut.setdefault(quantizers[0], []).append(weight)
    if not cut:
        return
    node, weights = next(iter(cut.items()))
    every = sum(len(w) for w in cut.values())
    shown = weights if len(weights) <= 4 else [*weights[:4], f"and {len(weights) - 4} more"]
    others = f" (and {len(cut) - 1} more such nodes)" if len(cut) > 1 else ""
    raise UnsupportedError(
        f"OnnxLayer {owner!r} cannot train a quantized graph: {every} trainable weight(s) reach the output only "
        f"through QuantizeLinear nodes, whose integer outputs pass no gradient, so training would change nothing: "
        f"QuantizeLinear node {node!r} cuts off {shown}{others}. The graph's int8 weights are constants "
        "(DequantizeLinear inputs). Fine-tune the float32 model and quantize the result, or freeze these weights "
        f"to train a new head on the quantized model ({_FREEZE_COMMAND if caller in _graph.COMMANDS else _FREEZE})."
    )


_FREEZE = "frozen=[...], or OnnxLayer(..., trainable=False) under a Dense head"
_FREEZE_COMMAND = "--frozen PATTERN, or --head N alone, which freezes the model"


def _reach(weight: str, readers: dict[str, list[onnx.NodeProto]], output: str) -> tuple[bool, list[str]]:
    """Whether `weight` reaches `output` through nodes other than QuantizeLinear, and the QuantizeLinear nodes
    (by name, or first output) it meets on the way."""
    seen, pending, quantizers = {weight}, [weight], list[str]()
    while pending:
        name = pending.pop()
        if name == output:
            return True, quantizers
        for node in readers.get(name, ()):
            if node.op_type in QUANTIZING:
                quantizers.append(node.name or node.output[0])
                continue
            for produced in node.output:
                if produced and produced not in seen:
                    seen.add(produced)
                    pending.append(produced)
    return False, quantizers
