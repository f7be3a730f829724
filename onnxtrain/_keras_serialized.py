"""Keras' serialized objects as the initializer and regularizer registries read them: Keras 3's
`{"module": "keras.initializers", "class_name": "GlorotUniform", "config": {...}, "registered_name": None}` (what a
layer's `get_config()` writes for its `kernel_initializer`), and Keras 2's `{"class_name": ..., "config": {...}}`,
become onnxtrain's config dict, `{"name": "GlorotUniform", **config}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onnxtrain.errors import InvalidArgumentError, UnsupportedError

# The keys of Keras' serialized object; "shared_object_id" marks an object that several layers share.
_KEYS = ("module", "class_name", "config", "registered_name", "shared_object_id")


def is_keras_serialized(identifier: object) -> bool:
    """Whether `identifier` is Keras' serialized form of an object (a dict with "class_name" and no "name")."""
    return isinstance(identifier, Mapping) and "class_name" in identifier and "name" not in identifier


def keras_config(kind: str, identifier: Mapping[str, Any], own: str) -> dict[str, Any]:
    """Keras' serialized `kind` (an "initializer") as onnxtrain's config dict: its class name as "name", and its
    config's entries (which the caller maps onto its class's arguments).

    Args:
        kind: what it is, for messages.
        identifier: the dict Keras wrote.
        own: where onnxtrain's own objects of this kind are ("onnxtrain.initializers"), for the refusal of a
            class of one's own.

    Raises:
        InvalidArgumentError: not Keras' form: a class name that is no string, a config that is no dict, another key.
        UnsupportedError: a class of one's own (registered with Keras, or from a module outside Keras), which
            onnxtrain cannot rebuild.
    """
    class_name, config = identifier.get("class_name"), identifier.get("config")
    config = {} if config is None else config
    unknown = sorted(str(key) for key in identifier if key not in _KEYS)
    if not isinstance(class_name, str) or not isinstance(config, Mapping) or unknown:
        raise InvalidArgumentError(
            f"Could not interpret Keras' serialized {kind} {identifier!r}: expected {{'class_name': str, 'config': "
            f"dict}}, with 'module' and 'registered_name' as Keras writes them"
            + (f" (unknown key(s) {unknown})" if unknown else "")
            + "."
        )
    module, registered = identifier.get("module"), identifier.get("registered_name")
    if registered is not None or (module is not None and not str(module).startswith("keras")):
        raise UnsupportedError(
            f"Keras' serialized {kind} {class_name!r} is a class of one's own (module {module!r}, registered as "
            f"{registered!r}), which onnxtrain cannot rebuild from a config: it rebuilds the built-in {kind}s of Keras "
            f"that {own} has. Give one of those, or an instance of a subclass of your own. Received: {identifier!r}"
        )
    return {**config, "name": class_name}
