"""Keras' automatic layer names: each unnamed layer of a model named after its class, numbered in order
(`dense_1`, `conv2d_1`, `dense_2`), and names held unique in a model. Sequential and Functional both name here. A
nested model still under its default name (`_model_names.py`) is named by the model it is nested in."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from onnxtrain._model_names import AUTO_NAMED
from onnxtrain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from onnxtrain.layers._layer import Layer


def to_snake_case(class_name: str) -> str:
    """Keras' layer name of a class: `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d`, `ReLU` -> `re_lu`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def name_layers(layers: Sequence[Layer]) -> None:
    """Name each unnamed layer after its class in Keras' snake case, numbered in order (`dense_1`, `conv2d_1`,
    `dense_2`), skipping taken names; layer names must be unique in a model (a nested graph's layers are under its
    name). Sequential and Functional both name their layers here.

    A nested model under its default name (Keras' "functional_3", numbered per process) is named here instead, as
    Keras numbers names but within this model ("functional", "functional_1", ...): its weights' names in this
    model's graphs then do not depend on how many models the process made before (`_model_names.py`); one that a
    wrapper holds (`TimeDistributed(model)`) takes its kind's name ("sequential"), alone in the wrapper's scope.
    """
    defaults = [layer for layer in layers if layer.__dict__.get(AUTO_NAMED)]
    taken = [layer.name for layer in layers if layer.name is not None and all(layer is not d for d in defaults)]
    duplicates = [name for name, count in Counter(taken).items() if count > 1]
    if duplicates:
        raise InvalidArgumentError(
            f"Layer names must be unique in a model. Received duplicates: {duplicates}. Name the layers "
            "(e.g. Dense(8, name=...)), or use a new layer where one was meant to be a copy."
        )
    for layer in defaults:
        prefix = layer.__dict__[AUTO_NAMED]
        candidate, count = prefix, 0
        while candidate in taken:
            count += 1
            candidate = f"{prefix}_{count}"
        layer._take_model_name(candidate)  # type: ignore[attr-defined]  # (a Functional's)
        taken.append(candidate)
    for layer in layers:  # a model a wrapper holds (TimeDistributed(model)): alone in the wrapper's scope
        held = getattr(layer, "layer", None)
        if held is not None and getattr(held, "__dict__", {}).get(AUTO_NAMED):
            held._take_model_name(held.__dict__[AUTO_NAMED])
    counters: Counter[str] = Counter()
    for layer in layers:
        if layer.name is None:
            prefix = to_snake_case(type(layer).__name__)
            while True:
                counters[prefix] += 1
                candidate = f"{prefix}_{counters[prefix]}"
                if candidate not in taken:
                    break
            layer.name = candidate
            taken.append(candidate)
