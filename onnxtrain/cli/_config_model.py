"""The Sequential model and the compile settings that a checked run config (`_run_config.check_config`)
describes: each [[layers]] entry made the layer class its `type` names, its arguments checked against what that
class takes."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from onnxtrain.cli._config_keys import setting
from onnxtrain.errors import InvalidArgumentError, OnnxtrainError, UnknownIdentifierError

if TYPE_CHECKING:
    from onnxtrain.layers import Layer
    from onnxtrain.sequential import Sequential


def build_model(config: dict[str, Any]) -> Sequential:
    """The Sequential model of a checked config's `layers`, `name` and `seed`: each entry is the layer class its
    `type` names (any layer of `onnxtrain.layers`, aliases such as MaxPool2D included) built with the entry's
    other keys as keyword arguments; a wrapper's `layer` is an entry of its own (`layer = { type = "LSTM", ... }`).

    Raises:
        UnknownIdentifierError: a `type` that names no layer.
        InvalidArgumentError: an argument the layer does not take, lacks or refuses.
    """
    from onnxtrain.sequential import Sequential

    layers = []
    for i, entry in enumerate(config["layers"]):
        layer_class = _layer_class(i, entry["type"])
        settings = {k: v for k, v in entry.items() if k != "type"}
        _nested_layers(i, settings)
        _check_arguments(i, entry["type"], layer_class, settings)
        try:
            layers.append(layer_class.from_layer_config(settings))
        except TypeError as e:  # a keyword the signature check cannot see (a layer taking **kwargs)
            raise InvalidArgumentError(f"layers[{i}] ({entry['type']}): {e}") from e
        except OnnxtrainError as e:  # the layer's own refusal ("Dense(units=...) expects..."): which entry
            raise _naming_the_layer(e, i, entry["type"]) from e
    return Sequential(layers, name=setting(config, "name"), seed=setting(config, "seed"))


WRAPPED = ("layer", "backward_layer")  # the arguments of Bidirectional and TimeDistributed that take a layer


def _nested_layers(index: int, settings: dict[str, Any]) -> None:
    """A wrapper's layer written as its own entry (`layer = { type = "LSTM", units = 8 }`) becomes the config the
    wrapper reads (`{"class_name": "LSTM", "config": {...}}`), its class and arguments checked as a top entry's."""
    for key in WRAPPED:
        value = settings.get(key)
        if isinstance(value, dict) and "type" in value and "class_name" not in value:
            inner = {k: v for k, v in value.items() if k != "type"}
            layer_class = _layer_class(index, value["type"])
            _check_arguments(index, value["type"], layer_class, inner)
            settings[key] = {"class_name": layer_class.registry_key(), "config": inner}


def _naming_the_layer(error: OnnxtrainError, index: int, name: str) -> OnnxtrainError:
    """`error`, raised while building the config's `layers[index]`, as an error of its type that names the entry."""
    message = f"layers[{index}] ({name}): {error}"
    try:
        return type(error)(message)
    except TypeError:  # an error type whose constructor takes more than the message
        return InvalidArgumentError(message)


def _public_layers() -> dict[str, type[Layer]]:
    """The layer classes a config may name, by name: the public ones of onnxtrain.layers (aliases too) and the
    Layer subclasses a user defined."""
    import onnxtrain.layers as module
    from onnxtrain.layers import Layer

    found = {
        name: cls
        for name in module.__all__
        if isinstance(cls := getattr(module, name), type) and issubclass(cls, Layer)
        if cls.registry_key() in Layer.registry  # not the Layer and ActivationLayer bases
    }
    # A user's own layers, registered by subclassing Layer; the package's private bases (BaseConv, _Pooling) stay out.
    custom = {k: v for k, v in Layer.registry.items() if not v.__module__.startswith("onnxtrain.")}
    return {**custom, **found}


def _layer_class(index: int, name: str) -> type[Layer]:
    known = _public_layers()
    if name not in known:
        raise UnknownIdentifierError(
            f"layers[{index}]: Could not interpret layer class {name!r}. Known layers: {', '.join(sorted(known))}"
        )
    return known[name]


def _check_arguments(index: int, name: str, layer_class: type[Layer], settings: dict[str, Any]) -> None:
    """Unknown or missing keyword arguments, named with what the layer takes (not a private base's TypeError).
    Keras' arguments the layer has no parameter for (`data_format = "channels_last"`, a constraint) reach the layer,
    which accepts or refuses them itself."""
    from onnxtrain.layers import Layer
    from onnxtrain.layers._keras_arguments import keras_arguments

    if layer_class.from_layer_config.__func__ is not Layer.from_layer_config.__func__:  # type: ignore[attr-defined]
        return  # a layer that reads its config itself
    parameters = list(inspect.signature(layer_class.__init__).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    takes = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unexpected = [key for key in settings if key not in takes and key not in keras_arguments(layer_class)]
    if unexpected:
        raise InvalidArgumentError(
            f"layers[{index}] ({name}): unexpected keyword argument {', '.join(map(repr, unexpected))}. "
            f"{name} takes: {', '.join(takes)}"
        )
    missing = [p.name for p in parameters if p.name in takes and p.default is p.empty and p.name not in settings]
    if missing:
        raise InvalidArgumentError(
            f"layers[{index}] ({name}) needs {', '.join(missing)}, e.g. " + " ".join(f"{key} = ..." for key in missing)
        )


def refuse_training_nothing(model: Any, source: str, from_config: bool = True) -> None:
    """Refuse a model with no trainable parameter, which `source` describes (a run config; `from_config` False: a
    saved model it names): training it would change nothing, its loss the same every epoch. The Python API's fit
    warns "the model has no trainable parameters" (Keras trains such a model without a word); a run of the
    command line is refused before it starts.

    Raises:
        InvalidArgumentError: no layer has weights, or every weight is frozen.
    """
    from onnxtrain.layers import Input

    trainable, frozen = model.param_counts()
    if trainable:
        return
    layers = ", ".join(type(layer).__name__ for layer in model.layers if not isinstance(layer, Input))
    if frozen:
        why = f"every weight of its layers ({layers}) is frozen ({frozen:,} parameters, trainable = false)"
        fix = "Set trainable = true on a layer with weights, or add one, e.g. "
    else:
        why = f"none of its layers ({layers}) has weights"
        fix = "Add one, e.g. "
    if not from_config:
        raise InvalidArgumentError(
            f"'{source}' holds a model with no trainable parameters: {why}, so there is nothing to train. It "
            "expects a model with at least one layer with trainable weights."
        )
    raise InvalidArgumentError(
        f"{source} describes a model with no trainable parameters: {why}, so training would change nothing (its "
        "loss would stay the same every epoch). It expects at least one layer with trainable weights. "
        f'{fix}[[layers]] type = "Dense" units = 10'
    )


def compile_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `Sequential.compile` a config gives: optimizer, loss, metric or metrics, and engine."""
    metric = (
        {"metrics": config["metrics"]} if "metrics" in config else {"metric": setting(config, "metric")}
    )  # not both
    return {
        "optimizer": setting(config, "optimizer"),
        "loss": setting(config, "loss"),
        **metric,
        "engine": setting(config, "engine"),
    }
