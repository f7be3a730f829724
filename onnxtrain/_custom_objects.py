"""load_model's `custom_objects`: the layer, loss and metric classes (and functions) of one's own that it takes,
checked before anything is read (`checked_custom_objects`), and that resolve the names a save gives them while, and
only while, the model is rebuilt and compiled (`resolving`)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from onnxtrain import losses, metrics
from onnxtrain._metric_base import Metric
from onnxtrain.errors import InvalidTypeError, ModelFileError
from onnxtrain.layers import Layer
from onnxtrain.layers._lambda import _FUNCTIONS as LAMBDA_FUNCTIONS
from onnxtrain.losses import Loss


def checked_custom_objects(given: Any) -> dict[str, Any]:
    """load_model's `custom_objects`, checked: {name: a Layer, Loss or Metric subclass, or a metric function}.

    Raises:
        InvalidTypeError: not a dict of such, naming the entry.
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InvalidTypeError(
            'load_model(custom_objects=...) expects a dict {name: class}, e.g. {"Twice": Twice}. Received: '
            f"{type(given).__name__}"
        )
    for name, value in given.items():
        usable = isinstance(value, type) and issubclass(value, Layer | Loss | Metric)
        if not isinstance(name, str) or not (usable or inspect.isfunction(value)):
            raise InvalidTypeError(
                "load_model(custom_objects=...) expects names (str) of layer, loss or metric classes of one's own "
                f"(Layer, Loss or Metric subclasses) or functions (metrics, Lambda layers'). Received: {name!r}: "
                f"{value!r}"
            )
    return dict(given)


@contextlib.contextmanager
def resolving(own: dict[str, Any], config: dict[str, Any], config_path: Path) -> Iterator[None]:
    """While a model is rebuilt and compiled from `config`, the classes of one's own in `own` resolve the names the
    save gives them, and only then: a layer class under the name it was saved with ("__main__.Twice", found by
    that name or its last part, "Twice"), a loss by the name it saved or its class name, a metric by its key or
    name. A layer class of one's own that nothing resolves is refused here, saying how to pass it.

    Raises:
        ModelFileError: the save names a layer class of one's own that is neither defined nor given.
    """
    layers = {name: cls for name, cls in own.items() if isinstance(cls, type) and issubclass(cls, Layer)}
    added: dict[str, type[Layer]] = {}
    for saved in _saved_class_names(config.get("layers")):
        if saved in Layer.registry:
            continue
        short = saved.rpartition(".")[2]
        cls = layers.get(saved, layers.get(short))
        if cls is not None:
            added[saved] = cls
        elif "." in saved.strip("."):  # a layer of one's own: "module.ClassName"
            module = saved.rpartition(".")[0]
            define = f"Define {short}" if module == "__main__" else f"Import {module} (or define {short})"
            raise ModelFileError(
                f"{config_path} names the layer class {saved!r}, a layer of one's own ({short} of module {module!r}) "
                f"that this process has not defined: a save holds a layer's config, not its code. {define} before "
                f"loading, or pass the class: load_model({str(config_path.parent)!r}, "
                f"custom_objects={{{short!r}: {short}}})."
            )
    # (what @metrics.register records: the table it reads names from; entries added here are removed after the load)
    metric_objects = metrics._REGISTERED.objects
    own_metrics = {
        name: value
        for name, value in own.items()
        if inspect.isfunction(value) or (isinstance(value, type) and issubclass(value, Metric))
    }
    added_metrics = {name: value for name, value in own_metrics.items() if name not in metric_objects}
    added_metrics |= {value.__name__: value for value in own_metrics.values() if value.__name__ not in metric_objects}
    own_losses = {name: cls for name, cls in own.items() if isinstance(cls, type) and issubclass(cls, Loss)}
    # A function may also be a Lambda layer's (found by the name the save keeps: its __name__, or the key given).
    lambda_objects = LAMBDA_FUNCTIONS.objects
    functions = {name: value for name, value in own.items() if inspect.isfunction(value)}
    added_lambdas = {name: value for name, value in functions.items() if name not in lambda_objects}
    added_lambdas |= {value.__name__: value for value in functions.values() if value.__name__ not in lambda_objects}
    Layer.registry.update(added)
    metric_objects.update(added_metrics)
    lambda_objects.update(added_lambdas)
    try:
        with losses.resolving(own_losses):
            yield
    finally:
        for name in added:
            Layer.registry.pop(name, None)
        for name in added_metrics:
            metric_objects.pop(name, None)
        for name in added_lambdas:
            lambda_objects.pop(name, None)


def _saved_class_names(value: Any) -> Iterator[str]:
    """Every class name in a save's layer configs, nested models' and wrapped layers' included."""
    if isinstance(value, list):
        for each in value:
            yield from _saved_class_names(each)
    elif isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            yield value["class_name"]
        for each in value.values():
            yield from _saved_class_names(each)
