"""Keras 3's Functional model config (`keras_model.get_config()`) in the form onnxtrain's Functional config has, so
that `Model.from_config` rebuilds it where its layers load.

Keras writes each call's inputs as `__keras_tensor__` entries, `{"args": [{"class_name": "__keras_tensor__",
"config": {"shape": ..., "dtype": ..., "keras_history": ["h", 0, 0]}}], "kwargs": {}}` (several inputs as a list in
`args`: `Add()([a, b])`), where onnxtrain writes the refs they read, `[["h", 0, 0]]`; and a model's one input or
output as one ref (`"input_layers": ["x", 0, 0]`), where onnxtrain writes a list of refs. A dict of outputs is kept:
Keras counts it by sorted key, as onnxtrain's rebuilt graph does. An onnxtrain config passes through as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from onnxtrain._functional_outputs import ORDER_KEY
from onnxtrain.errors import InvalidArgumentError, UnsupportedError

KERAS_TENSOR = "__keras_tensor__"


def onnxtrain_functional_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with Keras 3's calls and refs as onnxtrain's (a copy; an onnxtrain config comes back equal).

    Raises:
        UnsupportedError: a call reading a tensor as a keyword argument (`mha(q, value=v)`), or a constant
            positional argument, which onnxtrain's calls do not take.
        InvalidArgumentError: a `__keras_tensor__` entry without its `keras_history`.
    """
    result = dict(config)
    layers = config.get("layers")
    if isinstance(layers, list):
        result["layers"] = [_with_refs(entry) for entry in layers]
    for key in ("input_layers", "output_layers"):
        if _is_ref(config.get(key)):
            result[key] = [config[key]]
    outputs = config.get("output_layers")
    if _is_keras(config) and isinstance(outputs, Mapping) and list(outputs) != sorted(outputs):
        result.setdefault(ORDER_KEY, "sorted")  # Keras flattens a dict of outputs by sorted key
    return result


def _is_keras(config: Mapping[str, Any]) -> bool:
    """Whether `config` is Keras' (a call reading a `__keras_tensor__`, or one ref for the inputs)."""
    layers = config.get("layers")
    calls = [c for e in layers if isinstance(e, Mapping) for c in e.get("inbound_nodes") or ()] if layers else []
    return _is_ref(config.get("input_layers")) or any(_has_keras_tensor(call) for call in calls)


def _is_ref(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    """Whether `value` is one ref, [layer name, call index, output index] (not a list of them)."""
    return isinstance(value, list | tuple) and len(value) in (2, 3) and isinstance(value[0], str)


def _has_keras_tensor(value: object) -> bool:
    if isinstance(value, Mapping):
        return value.get("class_name") == KERAS_TENSOR or any(_has_keras_tensor(v) for v in value.values())
    return isinstance(value, list | tuple) and any(_has_keras_tensor(v) for v in value)


def _with_refs(entry: Any) -> Any:
    """A layer's entry with each of its Keras calls as onnxtrain writes it."""
    calls = entry.get("inbound_nodes") if isinstance(entry, Mapping) else None
    if not isinstance(calls, list) or not any(_has_keras_tensor(call) for call in calls):
        return entry
    name = entry.get("name") or (entry.get("config") or {}).get("name")
    return {**entry, "inbound_nodes": [_call(name, call) for call in calls]}


def _call(layer: object, call: Any) -> Any:
    """One Keras call, `{"args": [...], "kwargs": {...}}`, as onnxtrain's: the refs it reads, or {"args": refs,
    "kwargs": kwargs} where it has kwargs (`training=False`)."""
    if not isinstance(call, Mapping) or not _has_keras_tensor(call.get("args")):
        return call
    kwargs = call.get("kwargs") or {}
    tensors = sorted(str(key) for key, value in kwargs.items() if _has_keras_tensor(value))
    if tensors:
        raise UnsupportedError(
            f"The Keras config's call of layer {layer!r} reads tensors as keyword arguments ({', '.join(tensors)}), "
            "which onnxtrain's rebuilt calls do not take: they read their inputs in order (Keras' "
            "`layer(query, value)`, not `layer(query, value=value)`). Call the layer with its inputs positionally "
            f"in Keras and write the config again. Received: {dict(call)!r}"
        )
    refs = [_ref(layer, tensor, call) for tensor in _flat(call["args"])]
    return {"args": refs, "kwargs": dict(kwargs)} if kwargs else refs


def _flat(args: Any) -> list[Any]:
    """The positional arguments, with a list of tensors (`Add()([a, b])`) as its tensors."""
    if isinstance(args, list | tuple):
        return [item for arg in args for item in _flat(arg)]
    return [args]


def _ref(layer: object, tensor: Any, call: Mapping[str, Any]) -> list[Any]:
    if not isinstance(tensor, Mapping) or tensor.get("class_name") != KERAS_TENSOR:
        raise UnsupportedError(
            f"The Keras config's call of layer {layer!r} has a positional argument that is not a tensor "
            f"({tensor!r}): onnxtrain's rebuilt calls read tensors only; a layer's settings belong in its config. "
            f"Received: {dict(call)!r}"
        )
    history = (tensor.get("config") or {}).get("keras_history")
    if not _is_ref(history):
        raise InvalidArgumentError(
            f"The Keras config's call of layer {layer!r} reads a tensor without its keras_history [layer name, call "
            f"index, output index], which says which call made it. Received: {tensor!r}"
        )
    return list(history)
