"""The message of `layer.<attribute>` where a layer has no such attribute: Python's spelling where the attribute is
KotlinDL's (`layer.isTrainable` is `layer.trainable`, `dense.outputSize` is `dense.units`, `layer.getWeights` is
`layer.get_weights`), as a model's `__getattr__` hints it (`onnxtrain._kotlindl_attributes.missing_attribute`)."""

from __future__ import annotations

from typing import Any

from onnxtrain._registry import snake_case
from onnxtrain.layers._assignments import _KOTLINDL_SPELLINGS, misspelled_setting
from onnxtrain.layers._keras_arguments import kotlindl_names


def missing_layer_attribute(layer: Any, attribute: str) -> str:
    """Python's message of a missing attribute ("'Dense' object has no attribute 'isTrainable'"), and how Python
    spells it where `layer` has it by another name. Cheap for the misses that code probes (`getattr(layer,
    "prefix_names", True)`): a private or lower-case name that is no KotlinDL name is answered at once."""
    message = f"{type(layer).__name__!r} object has no attribute {attribute!r}"
    if attribute.startswith("_") or (
        attribute.islower()
        and attribute not in _KOTLINDL_SPELLINGS
        and attribute not in getattr(type(layer), "kotlindl_names", {})
    ):
        return message
    setting = misspelled_setting(layer, attribute, {**_KOTLINDL_SPELLINGS, **kotlindl_names(type(layer))})
    if setting is None:
        return message
    if setting == snake_case(attribute):
        return f"{message}. Python's spelling of KotlinDL's camelCase names is snake_case: layer.{setting}"
    return f"{message}. KotlinDL's {attribute} is layer.{setting} here"
