"""Which model a layer belongs to: one open model at a time trains a layer's weights (`claim_layers`), a closed
model gives its layers up (`release_layers`), and two models that share layers (one nested in the other) are never
both compiled (`check_sole_trainer`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from onnxtrain.errors import InvalidArgumentError, ModelStateError
from onnxtrain.functional import Functional, every_layer
from onnxtrain.layers import Input, Layer
from onnxtrain.layers._layer import describe


def claim_layers(model: Any, layers: Sequence[Layer], name: str) -> None:
    """Make `model` (named `name`) the model its `layers` belong to, refusing a layer of another open model.

    One layer, one set of weights, trained by one model's engine: a second open model made of a layer would keep a
    copy of its weights in its own engine that the first model's training never reaches (Keras shares them). A
    closed model's claim is released (`release_layers`), so its layers, with the weights it trained, and a model
    nested in it go on into a new model: Keras' reuse of a pretrained base under a new head. Inputs hold no weights
    and may start any number of models. A Model called as a layer of another (nested) is shared the other way: its
    layers stay its own, and `check_sole_trainer` keeps two models that share them from both being compiled.

    Raises:
        InvalidArgumentError: a layer belongs to another model that is still open.
    """
    for layer in layers:
        owner = getattr(layer, "_model", None)
        other = owner() if owner is not None else None
        if isinstance(layer, Input) or other is None or other is model or getattr(other, "_closed", False):
            continue
        nested = isinstance(layer, Functional)
        instead = (
            "Or save it and rebuild it with load_model."
            if nested
            else "Or, to train the layer with both, make the shared part a model of its own and call it as a layer "
            "of the other (encoder = Model(inp, code); full = Model(x, head(encoder(x))): training full trains "
            "encoder's layers), or give one model several outputs (Model(inp, [head(code), code]))."
        )
        raise InvalidArgumentError(
            f"{type(model).__name__} expects layers of no other open model; {describe(layer)} belongs to model "
            f"{layer.model_name!r}, which is open: two open models of one {'model' if nested else 'layer'} would "
            "each train their own copy of its weights, and neither would see the other's training. Close "
            f"{layer.model_name!r} first ({layer.model_name}.close(), or leave its `with` block): its layers keep the "
            f"weights it trained, and a new model may use {'the model' if nested else 'them'}. {instead}"
        )
    reference = weakref.ref(model)
    for layer in layers:
        if not isinstance(layer, Input):
            layer._model, layer.model_name = reference, name


def release_layers(model: Any) -> None:
    """Give up `model`'s claim on its layers (`close`), so that a new model may be made of them; where `model` is
    nested in another model that is still open, that one, which trains them, holds them instead."""
    owner = getattr(model.graph, "_model", None)
    holder = owner() if owner is not None else None
    if holder is model or getattr(holder, "_closed", True):
        holder = None
    for layer in model.graph.layers:
        claim = getattr(layer, "_model", None)
        if not isinstance(layer, Input) and claim is not None and claim() is model:
            layer._model = None if holder is None else weakref.ref(holder)
            layer.model_name = None if holder is None else holder.name


def shares_layers(model: Any) -> bool:
    """Whether another model holds layers of `model` (a nested model and the model it is a layer of)."""
    return len(models_sharing_layers(model)) > 1


def check_sole_trainer(model: Any, action: str) -> None:
    """Refuse to compile `model` while another open, compiled model shares layers with it (a nested model and the
    model it is a layer of): each engine trains its own copy of the weights, so neither would see the other's
    training. Closing that model leaves its trained weights in the layers, which `model` then starts from.

    Raises:
        ModelStateError: another model sharing layers with `model` is compiled and open.
    """
    for other in models_sharing_layers(model):
        if other is not model and getattr(other, "_trainer", None) is not None and not other._closed:
            raise ModelStateError(
                f"{action}() on model {model.name!r}: it shares layers with model {other.name!r} (one is a layer of "
                f"the other), which is compiled, and one engine at a time trains a layer's weights. Close "
                f"{other.name!r} first ({other.name}.close(); its trained weights stay in the layers, and "
                f"{model.name!r} starts from them), or compile and train one of the two models only."
            )


def models_sharing_layers(model: Any) -> list[Any]:
    """`model` and every model connected to it by a layer: the owners of its layers (nested models' layers
    included) and of its graph (where it is a layer of another model), and theirs in turn."""
    found, pending = [model], [model]
    while pending:
        graph = pending.pop().graph
        for layer in [graph, *every_layer(graph.layers)]:
            owner = getattr(layer, "_model", None)
            other = owner() if owner is not None else None
            if other is not None and all(other is not seen for seen in found):
                found.append(other)
                pending.append(other)
    return found
