"""Checking a layer's constructor arguments when they are assigned after construction (`layer.trainable = False`,
`dropout.rate = 0.3`), so an attribute can never hold what the constructor would refuse.

`Layer.__setattr__` sends here every assignment, made after the layer's `__init__` returned, of an attribute named
like one of its constructor's arguments. `name` and `trainable` are checked as `Layer.__init__` checks them; any
other argument is checked by the constructor itself: a throwaway layer is made from the
config with the new value (`from_layer_config`, as `load_model` rebuilds the layer), and the attribute takes the
value that layer stored (`dense.activation = "tanh"` stores the Activation, as `Dense(activation="tanh")` does).
So what a model saves is always something `load_model` rebuilds.

A layer that has taken its shapes (it was called, or a model built it) keeps them: a value that would give it
other weight shapes or another output shape (`dense.units = 4` on a built Dense) is refused, since the model's
graph, its training engine and its saved weights were made for the old ones. A layer that belongs to a model keeps
its name, which keys its weights (`dense_1.kernel`) in the model's graph, engine and checkpoint.

A layer that a wrapper holds (Bidirectional's two directions, TimeDistributed's layer) refuses an assigned setting
where its wrapper says so (`wrapped_setting_refusal`): the wrapper made its config, shapes and graph from it.

A new public attribute named as KotlinDL or camelCase spells a setting the layer has (`layer.isTrainable = False`,
`layer.is_trainable`, `dense.outputSize`) is refused, naming the one to assign (`misspelled_setting`): it would be
set and change nothing. A custom layer's own new attributes (`self.scale = ...`) are taken as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from onnxtrain._registry import snake_case
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelStateError,
    OnnxtrainError,
    ShapeError,
    UnsupportedError,
)
from onnxtrain.layers._keras_arguments import constructor_arguments, kotlindl_names
from onnxtrain.layers._shapes import Shape, format_shape


class Layer(Protocol):
    """What the checks read of a `onnxtrain.layers.Layer` (which imports this module)."""

    name: str | None
    model_name: str | None
    multi_input: bool
    input_shape: Shape | None
    input_shapes: list[Shape] | None
    output_shape: Shape | None
    params: dict[str, np.ndarray]

    @property
    def built(self) -> bool: ...

    def get_config(self) -> dict[str, Any]: ...

    def from_layer_config(self, config: dict[str, Any]) -> Layer: ...

    def compute_output_shape(self, input_shape: Shape) -> Shape: ...

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None: ...


NAME = "name"
TRAINABLE = "trainable"
# KotlinDL's spellings of a layer's settings that are not the camelCase of one (`layer.isTrainable = false`)
_KOTLINDL_SPELLINGS = {"is_trainable": TRAINABLE}
WRAPPER = "_wrapper"  # in a wrapped layer's __dict__: the wrapper holding it (see `hold`)


class Wrapper(Protocol):
    def wrapped_setting_refusal(self, layer: Any, attribute: str, value: object) -> str | None:
        """Why `layer.<attribute> = value` is refused, `layer` being one this wrapper holds; None to accept it."""


def hold(wrapper: Wrapper, layer: Any) -> None:
    """Mark `layer` as held by `wrapper`, which decides about its settings assigned from now on."""
    layer.__dict__[WRAPPER] = wrapper


def check_name(layer_class: str, name: object) -> None:
    """A layer name: None (the model names the layer) or a non-empty string that can be part of a weight's name.

    Raises:
        InvalidArgumentError: anything else.
    """
    if name is not None and (not isinstance(name, str) or not name or any(c in name for c in " ./:")):
        raise InvalidArgumentError(
            f"{layer_class}(name=...) expects a non-empty string without spaces, dots, slashes or colons. "
            f"Received: name={name!r}"
        )


def check_trainable(layer_class: str, trainable: object) -> None:
    """Raises InvalidTypeError unless `trainable` is a bool."""
    if not isinstance(trainable, bool):
        raise InvalidTypeError(f"{layer_class}(trainable=...) expects a bool. Received: {trainable!r}")


def is_setting(layer_class: type, attribute: str) -> bool:
    """Whether `attribute` is one of a layer's settings: name, trainable or a constructor argument."""
    return attribute in (NAME, TRAINABLE) or attribute in constructor_arguments(layer_class)


def checked_assignment(layer: Layer, attribute: str, value: Any) -> Any:
    """The value to store for `layer.<attribute> = value`, made after construction; `value` itself for an
    attribute that is none of the constructor's arguments.

    Raises:
        The error the constructor raises for `value`, naming the layer and the attribute; ShapeError for a value
        that changes a built layer's weight or output shapes; ModelStateError for renaming a layer of a model;
        UnsupportedError for a setting of a layer its wrapper holds fixed.
    """
    kind = type(layer).__name__
    stored = value
    if attribute == TRAINABLE:
        _with_context(layer, attribute, lambda: check_trainable(kind, value))
    elif attribute == NAME:
        _with_context(layer, attribute, lambda: check_name(kind, value))
        _check_rename(layer, value)
    elif attribute in constructor_arguments(type(layer)):
        config = {**layer.get_config(), attribute: value}
        rebuilt = _with_context(layer, attribute, lambda: layer.from_layer_config(config))
        if layer.built:
            _check_same_shapes(layer, rebuilt, attribute, value)
        stored = getattr(rebuilt, attribute, value)
    else:
        spellings = {**_KOTLINDL_SPELLINGS, **kotlindl_names(type(layer))}
        setting = misspelled_setting(layer, attribute, spellings)
        if setting is not None:
            raise InvalidArgumentError(misspelled(_describe(layer), attribute, setting, value))
        return value
    _check_wrapper_accepts(layer, attribute, value)
    return stored


def misspelled_setting(owner: object, attribute: str, spellings: Mapping[str, str] | None = None) -> str | None:
    """The attribute of `owner` (a layer or a model) that `attribute`, assigned to it, spells otherwise: where
    `attribute` is public and new (neither set on `owner` nor defined by its class), and it, or its snake_case,
    is one of `spellings` (KotlinDL's `is_trainable` for `trainable`) or is an attribute `owner` has
    (`stopTraining` for `stop_training`). None for any other assignment, a new attribute of its own included."""
    if attribute.startswith("_") or attribute in vars(owner) or hasattr(type(owner), attribute):
        return None
    snake = snake_case(attribute)
    known = spellings or {}
    setting = known.get(attribute, known.get(snake, snake))
    if setting != attribute and (setting in vars(owner) or hasattr(type(owner), setting)):
        return setting
    return None


def misspelled(owner: str, attribute: str, setting: str, value: object) -> str:
    """The refusal of `owner.<attribute> = value`, `attribute` spelling `setting` (`misspelled_setting`)."""
    kind = "KotlinDL's name" if setting != snake_case(attribute) else "the camelCase spelling"
    return (
        f"{owner} has no attribute {attribute!r}, {kind} of {setting!r}: assigning it would set a new attribute "
        f"that changes nothing. Assign {setting} instead. Received: {attribute}={value!r:.80}"
    )


def _with_context(layer: Layer, attribute: str, check: Any) -> Any:
    """`check()`, its error (the constructor's) re-raised with the layer and the attribute assigned."""
    try:
        return check()
    except OnnxtrainError as e:
        if any("__init__" in vars(c) for c in type(e).__mro__ if issubclass(c, OnnxtrainError)):
            raise  # an error type with arguments of its own: re-raised as it is
        raise type(e)(f"Setting {attribute} of {_describe(layer)}: {e}") from e


def _check_wrapper_accepts(layer: Layer, attribute: str, value: object) -> None:
    wrapper = vars(layer).get(WRAPPER)
    refusal = None if wrapper is None else wrapper.wrapped_setting_refusal(layer, attribute, value)
    if refusal is not None:
        raise UnsupportedError(f"Setting {attribute} of {_describe(layer)} to {value!r:.80}: {refusal}")


def _check_rename(layer: Layer, name: object) -> None:
    model = layer.model_name
    if model is None or name == layer.name:
        return
    raise ModelStateError(
        f"{_describe(layer)} belongs to model {model!r}, whose graph, training engine and checkpoint key its weights "
        f"by its name ({layer.name}.<weight>), so it cannot be renamed. Name a layer when creating it "
        f"({type(layer).__name__}(..., name={name!r})), or before making a model of it. Received: name={name!r}"
    )


def _check_same_shapes(layer: Layer, rebuilt: Layer, attribute: str, value: Any) -> None:
    """Refuse a value that gives built `layer` (as `rebuilt`, made with it) other output or weight shapes."""
    shapes = layer.input_shapes if layer.multi_input else layer.input_shape
    problem = None
    try:
        output_shape = rebuilt.compute_output_shape(shapes)  # type: ignore[arg-type]
    except OnnxtrainError as e:
        problem = f"its inputs ({shapes}) no longer fit: {e}"
    else:
        if output_shape != layer.output_shape:
            problem = (
                f"its output shape would be {format_shape(output_shape)} instead of "
                f"{format_shape(layer.output_shape)}"  # type: ignore[arg-type]
            )
        elif layer.params:
            rebuilt.build(shapes, np.random.default_rng(0))  # type: ignore[arg-type]
            now = {local: array.shape for local, array in layer.params.items()}
            then = {local: array.shape for local, array in rebuilt.params.items()}
            if now != then:
                problem = f"its weights would have shapes {then} instead of {now}"
    if problem is not None:
        raise ShapeError(
            f"Setting {attribute} of {_describe(layer)} to {value!r}: the layer is built (its shapes are fixed by "
            f"its first call or its model, whose graph and weights were made for them), and {problem}. Create a new "
            f"layer instead, e.g. {type(layer).__name__}.from_layer_config({{**layer.get_config(), "
            f"{attribute!r}: {value!r}}}), and a new model."
        )


def _describe(layer: Layer) -> str:
    return f"{type(layer).__name__} layer" + (f" {layer.name!r}" if layer.name else "")
