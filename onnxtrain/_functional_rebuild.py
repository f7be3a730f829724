"""A Functional's calls rebuilt from its config: new layers, called as `Functional.get_config` recorded them."""

from __future__ import annotations

from typing import Any

from onnxtrain._functional_outputs import WRITTEN_POSITIONS, flattened
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Input, Layer
from onnxtrain.layers._call_mode import call_entry
from onnxtrain.layers._layer import SymbolicTensor

Ref = tuple[str, int, int]  # a tensor's layer name, call index and output index
CONFIG_POSITION = "_config_position"  # a rebuilt layer's (config list, its place in it), in its __dict__


def rebuild_calls(config: dict[str, Any], keep_order: bool = False) -> tuple[list[Input], list[SymbolicTensor]]:
    """New layers from a `get_config` dict, called as it records; returns (inputs, outputs). With `keep_order`
    each layer keeps its place in the config's list, which a graph of them takes as its order (`in_config_order`)."""
    try:
        entries = [(Layer.from_config(entry), entry["inbound_nodes"]) for entry in config["layers"]]
        input_refs, output_refs = config["input_layers"], config["output_layers"]
    except (KeyError, TypeError) as e:
        raise InvalidArgumentError(
            "A Functional config needs 'layers' (each with 'inbound_nodes'), 'input_layers' and 'output_layers', "
            f"as get_config() writes them. Missing or malformed: {e}"
        ) from e
    listing = object()  # this config's list, which the positions below are places in
    for position, (layer, _) in enumerate(entries if keep_order else ()):
        layer.__dict__[CONFIG_POSITION] = (listing, position)
    tensors: dict[Ref, SymbolicTensor] = {}
    pending = {}
    for layer, inbound in entries:
        if isinstance(layer, Input):
            tensors[(str(layer.name), 0, 0)] = layer
        else:
            pending[id(layer)] = (layer, list(inbound))
    while pending:  # a shared layer's later call may read layers listed after it: call whatever is ready
        progressed = False
        for key, (layer, inbound) in list(pending.items()):
            while inbound and all(_ref(ref) in tensors for ref in call_entry(layer.name, inbound[0])[0]):
                refs, kwargs = call_entry(layer.name, inbound.pop(0))
                xs = [tensors[_ref(ref)] for ref in refs]
                # a layer taking one tensor or several (MultiHeadAttention) learns which from its call
                output = layer(xs if layer.multi_input or len(xs) > 1 else xs[0], **kwargs)
                # a nested model's call: its outputs' structure (a dict, ...); a config written before a dict of
                # outputs was sorted refers to them in the dict's order (`_functional_outputs.written_positions`)
                positions = layer.__dict__.get(WRITTEN_POSITIONS)
                for tensor in flattened(output):
                    index = tensor.output_index if positions is None else positions[tensor.output_index]
                    tensors[(str(layer.name), tensor.call_index, index)] = tensor
                progressed = True
            if not inbound:
                del pending[key]
        if not progressed:
            waiting = sorted(str(layer.name) for layer, _ in pending.values())
            raise InvalidArgumentError(f"The Functional config's calls of {waiting} read tensors no layer makes.")
    try:
        return [tensors[_ref(ref)] for ref in input_refs], [tensors[_ref(ref)] for ref in output_refs]  # type: ignore[misc]
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidArgumentError(f"The Functional config names an input or output no layer makes: {e}") from e


def in_config_order(layers: list[Layer]) -> list[Layer]:
    """`layers` (a graph's, in the order of their first call) in the order of the config they were all rebuilt
    from, as Keras orders the layers of a model rebuilt from its config (and so its weights: a Keras model's
    `get_weights()` list sets the rebuilt model's); else as they are. onnxtrain's own config lists a graph's
    layers in its order, so a saved and loaded model keeps it."""
    places: list[tuple[object, int]] = [layer.__dict__.get(CONFIG_POSITION) or (None, 0) for layer in layers]
    if not places or any(place[0] is None or place[0] is not places[0][0] for place in places):
        return layers
    return [layer for _, layer in sorted(zip(places, layers, strict=True), key=lambda pair: pair[0][1])]


def _ref(ref: Any) -> Ref:
    """A config's ref of a tensor, [layer name, call index] or [layer name, call index, output index] (an output
    of a model of several), as (name, call index, output index)."""
    name, call, *output = ref
    return str(name), int(call), int(output[0]) if output else 0
