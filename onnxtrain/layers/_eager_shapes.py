"""A built layer called on numpy arrays of other shapes than its first call's (Keras' eager call, `_eager.py`). Keras
computes such a call wherever the layer's weights fit the inputs (a Dense, Conv1D, LSTM or MultiHeadAttention on
sequences of another length: their weights depend on the feature sizes only), and so does onnxtrain: the layer takes
the call's shapes while its one-off graph is built (`shapes_of_call`), then its first call's again, which its
symbolic calls (a model's graph) keep to.

Whether the weights fit is told by a copy of the layer made from its config and built for the call's shapes: its
weights' shapes must be the layer's (`check_weights_fit`). A LayerNormalization over the steps and the features, or
a Dense given another feature size, is refused, naming the weight, as Keras refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import numpy as np

from onnxtrain.errors import OnnxtrainError, ShapeError
from onnxtrain.layers._layer_checks import CheckedLayer, check_same_shapes, describe, name_unnamed, take_shapes
from onnxtrain.layers._shapes import Shape, format_shape

_SHAPES = ("multi_input", "input_shape", "input_shapes", "output_shape")  # what `take_shapes` sets


def differs(layer: CheckedLayer, shapes: list[Shape]) -> bool:
    """Whether a call on inputs of `shapes` has other shapes than `layer`'s first call."""
    expected = layer.input_shapes if layer.multi_input else [layer.input_shape]
    return expected != shapes


def check_weights_fit(
    layer: Any,
    shapes: list[Shape],
    multi_input: bool | None = None,
    shown: Callable[[list[Shape]], str] | None = None,
    note: str = "",
) -> None:
    """Refuse a call of built `layer` on inputs of `shapes` that its weights do not fit (see the module docstring).

    Args:
        multi_input: whether the call takes a list of inputs (an attention layer's call decides it); else the
            layer's.
        shown: how the message shows a call's shapes (an attention layer's: "query [None, 4, 6], ..."); else
            "inputs of shape [None, 4, 6], ...".
        note: what else a call may change, for the message ("attention_mask may change from call to call too").

    Raises:
        ShapeError: `layer` is a model's graph (its Inputs fix its shapes: `check_same_shapes`); the shapes do not
            suit the layer (its `compute_output_shape` says why); its weights do not fit them; or its config does
            not rebuild it, so nothing tells.
    """
    if _is_graph(layer):
        check_same_shapes(layer, shapes)
    if not layer.params:  # no weight to fit: the call's shapes are checked as it takes them
        return
    refusal = _Refusal(layer, shapes, shown or _inputs_of_shape, note)
    try:
        copy = type(layer).from_layer_config(layer.get_config())
    except Exception as e:  # a layer of one's own whose config does not rebuild it
        refusal.raise_(
            f"whether they fit is told by a copy made from its config, which failed: {type(e).__name__}: {e}",
            "Give the layer a get_config() that its constructor takes, or use a new layer for these inputs",
            cause=e,
        )
    copy.__dict__["multi_input"] = layer.multi_input if multi_input is None else multi_input
    take_shapes(copy, shapes)  # the layer's own message where it cannot take these shapes
    copy.build(shapes if copy.multi_input else shapes[0], np.random.default_rng(0))
    own = {name: list(np.shape(value)) for name, value in layer.params.items()}
    needed = {name: list(np.shape(value)) for name, value in copy.params.items()}
    if own == needed:
        return
    name = next((n for n in own if own[n] != needed.get(n)), None) or next(n for n in needed if n not in own)
    has = f"{name} of shape {own[name]}" if name in own else f"no weight {name}"
    need = f"{name} of shape {needed[name]}" if name in needed else f"no weight {name}"
    refusal.raise_(
        f"its weights do not fit these: it has {has}, where they need {need}",
        "Pad or crop the inputs to the shapes it was built for to compute with these weights (Keras refuses this "
        "call too), or use a new layer for these inputs",
    )


@contextmanager
def shapes_of_call(layer: Any, shapes: list[Shape], multi_input: bool | None = None) -> Iterator[None]:
    """`layer` (and the layers it wraps: a TimeDistributed's, whose shapes it sets) with the shapes of a call on
    inputs of `shapes` while the block runs, then its own again.

    Raises:
        ShapeError: the layer cannot take these shapes (`take_shapes`).
    """
    saved = [(held, {key: held.__dict__[key] for key in _SHAPES if key in held.__dict__}) for held in _held(layer)]
    try:
        several = layer.multi_input if multi_input is None else multi_input
        try:  # into `__dict__`: not assignments, which a compiled model would take for a changed layer
            output = layer.compute_output_shape(shapes if several else shapes[0])
        except OnnxtrainError as e:
            name_unnamed(layer, e)
            raise
        layer.__dict__.update(multi_input=several, output_shape=output)
        layer.__dict__.update({"input_shapes": shapes} if several else {"input_shape": shapes[0]})
        yield
    finally:
        for held, values in saved:
            for key in _SHAPES:
                if key in values:
                    held.__dict__[key] = values[key]
                else:
                    held.__dict__.pop(key, None)


def _held(layer: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """`layer` and the layers held in its attributes (a wrapper's), each once."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    for value in list(vars(layer).values()):
        if hasattr(type(value), "compute_output_shape") and isinstance(getattr(value, "__dict__", None), dict):
            yield from _held(value, seen)


def _is_graph(layer: Any) -> bool:
    """Whether `layer` is a `Functional` (a model's graph, whose module imports the layers), as
    `_functional_calls.is_graph` tells."""
    return callable(getattr(layer, "emit_with_masks", None))


def _inputs_of_shape(shapes: list[Shape]) -> str:
    return "inputs of shape " + ", ".join(format_shape(s) for s in shapes)


class _Refusal:
    """The ShapeError refusing a call of `layer` on inputs of `shapes`, naming its first call's and why."""

    def __init__(self, layer: Any, shapes: list[Shape], shown: Callable[[list[Shape]], str], note: str):
        expected = layer.input_shapes if layer.multi_input else [layer.input_shape]
        self.start = (
            f"{describe(layer)} was built for {shown(expected)} by its first call; called on arrays of other shapes, "
            f"it computes with its weights where they fit them, as Keras does{f' ({note})' if note else ''}"
        )
        self.received = shown(shapes)

    def raise_(self, why: str, fix: str, cause: Exception | None = None) -> NoReturn:
        raise ShapeError(f"{self.start}, and {why}. Received: {self.received}. {fix}.") from cause
