"""An attention layer (MultiHeadAttention, Attention, AdditiveAttention) called on numpy arrays, as Keras' eager
call computes it: the call's masks (`attention_mask`, `use_causal_mask`) apply to that call only, and a built layer
takes them or not at each call, as queries and values of other lengths, since no weight depends on them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from onnxtrain.layers._attention_inputs import roles
from onnxtrain.layers._eager import EagerLayer, call_eagerly
from onnxtrain.layers._eager_shapes import check_weights_fit
from onnxtrain.layers._layer import Layer, Shape, format_shape
from onnxtrain.layers._layer_checks import take_call_input_count


def call_attention_eagerly(
    layer: Layer, tensors: Sequence[np.ndarray], use_causal_mask: bool, training: object, masks: str
) -> Any:
    """What `layer(arrays, ...)` returns, `tensors` being the call's recorded form ([x], [query, value], [query,
    value, key] or [query, value, key, attention_mask]): computed at once with `use_causal_mask` (`call_eagerly`).

    An unbuilt layer is built for these inputs, as any layer's first call builds it; the call's masks are not kept
    (Keras' `use_causal_mask` is a call argument: a later call without it attends to every key). A built layer
    computes with the form, the masks and the shapes of this call, as Keras' does: its query, value and key may have
    other lengths (self-attention on a built cross-attention layer, longer sequences) where its weights fit them,
    which take their feature sizes (`_eager_shapes.check_weights_fit`).

    Args:
        masks: the call arguments that may change from call to call, for the message ("attention_mask and
            use_causal_mask").

    Raises:
        ShapeError: a built layer's query, value or key of feature sizes its weights do not fit; an attention_mask
            that does not fit them. (And what `call_eagerly` raises.)
    """
    settings: dict[str, Any] = {"use_causal_mask": use_causal_mask}
    several = len(tensors) > 1
    shapes = [tuple(int(d) for d in array.shape[1:]) for array in tensors]
    checked = layer.built and all(array.ndim >= 2 for array in tensors)  # else `call_eagerly` refuses the arrays
    if not layer.built:
        take_call_input_count(layer, len(tensors))
    elif checked:
        built = layer.input_shapes if layer.multi_input else [layer.input_shape]
        if roles(list(built or ()))[:3] != roles(shapes)[:3]:
            _check_weights_fit(layer, shapes, several, masks)
        settings |= {"multi_input": several, "input_shapes": shapes if several else None, "input_shape": shapes[0]}
    saved = {name: getattr(layer, name) for name in [*settings, *(["output_shape"] if checked else [])]}
    layer.__dict__.update(settings)  # not assignments (`Layer.settings_assigned`): this call's, then restored
    try:
        if checked:  # the attention_mask's shape, checked; an attention layer takes the shapes of a list
            layer.__dict__["output_shape"] = layer.compute_output_shape(shapes if several else shapes[0])  # type: ignore[arg-type]
        listed = several or layer.multi_input  # (a built layer given arrays without a batch axis: refused whole)
        return call_eagerly(cast(EagerLayer, layer), list(tensors) if listed else tensors[0], training)
    finally:
        layer.__dict__.update(saved)


def _check_weights_fit(layer: Layer, shapes: list[tuple[int, ...]], several: bool, masks: str) -> None:
    """`check_weights_fit`, its message naming the query, value and key of the first call and of this one."""

    def shown(given: list[Shape]) -> str:
        query, value, key, _ = roles(given)
        return f"query {format_shape(query)}, value {format_shape(value)}, key {format_shape(key)}"

    check_weights_fit(layer, cast(list[Shape], shapes), several, shown, f"{masks} may change from call to call too")
