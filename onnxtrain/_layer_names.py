"""Keras' automatic layer names: each unnamed layer of a model named after its class, numbered in order
(`dense_1`, `conv2d_1`, `dense_2`), and names held unique in a model. Sequential and Functional both name here."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

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
    name). Sequential and Functional both name their layers here."""
    taken = [layer.name for layer in layers if layer.name is not None]
    duplicates = [name for name, count in Counter(taken).items() if count > 1]
    if duplicates:
        raise InvalidArgumentError(
            f"Layer names must be unique in a model. Received duplicates: {duplicates}. Name the layers "
            "(e.g. Dense(8, name=...)), or use a new layer where one was meant to be a copy."
        )
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
