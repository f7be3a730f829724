"""Which models a layer belongs to: the open models made of it share its one set of weights (`claim_layers`), a
closed model gives its layers up (`release_layers`), two models that share layers are never both compiled
(`check_sole_trainer`), and one not compiled reads the weights the compiled one trains (`pull_weights`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from onnxtrain.errors import ModelStateError
from onnxtrain.functional import every_layer
from onnxtrain.layers import Input, Layer


def claim_layers(model: Any, layers: Sequence[Layer], name: str) -> None:
    """Make `model` (named `name`) the model its `layers` belong to, or, for a layer of another open model, one more
    model made of it.

    One layer, one set of weights, as in Keras: any number of open models may be made of a layer (an autoencoder
    and its encoder, a feature extractor from `model.inputs` and `layer.output`, a base nested in two heads). The
    first holds it (`model_name`); the others are its sharers. One of them at a time is compiled
    (`check_sole_trainer`): its engine trains the weights, and the others read them from it (`pull_weights`). A
    closed model's claim passes to an open sharer, or is released (`release_layers`), so its layers, with the weights
    it trained, go on into a new model. Inputs hold no weights and may start any number of models.
    """
    reference = weakref.ref(model)
    for layer in layers:
        if isinstance(layer, Input):
            continue
        other = _open_model(layer._model)
        if other is None or other is model:
            layer._model, layer.model_name = reference, name
        elif all(_open_model(sharer) is not model for sharer in layer._sharers):
            layer._sharers.append(reference)


def release_layers(model: Any) -> None:
    """Give up `model`'s claim on its layers (`close`): where `model` is nested in another model that is still
    open, that one, which trains them, holds them instead; otherwise another open model made of them, or none, so
    that a new model may be made of them."""
    holder = _open_model(getattr(model.graph, "_model", None))
    if holder is model:
        holder = None
    for layer in every_layer(model.graph.layers):  # nested ones too: a closed nested model left them to `model`
        if isinstance(layer, Input):
            continue
        sharers = [sharer for sharer in map(_open_model, layer._sharers) if sharer is not None and sharer is not model]
        claim = _open_model(layer._model)
        heir = claim
        if claim is None or claim is model:
            heir = holder if holder is not None else next(iter(sharers), None)
        layer._sharers = [weakref.ref(sharer) for sharer in sharers if sharer is not heir]
        if heir is None or heir is not claim:
            layer._model = None if heir is None else weakref.ref(heir)
            layer.model_name = None if heir is None else heir.name


def rename_claims(model: Any, name: str) -> None:
    """Give the layers `model` holds its new `name` (a nested model's default name, replaced by the model it is
    nested in: `_layer_names.name_layers`)."""
    for layer in every_layer(model.graph.layers):
        if not isinstance(layer, Input) and _open_model(layer._model) is model:
            layer.model_name = name


def _open_model(reference: weakref.ref[Any] | None) -> Any:
    """The model `reference` refers to while it is alive and open, else None."""
    model = reference() if reference is not None else None
    return None if model is None or getattr(model, "_closed", False) else model


def shares_layers(model: Any) -> bool:
    """Whether another model holds layers of `model` (a nested model and the model it is a layer of)."""
    return len(models_sharing_layers(model)) > 1


def check_sole_trainer(model: Any, action: str) -> None:
    """Refuse to compile `model` while another open, compiled model shares layers with it (a nested model and the
    model it is a layer of, or two models made of one layer): each engine would train its own copy of the weights,
    so neither would see the other's training. Closing that model leaves its trained weights in the layers, which
    `model` then starts from.

    Raises:
        ModelStateError: another model sharing layers with `model` is compiled and open.
    """
    for other in models_sharing_layers(model):
        if other is not model and getattr(other, "_trainer", None) is not None and not other._closed:
            if other.name != model.name:
                raise ModelStateError(
                    f"{action}() on model {model.name!r}: it shares layers with model {other.name!r} (made of the "
                    f"same layers, or one a layer of the other), which is compiled, and one engine at a time trains "
                    f"a layer's weights. Close {other.name!r} first ({other.name}.close(); its trained weights stay "
                    f"in the layers, and {model.name!r} starts from them), or compile and train one of the two "
                    f"models only."
                )
            raise ModelStateError(
                f"{action}() on model {model.name!r}: it shares layers{_shared_names(model, other)} with another "
                f"model also named {other.name!r} (a loaded model keeps the name it was saved under, which a new "
                f"model takes too as Keras' default), which is compiled, and one engine at a time trains a layer's "
                f"weights. Close that other, compiled model first (its close(); its trained weights stay in the "
                f"layers, and this one starts from them), or, to reuse a saved model's layers, load it uncompiled: "
                f"load_model(..., compile=False); or compile and train one of the two models only. (name=... tells "
                f"two models apart.)"
            )


def _shared_names(model: Any, other: Any) -> str:
    """The names of the layers `model` and `other` are both made of (" ['conv2d_1', ...]"), as the refusal of two
    models of one name tells them apart; "" where they share none directly (one is a layer of the other)."""
    theirs = {id(layer) for layer in every_layer(other.graph.layers)}
    shared = [
        str(layer.name)
        for layer in every_layer(model.graph.layers)
        if id(layer) in theirs and not isinstance(layer, Input)
    ]
    return f" {shared}" if shared else ""


def models_sharing_layers(model: Any) -> list[Any]:
    """`model` and every model connected to it by a layer: the holders and sharers of its layers (nested models'
    layers included) and of its graph (where it is a layer of another model), and theirs in turn."""
    found, pending = [model], [model]
    while pending:
        graph = pending.pop().graph
        for layer in [graph, *every_layer(graph.layers)]:
            for reference in [getattr(layer, "_model", None), *getattr(layer, "_sharers", ())]:
                other = reference() if reference is not None else None
                if other is not None and all(other is not seen for seen in found):
                    found.append(other)
                    pending.append(other)
    return found


def pull_weights(model: Any) -> None:
    """Copy into the layers of `model`, which is not compiled, the weights that the open, compiled model sharing
    them trained since they were last copied (its training steps tell)."""
    if "graph" not in model.__dict__:  # a Sequential not built yet
        return
    for other in models_sharing_layers(model):
        trainer = other._trainer if other is not model and not other._closed else None
        if trainer is not None:
            pulled = getattr(model, "_pulled_weights", None)
            if pulled is None or pulled[0]() is not trainer or pulled[1] != trainer.steps_trained:
                other.sync_weights()
                model._pulled_weights = (weakref.ref(trainer), trainer.steps_trained)
            return
