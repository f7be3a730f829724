"""A Functional's outputs in the structure it was given them (one tensor, a list, a tuple or a dict, Keras'
`_outputs_struct`): a dict's outputs in sorted key order, as Keras 3 flattens it (`sorted_outputs`); what a call of
the graph returns and its `output` is (`structured`), what a call on arrays and predict return (`returned`), the
tensors of such a value (`flattened`); and the structure
written in and read from a config (`config_structure`, `structure_from_config`, `written_positions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from onnxtrain.errors import InvalidArgumentError

OutputStructure = Literal["tensor", "list", "tuple", "dict"]
STRUCTURE_KEY = "output_structure"  # a config's key, where `output_layers` alone cannot tell the structure
ORDER_KEY = "output_order"  # a config's key: "sorted" where a dict of output_layers is not in its outputs' order
WRITTEN_POSITIONS = "_written_positions"  # a graph's attribute: where an older config's refs count each output
T = TypeVar("T")


def structure_of(outputs: object) -> OutputStructure:
    """The structure of `outputs` as `Functional(outputs=...)` takes them (checked there)."""
    if isinstance(outputs, Mapping):
        return "dict"
    if isinstance(outputs, tuple):
        return "tuple"
    return "list" if isinstance(outputs, list) else "tensor"


def sorted_outputs(outputs: Mapping[Any, T]) -> tuple[list[str], list[str], list[T]]:
    """A dict of outputs as (its keys as given, its keys sorted, its values in sorted key order): Keras 3 flattens a
    dict of outputs sorted by key, so a model's `outputs`, `output_names`, layers, weights and per-output lists
    follow that order whatever the dict's own.

    Raises:
        InvalidArgumentError: two keys that are one name as text (`1` and `"1"`).
    """
    given = [str(key) for key in outputs]
    if len(set(given)) != len(given):
        raise InvalidArgumentError(f"A dict of outputs expects keys of distinct names. Received keys: {list(outputs)}")
    by_key = dict(zip(given, outputs.values(), strict=True))
    keys = sorted(by_key)
    return given, keys, [by_key[key] for key in keys]


def structured(
    structure: OutputStructure, keys: Sequence[str] | None, items: Sequence[T], given_keys: Sequence[str] | None = None
) -> Any:
    """`items`, one per output in output order, in the graph's `structure`, as Keras' call of a nested model returns
    them: the one item, a list or a tuple of them, or a dict keyed by `keys` (the outputs' order: sorted), its
    entries in the order of `given_keys` (the dict's own, as Keras' call and `model.output` keep it)."""
    if structure == "dict":
        assert keys is not None, "a dict of outputs has keys"
        keyed = dict(zip(keys, items, strict=True))
        return {key: keyed[key] for key in given_keys or keys}
    if structure == "tuple":
        return tuple(items)
    if structure == "list":
        return list(items)
    (item,) = items
    return item


def returned(
    structure: OutputStructure,
    keys: Sequence[str] | None,
    results: Sequence[T],
    given_keys: Sequence[str] | None = None,
) -> Any:
    """What a call of the graph on arrays (and predict) returns from `results`, one per output in the outputs'
    order, as Keras 3's: for a dict of outputs a dict keyed by `keys` (sorted), its entries in the order of
    `given_keys` (a call's: the dict's own) or sorted where none are given (predict's), also for one key; else the
    one output's result (also of a list or tuple of one output, which Keras unpacks), or the results in the list
    or tuple the graph was given its outputs in. (`structured` keeps a list or tuple of one: `model.output`.)"""
    if structure == "dict":
        return structured(structure, keys, results, given_keys)
    if len(results) == 1:
        return results[0]
    return tuple(results) if structure == "tuple" else list(results)


def flattened(value: Any) -> list[Any]:
    """The tensors of a call's `value` (`structured`'s): a dict's values (in its own order: each tensor's
    `output_index` tells its output), a list or tuple as a list, one tensor as a list of it."""
    if isinstance(value, Mapping):
        return list(value.values())
    return list(value) if isinstance(value, list | tuple) else [value]


def config_structure(structure: OutputStructure, count: int, given_keys: Sequence[str] | None = None) -> dict[str, str]:
    """What a config records beside `output_layers` for a graph of `count` outputs in `structure`: nothing where its
    `output_layers` tell it (a dict of refs, one ref for one tensor, a list of several), else {STRUCTURE_KEY: ...}
    (a list of one tensor, a tuple). A config written before the key was reads as it did: `Model(x, [y])` then
    calls as one tensor. A dict written in its own order (`given_keys`, Keras' layout) that is not sorted adds
    {ORDER_KEY: "sorted"}: the refs of the graph's outputs in another graph's config (`["inner", 0, 1]`) count them
    sorted, where a config written before dict outputs were sorted counted them in the dict's order
    (`written_positions`)."""
    if structure == "tuple" or (structure == "list" and count == 1):
        return {STRUCTURE_KEY: structure}
    if given_keys is not None and list(given_keys) != sorted(given_keys):
        return {ORDER_KEY: "sorted"}
    return {}


def written_positions(config: Mapping[str, Any], keys: Sequence[str]) -> list[int] | None:
    """For a config of a dict of outputs written before they were sorted (its `output_layers` not sorted and no
    ORDER_KEY): the position at which its refs counted each output of the rebuilt graph (whose outputs are in
    sorted key order, `keys`); None for any other config, whose refs count the outputs as the graph orders them."""
    keyed = config.get("output_layers")
    if not isinstance(keyed, Mapping) or config.get(ORDER_KEY) == "sorted":
        return None
    written = [str(key) for key in keyed]
    return None if written == sorted(written) else [written.index(key) for key in keys]


def structure_from_config(config: Mapping[str, Any], count: int) -> OutputStructure:
    """The structure of the `count` outputs a `get_config` dict describes (`config_structure`).

    Raises:
        InvalidArgumentError: a `STRUCTURE_KEY` other than "list" or "tuple", or one beside a dict of outputs; an
            `ORDER_KEY` other than "sorted", or one beside a list of outputs.
    """
    order = config.get(ORDER_KEY)
    keyed = isinstance(config.get("output_layers"), Mapping)
    if order is not None and (order != "sorted" or not keyed):
        raise InvalidArgumentError(
            f"A Functional config's {ORDER_KEY!r} is 'sorted', beside a dict of output_layers, as get_config() writes "
            f"it. Received: {ORDER_KEY}={order!r} beside {'a dict' if keyed else 'a list'} of output_layers"
        )
    written = config.get(STRUCTURE_KEY)
    if written is None:
        return "dict" if keyed else "tensor" if count == 1 else "list"
    if written not in ("list", "tuple") or keyed:
        raise InvalidArgumentError(
            f"A Functional config's {STRUCTURE_KEY!r} is 'list' or 'tuple', beside a list of output_layers, as "
            f"get_config() writes it. Received: {STRUCTURE_KEY}={written!r} beside "
            f"{'a dict' if keyed else 'a list'} of output_layers"
        )
    return "list" if written == "list" else "tuple"
