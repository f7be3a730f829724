"""Keras 3's Functional model config (`keras_model.get_config()`) in the form onnxtrain's Functional config has, so
that `Model.from_config` rebuilds it where its layers load.

Keras writes each call's inputs as `__keras_tensor__` entries, `{"args": [{"class_name": "__keras_tensor__",
"config": {"shape": ..., "dtype": ..., "keras_history": ["h", 0, 0]}}], "kwargs": {}}` (several inputs as a list in
`args`: `Add()([a, b])`), where onnxtrain writes the refs they read, `[["h", 0, 0]]`; and a model's one input or
output as one ref (`"input_layers": ["x", 0, 0]`), where onnxtrain writes a list of refs. A dict of outputs is kept:
Keras counts it by sorted key, as onnxtrain's rebuilt graph does. An onnxtrain config passes through as it is.

A call's keyword arguments are Keras' call context, which onnxtrain's rebuilt calls take otherwise:

- `training` is dropped: Keras records the call signature's default (`training: false` for every Dropout, LSTM,
  BatchNormalization) and its Functional replaces it by the model's own mode whenever that is given, as fit and
  predict give it (keras/src/models/functional.py, `operation_fn`); onnxtrain's graphs run each call so too.
- `mask` is dropped where it is the mask onnxtrain's layers derive themselves: null, or the output of Keras'
  mask operations (`NotEqual` of an Embedding(mask_zero=True)'s ids against 0, or of a Masking layer's input
  against its mask_value; `Any`, `LogicalOr`, `ExpandDims`, ... merging such masks), which Keras records as entries
  of their own among the layers and which are dropped with it. Any other mask, or Keras operation, is refused.
- `use_causal_mask=True` (an attention layer's) becomes the layer's own setting; the Keras defaults of the
  attention layers' other call arguments are dropped.

A nested Keras Sequential (its config a list of layers) becomes the Functional config of its chain of calls, which
onnxtrain rebuilds as a nested model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard

from onnxtrain._functional_outputs import ORDER_KEY
from onnxtrain.errors import InvalidArgumentError, UnsupportedError

KERAS_TENSOR = "__keras_tensor__"
_OPERATIONS = "keras.src.ops"  # the module of Keras' operations (`keras.ops.not_equal`) a config records
_DROPPED_DEFAULTS = {"attention_mask": None, "return_attention_scores": False, "use_causal_mask": False}
_LAYER_SETTINGS = ("use_causal_mask",)  # call arguments that an onnxtrain layer takes in its constructor
_INPUTS = ("InputLayer", "Input")


def onnxtrain_functional_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with Keras 3's calls and refs as onnxtrain's (a copy; an onnxtrain config comes back equal), and a
    Sequential's config (a nested Keras Sequential's) as the Functional config of its chain of layers.

    Raises:
        UnsupportedError: a call reading a tensor as a keyword argument (`mha(q, value=v)`), a constant positional
            argument, a mask onnxtrain does not derive, or a call argument onnxtrain's calls do not take.
        InvalidArgumentError: a `__keras_tensor__` entry without its `keras_history`; a Keras operation
            (`keras.ops.*`) computing other than a mask; a Sequential config without an input shape.
    """
    if _is_sequential(config):
        config = sequential_as_functional(config)
    result = dict(config)
    layers = config.get("layers")
    if isinstance(layers, list):
        masks: set[str] = set()
        if _is_keras(config):
            layers, masks = _without_mask_operations(layers, config.get("output_layers"))
        result["layers"] = [_converted(entry, masks) for entry in layers]
    for key in ("input_layers", "output_layers"):
        if _is_ref(config.get(key)):
            result[key] = [config[key]]
    outputs = config.get("output_layers")
    if _is_keras(config) and isinstance(outputs, Mapping) and list(outputs) != sorted(outputs):
        result.setdefault(ORDER_KEY, "sorted")  # Keras flattens a dict of outputs by sorted key
    return result


def sequential_as_functional(config: Mapping[str, Any], dtype: object = None) -> dict[str, Any]:
    """The Functional config of a Sequential's (Keras' or onnxtrain's: its layers in order): an Input, then each
    layer called on the one before. Without an Input first, Keras' `build_input_shape` gives the input's shape
    (and `dtype`, what the Sequential's call reads, its dtype).

    Raises:
        InvalidArgumentError: neither an Input first nor a `build_input_shape`.
    """
    name = str(config.get("name") or "sequential")
    entries = [dict(entry) for entry in config["layers"]]
    if not entries or entries[0].get("class_name") not in _INPUTS:
        shape = config.get("build_input_shape")
        if not isinstance(shape, list | tuple) or len(shape) < 2:
            raise InvalidArgumentError(
                f"The Sequential config {name!r} has no input shape (no InputLayer first, no build_input_shape), "
                "which its layers' weights need: build the Sequential in Keras before writing its config (start it "
                "with keras.Input(shape), or call it on data). Received: its layers "
                f"{[entry.get('class_name') for entry in entries]}"
            )
        input_config = {"batch_shape": list(shape), "dtype": dtype or "float32", "name": f"{name}_input"}
        entries.insert(0, {"class_name": "InputLayer", "config": input_config})
    names = [_name(entry) or f"{name}_layer_{i}" for i, entry in enumerate(entries)]
    layers = [{**entries[0], "inbound_nodes": []}]
    for i, entry in enumerate(entries[1:], start=1):
        config_i = {**entry.get("config", {}), "name": names[i]}
        layers.append({**entry, "config": config_i, "inbound_nodes": [[[names[i - 1], 0, 0]]]})
    return {
        "name": name,
        "trainable": config.get("trainable", True),
        "layers": layers,
        "input_layers": [[names[0], 0, 0]],
        "output_layers": [[names[-1], 0, 0]],
    }


def _is_sequential(config: Mapping[str, Any]) -> bool:
    layers = config.get("layers")
    return (
        isinstance(layers, list)
        and "input_layers" not in config
        and all(isinstance(entry, Mapping) and "inbound_nodes" not in entry for entry in layers)
    )


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


def _keras_tensors(value: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping) and value.get("class_name") == KERAS_TENSOR:
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _keras_tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _keras_tensors(item)


def _name(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    name = entry.get("name") or (entry.get("config") or {}).get("name")
    return None if name is None else str(name)


def _producer(tensor: Mapping[str, Any]) -> str | None:
    history = (tensor.get("config") or {}).get("keras_history")
    return str(history[0]) if _is_ref(history) else None


def _is_operation(entry: Any) -> bool:
    return isinstance(entry, Mapping) and str(entry.get("module") or "").startswith(_OPERATIONS)


def _without_mask_operations(layers: list[Any], outputs: object) -> tuple[list[Any], set[str]]:
    """(`layers` without Keras' mask operations, the names of those operations): the operations whose outputs
    only masks read (`mask=` of a call, or another such operation), each mask derived from an Embedding(mask_zero=True)
    or a Masking layer, as onnxtrain's layers derive it (see the module docstring).

    Raises:
        InvalidArgumentError: an operation whose output a layer or the model's outputs read as data.
        UnsupportedError: a mask computed by operations from no such layer's input.
    """
    entries = {_name(entry): entry for entry in layers if isinstance(entry, Mapping)}
    data: dict[str, set[str]] = {}  # producer -> the entries reading it as data (the model's outputs: "")
    read_as_masks: set[str] = set()
    for name, entry in entries.items():
        for call in entry.get("inbound_nodes") or ():
            kwargs = (call.get("kwargs") or {}) if isinstance(call, Mapping) else {}
            read = [call.get("args") if isinstance(call, Mapping) else call]
            read += [value for key, value in kwargs.items() if key != "mask"]
            for tensor in _keras_tensors(read):
                data.setdefault(str(_producer(tensor)), set()).add(str(name))
            read_as_masks |= {str(_producer(tensor)) for tensor in _keras_tensors(kwargs.get("mask"))}
    for ref in _output_refs(outputs):
        data.setdefault(str(ref[0]), set()).add("")
    masks = {name for name, entry in entries.items() if name is not None and _is_operation(entry)}
    while True:  # an operation read as data by anything but a mask operation computes data
        computing = {name for name in masks if data.get(name, set()) - masks}
        if not computing:
            break
        masks -= computing
    for name, entry in entries.items():
        if _is_operation(entry) and name not in masks:
            raise InvalidArgumentError(_operation_refusal(entry, data.get(str(name), set())))
    for name in sorted(masks & read_as_masks):
        _check_derived(entries, name)
    return [entry for entry in layers if _name(entry) not in masks], masks


def _output_refs(outputs: object) -> list[Any]:
    if _is_ref(outputs):
        return [outputs]
    values = outputs.values() if isinstance(outputs, Mapping) else outputs if isinstance(outputs, list) else ()
    return [ref for ref in values if _is_ref(ref)]


def _operation_refusal(entry: Mapping[str, Any], readers: set[str]) -> str:
    read_by = ", ".join(repr(r) if r else "the model's outputs" for r in sorted(readers))
    return (
        f"Could not interpret layer class {entry.get('class_name')!r} ({_name(entry)!r}, read by {read_by}): it is a "
        f"Keras operation (module {entry.get('module')!r}: a keras.ops function called on tensors), not a layer. "
        "onnxtrain rebuilds a Keras config's layers; of Keras' operations it takes the masks Keras records for an "
        "Embedding(mask_zero=True) or a Masking layer (its layers derive those). Write the computation as layers "
        "(keras.layers.Add, Multiply, Concatenate, Reshape, Activation, ...) and write the config again."
    )


def _check_derived(entries: Mapping[str | None, Mapping[str, Any]], name: str) -> None:
    """Refuse mask operation `name`, read as a call's `mask=`, unless the chain of operations computing it starts
    where onnxtrain derives a mask, each `NotEqual` in it of the ids an Embedding(mask_zero=True) reads against 0,
    or of a Masking layer's input against its mask_value."""
    seen, pending, origins = set(), [name], []
    while pending:
        current = pending.pop()
        entry = entries.get(current)
        if current in seen or entry is None or not _is_operation(entry):
            continue
        seen.add(current)
        for call in entry.get("inbound_nodes") or ():
            args = list(call.get("args") or ()) if isinstance(call, Mapping) else []
            if entry.get("class_name") == "NotEqual" and len(args) == 2:
                origins.append((current, args))
            pending += [str(_producer(tensor)) for tensor in _keras_tensors(args)]
    refused = [op for op, args in origins if not _derives(entries, args)] or ([] if origins else [name])
    if refused:
        raise UnsupportedError(
            f"The Keras config computes a mask with operations ({', '.join(sorted(seen))}) that onnxtrain's layers "
            "do not derive: onnxtrain takes the masks of an Embedding(mask_zero=True) (its ids != 0) and of a "
            "Masking layer (any feature != mask_value), which it carries to the layers after them itself. Give the "
            "model such a layer instead of an explicit mask, and write the config again."
        )


def _derives(entries: Mapping[str | None, Mapping[str, Any]], args: list[Any]) -> bool:
    """Whether `NotEqual(tensor, constant)` is the mask a layer reading `tensor` derives."""
    tensor, constant = args
    if not isinstance(tensor, Mapping) or tensor.get("class_name") != KERAS_TENSOR or isinstance(constant, Mapping):
        return False
    ref = list((tensor.get("config") or {}).get("keras_history") or ())
    for entry in entries.values():
        config = entry.get("config") or {}
        reads = [list(_ref_of(t)) for call in entry.get("inbound_nodes") or () for t in _keras_tensors(call)]
        if ref not in reads:
            continue
        if entry.get("class_name") == "Embedding" and config.get("mask_zero") and constant == 0:
            return True
        if entry.get("class_name") == "Masking" and constant == config.get("mask_value", 0.0):
            return True
    return False


def _ref_of(tensor: Mapping[str, Any]) -> list[Any]:
    return list((tensor.get("config") or {}).get("keras_history") or ())


def _converted(entry: Any, masks: set[str]) -> Any:
    """A layer's entry with each of its Keras calls as onnxtrain writes it, and a nested Keras Sequential as the
    Functional of its layers."""
    if not isinstance(entry, Mapping):
        return entry
    calls = entry.get("inbound_nodes")
    if entry.get("class_name") == "Sequential" and isinstance(entry.get("config"), Mapping):
        tensors = list(_keras_tensors(calls))
        dtype = (tensors[0].get("config") or {}).get("dtype") if tensors else None
        entry = {**entry, "class_name": "Functional", "config": sequential_as_functional(entry["config"], dtype)}
        entry.pop("module", None)
    if not isinstance(calls, list) or not any(_has_keras_tensor(call) for call in calls):
        return entry
    name = _name(entry)
    converted = [_call(name, call, masks) for call in calls]
    settings = [setting for _, setting in converted]
    if any(settings):
        if any(setting != settings[0] for setting in settings):
            raise UnsupportedError(
                f"The Keras config calls layer {name!r} with different call arguments ({settings}): onnxtrain's "
                "layer shared in a model computes every call as its first, with these arguments as its settings. "
                "Use one layer per set of arguments."
            )
        entry = {**entry, "config": {**(entry.get("config") or {}), **settings[0]}}
    return {**entry, "inbound_nodes": [call for call, _ in converted]}


def _call(layer: str | None, call: Any, masks: set[str]) -> tuple[Any, dict[str, Any]]:
    """(One Keras call, `{"args": [...], "kwargs": {...}}`, as onnxtrain's: the refs it reads; the layer settings
    its call arguments give, {"use_causal_mask": True})."""
    if not isinstance(call, Mapping) or not _has_keras_tensor(call.get("args")):
        return call, {}
    kwargs = {key: value for key, value in (call.get("kwargs") or {}).items() if key != "training"}
    mask = kwargs.pop("mask", None)
    if mask is not None and not (isinstance(mask, Mapping) and _producer(mask) in masks):
        source = _producer(mask) if isinstance(mask, Mapping) else None
        raise UnsupportedError(
            f"The Keras config's call of layer {layer!r} passes a mask (of {source or repr(mask)}) "
            "that onnxtrain's layers do not derive: onnxtrain carries the masks of an Embedding(mask_zero=True) "
            "and of a Masking layer to the layers after them itself, and takes no mask as a call argument. Give "
            f"the model such a layer instead, and write the config again. Received: {dict(call)!r}"
        )
    tensors = sorted(str(key) for key, value in kwargs.items() if _has_keras_tensor(value))
    if tensors:
        raise UnsupportedError(
            f"The Keras config's call of layer {layer!r} reads tensors as keyword arguments ({', '.join(tensors)}), "
            "which onnxtrain's rebuilt calls do not take: they read their inputs in order (Keras' "
            "`layer(query, value)`, not `layer(query, value=value)`). Call the layer with its inputs positionally "
            f"in Keras and write the config again. Received: {dict(call)!r}"
        )
    kwargs = {
        key: value for key, value in kwargs.items() if key not in _DROPPED_DEFAULTS or value != _DROPPED_DEFAULTS[key]
    }
    settings = {key: kwargs.pop(key) for key in _LAYER_SETTINGS if key in kwargs}
    if kwargs:
        raise UnsupportedError(
            f"The Keras config's call of layer {layer!r} passes call arguments onnxtrain's rebuilt calls do not take "
            f"({', '.join(sorted(map(str, kwargs)))}): they take training (from the model), Keras' masks (derived "
            "by the layers) and an attention layer's use_causal_mask. Give these as the layer's settings in Keras, "
            f"and write the config again. Received: {dict(call)!r}"
        )
    return [_ref(layer, tensor, call) for tensor in _flat(call["args"])], settings


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
