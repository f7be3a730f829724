"""`lora`: an imported ONNX model with low-rank adapters on its matrix products, only the adapters training.

It sits above `onnxtrain.model`, beside `from_onnx`; the graph transform itself is `onnxtrain.adapters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
from onnx import numpy_helper

from onnxtrain.adapters import ADAPTER_PATTERNS, add_adapters
from onnxtrain.errors import InvalidTypeError
from onnxtrain.foreign import _graph
from onnxtrain.foreign._import import from_onnx
from onnxtrain.foreign._layer import OnnxLayer
from onnxtrain.foreign._outputs import OnnxOutput
from onnxtrain.layers import Input
from onnxtrain.model import Model


def lora(
    model: Any,
    rank: int = 8,
    targets: Sequence[str] = ("MatMul", "Gemm"),
    alpha: float = 16,
    *,
    seed: int = 0,
    nodes: Sequence[str] | None = None,
) -> Model:
    """`model` with LoRA adapters (`onnxtrain.adapters.add_adapters`) as a new model whose only trainable
    weights are the adapters, `<weight>.lora_A` and `<weight>.lora_B`; the base weights are frozen.

    The adapted model predicts what `model` does until it trains (B starts at zero). `export(path,
    merge_adapters=True)` folds the adapters into the weights: a plain model of the original's size.

    Args:
        model: a model `from_onnx` made (its current weights, input scale, class names and BatchNorm mode carry
            over), or what `from_onnx` takes: a path to an .onnx file or an onnx.ModelProto.
        rank: the adapters' inner dimension.
        targets: the op types to adapt ("MatMul", "Gemm").
        alpha: the adapters' output is scaled by alpha / rank.
        seed: seeds the adapters' initialization.
        nodes: node or weight names (glob patterns allowed) to adapt only those.

    Raises:
        InvalidTypeError: `model` is another kind of model (a Sequential, or a Model with more layers).
        InvalidArgumentError: see `add_adapters` (rank or alpha not positive, no node matched).

    Example:
        >>> model = lora(from_onnx("encoder.onnx"), rank=8)  # doctest: +SKIP
        >>> model.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy_with_logits")  # doctest: +SKIP
    """
    if not isinstance(model, Model):
        adapted = add_adapters(_graph.read_model(model, "lora"), rank, targets, alpha, seed, nodes)
        return from_onnx(adapted, trainable=list(ADAPTER_PATTERNS), untie=False)
    layer = _imported_layer(model)
    adapted = add_adapters(_with_weights(layer, model.get_weights()), rank, targets, alpha, seed, nodes)
    result = from_onnx(
        adapted,
        trainable=list(ADAPTER_PATTERNS),
        input_scale=model.input_scale if model.input_scale != 1.0 else None,
        batch_norm=layer.batch_norm,
        name=model.name,
        untie=False,  # the base was untied at its import; weights shared here are the adapters a tied W shares
    )
    result.class_names = model.class_names
    return result


def _imported_layer(model: Model) -> OnnxLayer:
    layers = [layer for layer in model.layers if not isinstance(layer, Input | OnnxOutput)]  # (OnnxOutput: the
    # outputs of a graph of several, which from_onnx builds again around the adapted graph)
    if len(layers) != 1 or not isinstance(layers[0], OnnxLayer) or layers[0].prefix_names:
        shown = ", ".join(type(layer).__name__ for layer in model.layers)
        raise InvalidTypeError(
            "lora expects a model that from_onnx made (its inputs, one OnnxLayer and its outputs), a path to an "
            f".onnx file or an onnx.ModelProto. Received: a {type(model).__name__} of {shown}. For an imported model "
            "inside a larger one, adapt the ONNX model first: OnnxLayer(onnxtrain.adapters.add_adapters(proto), "
            "trainable=['*.lora_A', '*.lora_B'])"
        )
    return layers[0]


def _with_weights(layer: OnnxLayer, weights: dict[str, Any]) -> onnx.ModelProto:
    """The layer's graph with its weights back as initializers (their current values, from `weights`)."""
    proto = onnx.ModelProto()
    proto.CopyFrom(layer.graph)
    graph = proto.graph
    inputs = [value for value in graph.input if value.name not in layer.weight_shapes]
    del graph.input[:]
    graph.input.extend(inputs)
    graph.initializer.extend(numpy_helper.from_array(weights[name], name) for name in layer.weight_shapes)
    return proto
