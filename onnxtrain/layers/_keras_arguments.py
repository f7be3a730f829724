"""Keras' layer arguments that onnxtrain's layers have no parameter for, and KotlinDL's names for arguments they
have, checked in one place for every layer.

`data_format` (on the layers that set `keras_data_format`) is accepted where it says what onnxtrain does anyway,
"channels_last" or None, and refused for "channels_first"; the weight constraints (`kernel_constraint`, and
`<weight>_constraint` for each `<weight>_initializer` a layer takes) are accepted as None and refused otherwise, and
so is `activity_regularizer`, which every Keras layer takes (onnxtrain penalizes weights only:
`refuse_activity_regularizer`), and `quantization_config`, which Keras' Dense and Embedding take (onnxtrain does not
quantize). None reaches the layer's `__init__`, so none is in its config.

A layer class may also keep Keras arguments it has no parameter for (its `kept_keras_arguments`: the recurrent
layers' `zero_output_for_mask`): each one given is handed to its `keep_keras_argument(name, value)` once `__init__`
has run, and the layer checks it and keeps it (in its config too).

KotlinDL's name of an argument, snake-cased, where it differs from Keras' (a class's `kotlindl_names`: Dense's
`output_size` for `units`, the convolutions' `dilations` for `dilation_rate`) is taken as that argument; giving both
is refused. Any other keyword the layer does not take is refused naming the layer's public class and its arguments,
not a private base's `__init__` (with the snake_case spelling of a camelCase one it takes: `kernelSize` is
`kernel_size`).

Keras' input declarations (`input_shape`, `input_dim`, ...) are taken here too, and kept on the layer
(`_input_arguments.py`). `Layer.__init_subclass__` wraps each layer class's `__init__` with `taking_keras_arguments`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from onnxtrain._spelling import spelling_hint
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.layers._input_arguments import declare_input, take_input_arguments

DATA_FORMAT = "data_format"
CHANNELS_LAST = "channels_last"
CHANNELS_FIRST = "channels_first"
ACTIVITY_REGULARIZER = "activity_regularizer"
QUANTIZATION_CONFIG = "quantization_config"
# Keras 3's layers that take quantization_config (Dense, EinsumDense, Embedding), as onnxtrain names its own of them
_QUANTIZABLE = frozenset({"Dense", "Embedding"})
_CONSTRAINT = "_constraint"
_INITIALIZER = "_initializer"
_REGULARIZER = "_regularizer"


def taking_keras_arguments(init: Callable[..., None]) -> Callable[..., None]:
    """`init`, a layer class's `__init__`, checking and dropping the Keras arguments (`keras_arguments`) of the
    class it belongs to: the layer's own class when it inherits `init` (Flatten, which takes data_format, has
    Layer's), else the base whose `__init__` it is (a subclass' `super().__init__(**kwargs)` call passing a
    constraint on). The signature is `init`'s."""

    @functools.wraps(init)
    def init_taking_keras_arguments(self: Any, *args: Any, **kwargs: Any) -> None:
        declared, kept = None, {}
        if kwargs:
            owner = _owner(type(self), init_taking_keras_arguments)
            kept = {name: kwargs[name] for name in _kept_arguments(owner) if name in kwargs}
            kwargs, declared = take_input_arguments(owner.__name__, kwargs, _keyword_parameters(owner)[0])
            if declared is not None and not getattr(owner, "takes_input_declarations", True):  # an Input
                raise InvalidTypeError(
                    f"{owner.__name__} takes its shape as shape=... (Input(shape=(4,)) or Input(4)); input_shape, "
                    "input_dim and batch_input_shape declare the input of a Sequential's first other layer. "
                    f"Received: an input shape of {declared.shape}"
                )
            kwargs = without_keras_arguments(owner, kwargs, len(args))
        init(self, *args, **kwargs)
        for name, value in kept.items():
            self.keep_keras_argument(name, value)
        if declared is not None:
            declare_input(self, declared)

    return init_taking_keras_arguments


def _owner(layer_class: type, init: object) -> type:
    """The class whose constructor `init` is, for a layer of `layer_class` (see `taking_keras_arguments`)."""
    defining = [c for c in layer_class.__mro__ if "__init__" in c.__dict__]
    if defining[0].__dict__["__init__"] is init:  # the constructor of the layer being made
        return layer_class
    return next(c for c in defining if c.__dict__["__init__"] is init)


def constructor_arguments(layer_class: type) -> tuple[str, ...]:
    """The arguments `layer_class(...)` takes by keyword (its `__init__`'s), without Keras' (`keras_arguments`)."""
    return _keyword_parameters(layer_class)[0]


def keras_arguments(layer_class: type) -> frozenset[str]:
    """The Keras arguments `layer_class` takes without a parameter of its own (see the module docstring)."""
    return _keras_arguments(layer_class)


@functools.cache
def _keras_arguments(layer_class: type) -> frozenset[str]:
    takes, _ = _keyword_parameters(layer_class)
    names = {name.removesuffix(_INITIALIZER) + _CONSTRAINT for name in takes if name.endswith(_INITIALIZER)}
    if getattr(layer_class, "keras_data_format", False):
        names.add(DATA_FORMAT)
    if getattr(layer_class, "takes_input_declarations", True):  # every layer but an Input, as Keras' base Layer
        names.add(ACTIVITY_REGULARIZER)
    if any(c.__name__ in _QUANTIZABLE and c.__module__.startswith("onnxtrain.layers") for c in layer_class.__mro__):
        names.add(QUANTIZATION_CONFIG)
    names.update(_kept_arguments(layer_class))
    return frozenset(names - set(takes))


def _kept_arguments(layer_class: type) -> tuple[str, ...]:
    """The Keras arguments `layer_class` keeps without a parameter of its own (its `kept_keras_arguments`)."""
    kept = getattr(layer_class, "kept_keras_arguments", ())
    return tuple(kept) if callable(getattr(layer_class, "keep_keras_argument", None)) else ()


def kotlindl_names(layer_class: type) -> dict[str, str]:
    """{KotlinDL's name, snake-cased: the argument of `layer_class` it names} where the two differ (Dense's
    {"output_size": "units"}); from the class's `kotlindl_names`, its arguments only."""
    takes = _keyword_parameters(layer_class)[0]
    names: dict[str, str] = getattr(layer_class, "kotlindl_names", {})
    return {alias: own for alias, own in names.items() if own in takes and alias not in takes}


def without_keras_arguments(layer_class: type, kwargs: dict[str, Any], positional: int = 0) -> dict[str, Any]:
    """`kwargs` of `layer_class(...)` (after `positional` positional arguments) without its Keras arguments, once
    each is checked, and with KotlinDL's names of its arguments (`kotlindl_names`) replaced by its own.

    Raises:
        UnsupportedError: data_format="channels_first", or a constraint, an activity_regularizer or a
            quantization_config other than None.
        InvalidArgumentError: a data_format that is neither "channels_last", "channels_first" nor None; an argument
            given under both its names.
        InvalidTypeError: a keyword argument the layer takes neither as a parameter nor as a Keras argument.
    """
    owner = layer_class.__name__
    kwargs = _own_names(layer_class, kwargs, positional)
    keras = keras_arguments(layer_class)
    for name in sorted(keras & kwargs.keys()):
        if name == DATA_FORMAT:
            _check_data_format(owner, kwargs[name])
        elif name == ACTIVITY_REGULARIZER:
            refuse_activity_regularizer(layer_class, kwargs[name])
        elif name == QUANTIZATION_CONFIG:
            _check_quantization_config(owner, kwargs[name])
        elif name.endswith(_CONSTRAINT):
            _check_constraint(layer_class, name, kwargs[name])
    takes, any_keyword = _keyword_parameters(layer_class)
    unexpected = [name for name in kwargs if name not in takes and name not in keras]
    if unexpected and not any_keyword:
        known = (*takes, *kotlindl_names(layer_class))
        hint = spelling_hint(unexpected, known)
        aliases = [f"{alias} for {own}" for alias, own in kotlindl_names(layer_class).items()]
        also = f"; and KotlinDL's {', '.join(aliases)}" if aliases else ""
        raise InvalidTypeError(
            f"{owner}() got an unexpected keyword argument {', '.join(map(repr, unexpected))}.{hint} "
            f"{owner} takes: {', '.join(takes)}{also}"
        )
    return {name: value for name, value in kwargs.items() if name not in keras}


def _own_names(layer_class: type, kwargs: dict[str, Any], positional: int) -> dict[str, Any]:
    """`kwargs` with KotlinDL's names of `layer_class`'s arguments replaced by its own (see `kotlindl_names`)."""
    aliases = kotlindl_names(layer_class)
    if not aliases.keys() & kwargs.keys():
        return kwargs
    parameters = list(inspect.signature(layer_class).parameters)[:positional]  # the ones given positionally
    result = dict(kwargs)
    for alias, own in aliases.items():
        if alias not in kwargs:
            continue
        if own in kwargs or own in parameters:
            mine = f"{own}={kwargs[own]!r}" if own in kwargs else f"{own} (positional)"
            raise InvalidArgumentError(
                f"{layer_class.__name__} takes {own} or its KotlinDL name {alias}, not both. Received: {mine}, "
                f"{alias}={kwargs[alias]!r}"
            )
        result[own] = result.pop(alias)
    return result


def _check_data_format(owner: str, value: object) -> None:
    text = value.lower() if isinstance(value, str) else value
    if text is None or text == CHANNELS_LAST:
        return
    if text == CHANNELS_FIRST:
        raise UnsupportedError(
            f"{owner}(data_format='channels_first') is not supported: onnxtrain's shapes are always channels last, "
            "(batch, ..., channels), and the layers hand ONNX channels-first values themselves. Move the channels "
            "of your data last (np.moveaxis(x, 1, -1)) and leave data_format out. "
            f"Received: data_format={value!r}"
        )
    raise InvalidArgumentError(
        f"{owner}(data_format=...) expects 'channels_last' (onnxtrain's only layout) or None. "
        f"Received: data_format={value!r}"
    )


def refuse_activity_regularizer(layer_class: type, value: object) -> None:
    """Keras' `activity_regularizer` (a penalty on a layer's output, added to the loss), taken at None only:
    onnxtrain's regularizers penalize weights (`kernel_regularizer`, ...); the message names the layer's own.

    Raises:
        UnsupportedError: any value but None.
    """
    if value is None:
        return
    owner = layer_class.__name__
    own = [
        name
        for name in _keyword_parameters(layer_class)[0]
        if name.endswith(_REGULARIZER) and name != ACTIVITY_REGULARIZER
    ]
    penalties = f": {', '.join(own)}" if own else f"; {owner} takes no weight regularizer"
    raise UnsupportedError(
        f"{owner}(activity_regularizer=...) supports only activity_regularizer=None (weight penalties only"
        f"{penalties}). Received: activity_regularizer={value!r}"
    )


def _check_quantization_config(owner: str, value: object) -> None:
    if value is None:
        return
    raise UnsupportedError(
        f"{owner}(quantization_config=...) supports only quantization_config=None: onnxtrain trains and exports "
        "float32 weights and does not quantize. Leave it out, and quantize the exported model.onnx with ONNX "
        f"Runtime's tools (onnxruntime.quantization.quantize_dynamic) if you need to. Received: "
        f"quantization_config={value!r}"
    )


def _check_constraint(layer_class: type, name: str, value: object) -> None:
    if value is None:
        return
    owner = layer_class.__name__
    regularizer = name.removesuffix(_CONSTRAINT) + "_regularizer"
    instead = (
        f" To keep the weights small, penalize them instead: {regularizer}='l2' (onnxtrain.regularizers)."
        if regularizer in _keyword_parameters(layer_class)[0]
        else ""
    )
    raise UnsupportedError(
        f"{owner}({name}=...) is not supported: onnxtrain has no weight constraints. Leave {name} out (or "
        f"None).{instead} Received: {name}={value!r}"
    )


@functools.cache
def _keyword_parameters(layer_class: type) -> tuple[tuple[str, ...], bool]:
    """The names `layer_class.__init__` takes by keyword, and whether it takes any keyword (**kwargs)."""
    try:
        parameters = list(inspect.signature(layer_class).parameters.values())  # its __init__'s, without self
    except (TypeError, ValueError):
        return (), True
    takes = tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return takes, any(p.kind is p.VAR_KEYWORD for p in parameters)
