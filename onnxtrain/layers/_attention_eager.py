"""An attention layer (MultiHeadAttention, Attention, AdditiveAttention) called on numpy arrays, as Keras' eager
call computes it: the call's masks (`attention_mask`, `use_causal_mask`) apply to that call only, and a built layer
takes them or not at each call, since no weight depends on them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from onnxtrain.errors import ShapeError
from onnxtrain.layers._attention_inputs import roles
from onnxtrain.layers._eager import EagerLayer, call_eagerly
from onnxtrain.layers._layer import Layer, describe, format_shape
from onnxtrain.layers._layer_checks import take_call_input_count


def call_attention_eagerly(
    layer: Layer, tensors: Sequence[np.ndarray], use_causal_mask: bool, training: object, masks: str
) -> Any:
    """What `layer(arrays, ...)` returns, `tensors` being the call's recorded form ([x], [query, value], [query,
    value, key] or [query, value, key, attention_mask]): computed at once with `use_causal_mask` (`call_eagerly`).

    An unbuilt layer is built for these inputs, as any layer's first call builds it; the call's masks are not kept
    (Keras' `use_causal_mask` is a call argument: a later call without it attends to every key). A built layer
    computes with the form and the masks of this call: only its query, value and key must have the shapes it was
    built for, whose feature sizes its weights take.

    Args:
        masks: the call arguments that may change from call to call, for the message ("attention_mask and
            use_causal_mask").

    Raises:
        ShapeError: a built layer's query, value or key of other shapes than it was built for; an attention_mask
            that does not fit them. (And what `call_eagerly` raises.)
    """
    settings: dict[str, Any] = {"use_causal_mask": use_causal_mask}
    several = len(tensors) > 1
    shapes = [tuple(int(d) for d in array.shape[1:]) for array in tensors]
    checked = layer.built and all(array.ndim >= 2 for array in tensors)  # else `call_eagerly` refuses the arrays
    if not layer.built:
        take_call_input_count(layer, len(tensors))
    elif checked:
        _check_built_roles(layer, shapes, masks)
        settings |= {"multi_input": several, "input_shapes": shapes if several else None, "input_shape": shapes[0]}
    saved = {name: getattr(layer, name) for name in settings}
    layer.__dict__.update(settings)  # not assignments (`Layer.settings_assigned`): this call's, then restored
    try:
        if checked:  # the attention_mask's shape, checked; an attention layer takes the shapes of a list
            layer.compute_output_shape(shapes if several else shapes[0])  # type: ignore[arg-type]
        listed = several or layer.multi_input  # (a built layer given arrays without a batch axis: refused whole)
        return call_eagerly(cast(EagerLayer, layer), list(tensors) if listed else tensors[0], training)
    finally:
        layer.__dict__.update(saved)


def _check_built_roles(layer: Layer, shapes: list[tuple[int, ...]], masks: str) -> None:
    built = layer.input_shapes if layer.multi_input else [layer.input_shape]
    assert built is not None and None not in built, "a built layer has its input shapes"
    expected, received = roles(built)[:3], roles(shapes)[:3]
    if expected == received:
        return
    parts = ("query", "value", "key")
    shown = ", ".join(f"{role} {format_shape(s)}" for role, s in zip(parts, expected, strict=True))  # type: ignore[arg-type]
    given = ", ".join(f"{role} {format_shape(s)}" for role, s in zip(parts, received, strict=True))
    raise ShapeError(
        f"{describe(layer)} was built for {shown} by its first call. Calling it again shares its weights, so the "
        f"query, value and key must have those shapes ({masks} may change from call to call). Received: {given}. "
        "Use a new layer for these inputs."
    )
