"""What the Layer base class checks of layers and of their calls, in words that name the layer: a layer class written
in Keras' form (`check_emits_onnx`), a config naming no registered class (`unknown_layer_class`), the shapes of a
call (`take_shapes`, `check_same_shapes`), the arguments of a call, and `describe`, how every message names a layer.

Nothing here imports the Layer class (which imports this module): a layer is what `CheckedLayer` reads of it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, OnnxtrainError, ShapeError, UnsupportedError
from onnxtrain.layers._shapes import Shape, format_shape


class CheckedLayer(Protocol):
    """What the checks read of a `onnxtrain.layers.Layer`."""

    name: str | None
    multi_input: bool
    input_shape: Shape | None
    input_shapes: list[Shape] | None
    output_shape: Shape | None

    def compute_output_shape(self, input_shape: Any) -> Shape: ...


CUSTOM_LAYER_DOCS = '"Write your own layer"'
NESTED_MODEL_DOCS = '"A block of layers: a nested Model"'


def check_emits_onnx(layer_class: type) -> None:
    """Refuse a layer class written as Keras writes one: a `call` method, which onnxtrain never runs, where its
    `emit` (what onnxtrain runs) is inherited from a class that knows nothing of that `call`.

    Raises:
        UnsupportedError: naming the class and the two ways onnxtrain takes such a layer.
    """
    mro = layer_class.__mro__
    calls = next((c for c in mro if "call" in c.__dict__), None)
    emits = next(c for c in mro if "emit" in c.__dict__)
    if calls is None or mro.index(calls) >= mro.index(emits):
        return
    raise UnsupportedError(
        f"{layer_class.__name__} defines call(), Keras' way of computing a layer, which onnxtrain never runs: an "
        f"onnxtrain layer emits its ONNX nodes in emit(builder, x) (and says its output shape in "
        f"compute_output_shape(input_shape); docs/layers.md, {CUSTOM_LAYER_DOCS}). To compose other layers (the "
        "sub-layers a Keras call() calls), make the block a nested Model instead: call the layers on an Input, make "
        "Model(inputs, outputs) of them and call that model as a layer (docs/layers.md, "
        f"{NESTED_MODEL_DOCS})."
    )


def unknown_layer_class(class_name: object, registry: Mapping[str, Any], base: Any) -> str:
    """The message for a config naming `class_name`, a class no layer is registered under in `registry`: the public
    layers (not the private bases, nor `base`'s subclasses that define no `compute_output_shape`, as BaseConv), and
    for a layer of one's own ("module.ClassName") the module to import first."""
    known = [
        key
        for key, cls in registry.items()
        if not cls.__name__.startswith("_") and cls.compute_output_shape is not base.compute_output_shape
    ]
    hint = ""
    if isinstance(class_name, str) and "." in class_name.strip("."):
        module, _, name = class_name.rpartition(".")
        hint = (
            f" It names a layer of one's own, {name} of module {module!r}, which is registered when its class is "
            f"defined: import {module} (or define {name}) before loading or rebuilding the model."
        )
    elif isinstance(class_name, str):
        close = difflib.get_close_matches(class_name, known, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"Could not interpret layer class {class_name!r}.{hint} Known layers: {', '.join(sorted(known))}"


def describe(layer: CheckedLayer) -> str:
    """`Dense layer 'dense_1'`, or `Dense layer` while the layer has no name yet (names are given by a model)."""
    return f"{type(layer).__name__} layer" + (f" {layer.name!r}" if layer.name else "")


def check_training_argument(layer: CheckedLayer, training: object) -> bool | None:
    """Keras' `training=` call argument on symbolic tensors: None (Keras' default) runs the call as the graph runs
    (training mode in fit, inference mode in evaluate, predict and the export); False runs it in inference mode in
    every graph, as Keras' transfer learning calls a base model (`base_model(inputs, training=False)`: its
    BatchNormalization uses and keeps its moving statistics, its Dropout is off; gradients still flow through it).

    Returns:
        `training` as None or False.

    Raises:
        InvalidTypeError: not a bool or None.
        UnsupportedError: True (training behaviour in evaluation and the export too: Keras' Monte-Carlo dropout),
            which onnxtrain's evaluation and exported graphs cannot draw (they have no step counter).
    """
    if training is None or (isinstance(training, bool | np.bool_) and not training):
        return None if training is None else False
    if not isinstance(training, bool | np.bool_):
        raise InvalidTypeError(f"{describe(layer)}: training expects True, False or None. Received: {training!r}")
    raise UnsupportedError(
        f"{describe(layer)}: the call argument training=True is not supported on symbolic tensors: it would run the "
        "call in training mode in evaluate, predict and the export too (Keras' Monte-Carlo dropout), and onnxtrain's "
        "evaluation and exported graphs draw no random numbers (they have no step counter). Leave training out: "
        "every layer runs in training mode in fit already. training=False (inference mode in every graph, Keras' "
        "transfer learning) and None are taken; a call on numpy arrays takes training=True (layer(images, "
        "training=True) computes the training graph at once). Received: training=True"
    )


def positional_inputs(layer: CheckedLayer, inputs: object, more: tuple[object, ...]) -> object:
    """What `layer(inputs, *more)` is called on: `inputs`, or for a multi-input layer given several arguments
    (`Add()(a, b)`), the list of them.

    Raises:
        InvalidTypeError: several arguments to a layer that takes one tensor.
    """
    if not more:
        return inputs
    if not layer.multi_input:
        kind = type(layer).__name__
        raise InvalidTypeError(
            f"{describe(layer)} takes one tensor, {kind}(...)(x). Received: {1 + len(more)} positional arguments. "
            "To combine several tensors, merge them first, e.g. Concatenate()([a, b]) or Add()([a, b])."
        )
    return [inputs, *more]


def take_shapes(layer: CheckedLayer, shapes: list[Shape]) -> None:
    """Fix `layer`'s shapes for inputs of `shapes` (its first call), or raise its shape error naming it."""
    try:
        layer.output_shape = layer.compute_output_shape(shapes if layer.multi_input else shapes[0])
    except OnnxtrainError as e:
        name_unnamed(layer, e)
        raise
    if layer.multi_input:
        layer.input_shapes = shapes
    else:
        layer.input_shape = shapes[0]


def name_unnamed(layer: CheckedLayer, error: Exception) -> None:
    """Word `error`'s "Dense layer None" as `describe` does ("Dense layer"): a layer is called before a model
    names it, and the shape messages of layers name `layer.name`."""
    if layer.name is None and error.args and isinstance(error.args[0], str):
        unnamed = f"{type(layer).__name__} layer None"
        error.args = (error.args[0].replace(unnamed, describe(layer)), *error.args[1:])


def check_same_shapes(layer: CheckedLayer, shapes: list[Shape]) -> None:
    """A called layer has weights for the shapes of its first call: a later call (a shared layer) takes those."""
    expected = layer.input_shapes if layer.multi_input else [layer.input_shape]
    if expected == shapes:
        return
    if expected is None or None in expected:
        raise ShapeError(f"{describe(layer)} has no input shape to check a call against; it was not built by a call.")
    shown = ", ".join(format_shape(s) for s in expected)  # type: ignore[arg-type]
    received = ", ".join(format_shape(s) for s in shapes)
    raise ShapeError(
        f"{describe(layer)} was built for inputs of shape {shown} by its first call. Calling it again shares its "
        f"weights, so the inputs must have that shape. Received: {received}. Use a new layer for these inputs."
    )


def received(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} ({text[:60]}{'...' if len(text) > 60 else ''})"


def take_call_input_count(layer: Any, count: int) -> bool:
    """Whether a call of `layer` on `count` tensors takes several (a list [query, value, ...]) rather than one, set
    as its `multi_input`; a layer already called or built (by an eager call too) takes what it took first.

    Raises:
        InvalidArgumentError: another count than the first call's or build's.
    """
    several = count > 1
    if (layer.symbolic_calls or layer.built) and several != layer.multi_input:
        first = len(layer.input_shapes or ()) if layer.multi_input else 1
        raise InvalidArgumentError(
            f"{describe(layer)} was first called on {first} tensor(s); a shared layer takes the same inputs at "
            f"every call. Received: {count}"
        )
    layer.multi_input = several
    return several
