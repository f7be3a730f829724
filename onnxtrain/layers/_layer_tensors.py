"""Keras' `layer.output` and `layer.input` (`Layer.output`, `Layer.input`): the symbolic tensors of a layer's one
call in a model's graph, from which a feature extractor is made
(`Model(inputs=model.inputs, outputs=[l.output for l in model.layers[1:]])`).

A layer called in a functional graph records its calls (`symbolic_calls`); a Sequential makes its chain without
calling its layers (`functional.as_graph`), so a layer of one is found in its model's graph. Nothing here imports
the Layer class nor SymbolicTensor (`_layer.py`, which imports this module): the tensors are what the layer holds.
"""

from __future__ import annotations

from typing import Any

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers._layer_checks import describe


def layer_calls(layer: Any) -> list[Any]:
    """The tensors (`SymbolicTensor`s) the calls of `layer` made, in call order: an Input is its own; a layer of a
    Sequential, its call in the model's graph."""
    if getattr(layer, "layer", None) is layer:  # an Input: a tensor whose layer is itself
        return [layer]
    calls = list(layer.symbolic_calls)
    if not calls:
        model = layer._owning_model()
        graph = model.__dict__.get("graph") if model is not None else None
        if graph is not None:
            calls = [node for node in graph._nodes if node.layer is layer]
    return calls


def layer_output(layer: Any, attribute: str = "output") -> Any:
    """Keras' `layer.output`: the tensor of the layer's one call (`attribute` names what the caller asked for).

    Raises:
        InvalidArgumentError: the layer was never called in a model, or is called at several places (shared).
    """
    calls = layer_calls(layer)
    if not calls:
        verb = "returned" if attribute == "output" else "read"
        raise InvalidArgumentError(
            f"{describe(layer)} has no {attribute}: it is called in no model yet. Its {attribute} is the tensor its "
            f"call {verb}, e.g. x = Input(4); y = Dense(3)(x) (y is then that layer's output, x its input)."
        )
    if len(calls) > 1:
        per_call = "returned, e.g. a_out = shared(a); b_out = shared(b)" if attribute == "output" else "read (a, b)"
        raise InvalidArgumentError(
            f"{describe(layer)} is called at {len(calls)} places (shared), so it has no one {attribute}; Keras' "
            f"layer.{attribute} is the tensor of a layer's single call. Use the tensor each call {per_call}."
        )
    return calls[0]


def layer_input(layer: Any) -> Any:
    """Keras' `layer.input`: the tensor the layer's one call read (a list of them for a multi-input layer; an
    Input's is itself).

    Raises:
        InvalidArgumentError: as `layer_output`.
    """
    output = layer_output(layer, "input")
    if not output.inputs:  # an Input
        return output
    return list(output.inputs) if layer.multi_input else output.inputs[0]
