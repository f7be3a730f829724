"""What MultiHeadAttention's calls take: the call forms (query, value, key, attention_mask) as the layer records
them, the one form a layer shared in a model takes, Keras' masks of those inputs as an attention mask, and the checks
of its shape arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar, cast

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._core import _positive_int
from onnxtrain.layers._layer import Layer, Mask, Shape, SymbolicTensor, describe, format_shape
from onnxtrain.layers._merge import _reshaped

INPUT_ROLES = ("query", "value", "key", "attention_mask")
T = TypeVar("T")


def steps_mask(builder: GraphBuilder, masks: list[Mask], t: int, s: int) -> str | None:
    """Keras' attention mask from the masks of a call's inputs (`roles`' order; the attention_mask input's own is
    not one): query position i may attend to key position j where the query's mask holds at i and the value's
    and the key's at j; bool [N, 1, t, s], or None where no input has a mask."""
    if not masks or all(m is None for m in masks):
        return None
    query, value, key, _ = roles(masks)
    parts = []
    for mask, shape in (
        (query, [0, 1, t, 1]),
        (value, [0, 1, 1, s]),
        (key, [0, 1, 1, s] if key != value else None),
    ):
        if mask is not None and shape is not None:  # [N, *axes] as [N, 1, t, 1] or [N, 1, 1, s]
            parts.append(_reshaped(builder, mask, shape))
    combined = parts[0]
    for part in parts[1:]:
        combined = builder.node("And", [combined, part], hint="input_masks")
    return combined


def roles(items: Sequence[T]) -> tuple[T, T, T, T | None]:
    """(query, value, key, mask or None) of a call's recorded list: [x], [query, value], [query, value, key] or
    [query, value, key, mask]."""
    query = items[0]
    value = items[1] if len(items) > 1 else query
    key = items[2] if len(items) > 2 else value
    return query, value, key, (items[3] if len(items) > 3 else None)


def call_inputs(
    layer: Layer,
    query: SymbolicTensor | Sequence[SymbolicTensor],
    value: SymbolicTensor | None,
    key: SymbolicTensor | None,
    mask: SymbolicTensor | None,
) -> list[SymbolicTensor]:
    """The call's tensors as the layer records them: [x], [query, value], [query, value, key] or [query, value,
    key, mask] (key = value when only a mask is given)."""
    if isinstance(query, list | tuple):
        if value is not None or key is not None or mask is not None:
            raise InvalidTypeError(
                f"{describe(layer)} takes a list [query, value, key, attention_mask] or the tensors one by one "
                "(query, value, key, attention_mask=...), not both."
            )
        tensors = list(query)
        if not 1 <= len(tensors) <= 4:
            raise InvalidArgumentError(
                f"{describe(layer)} takes 1 to 4 tensors ({', '.join(INPUT_ROLES)}). Received: a list of {len(tensors)}"
            )
        return tensors
    query = cast(SymbolicTensor, query)  # or anything else, which Layer's call refuses naming what it takes
    if value is None and key is not None:
        raise InvalidArgumentError(f"{describe(layer)} takes a key with a value: mha(query, value, key).")
    if value is None and mask is None:
        return [query]
    value = query if value is None else value
    tensors = [query, value] if key is None and mask is None else [query, value, value if key is None else key]
    return tensors if mask is None else [*tensors, mask]


def refuse_another_call_form(layer: Layer, shapes: Sequence[Shape]) -> None:
    """Refuse a symbolic call of a built layer (shared in a model) on query, value and key of the shapes it was built
    for but in another form, a key or an attention_mask more or less, or a mask of another shape, naming that
    difference: each call of a layer in a model computes as its first call does. Other shapes are left to the
    layer's shape check (`check_same_shapes`).

    Raises:
        ShapeError: naming the first call's form and this one's.
    """
    built = layer.input_shapes if layer.multi_input else [layer.input_shape]
    if built is None or None in built:
        return
    first = [tuple(s) for s in cast(list[Shape], built)]
    given = [tuple(s) for s in shapes]
    if first == given or roles(first)[:3] != roles(given)[:3]:
        return
    masks = [roles(first)[3], roles(given)[3]]
    if masks[0] != masks[1]:
        difference = (
            "an attention_mask more"
            if masks[0] is None
            else "no attention_mask"
            if masks[1] is None
            else "an attention_mask of another shape"
        )
    else:
        difference = "a key more" if len(given) > len(first) else "no key"
    raise ShapeError(
        f"{describe(layer)} was first called as {_call_form(first)}, and a layer shared in a model computes every "
        f"call as its first: the same inputs, whose shapes its graph was built for. Received: {_call_form(given)}, "
        f"{difference} (the query, value and key shapes are the same). Give every call the same inputs (an "
        "attention_mask of ones where a call masks nothing), or call it on numpy arrays, where each call takes "
        "its own masks."
    )


def _call_form(shapes: list[Shape]) -> str:
    names = ["x"] if len(shapes) == 1 else list(INPUT_ROLES[: min(len(shapes), 3)])
    if len(shapes) == 4:
        names.append(f"attention_mask={format_shape(shapes[3])}")
    return f"mha({', '.join(names)})"


def output_shape_argument(value: object) -> tuple[int, ...] | None:
    """Keras' `output_shape`: None (or empty, as Keras reads a falsy one), an int, or a tuple of ints."""
    if value is None or (isinstance(value, list | tuple) and not value):
        return None
    items = [value] if isinstance(value, int | np.integer) and not isinstance(value, bool) else value
    if not isinstance(items, list | tuple):
        raise InvalidArgumentError(
            f"MultiHeadAttention(output_shape=...) expects None, a positive int or a tuple of them. "
            f"Received: output_shape={value!r}"
        )
    return tuple(_positive_int("MultiHeadAttention", "output_shape", d) for d in items)


def attention_axes_argument(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, int | np.integer) and not isinstance(value, bool) else value
    integers = isinstance(items, list | tuple) and all(
        isinstance(a, int | np.integer) and not isinstance(a, bool) for a in items
    )
    if not integers:
        raise InvalidArgumentError(
            f"MultiHeadAttention(attention_axes=...) expects None, an int or a list of ints. "
            f"Received: attention_axes={value!r}"
        )
    return tuple(int(a) for a in cast(Sequence[int], items))
