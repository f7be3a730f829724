"""Whether `load_model` can rebuild each layer of a model from the config its save writes: the check `save` makes
before writing anything, so that a layer of one's own whose `get_config` leaves out an argument is refused at once
rather than saved for good and never loaded."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import every_layer
from onnxtrain.layers import Layer
from onnxtrain.layers._layer import describe


def check_rebuildable(layers: Iterable[Layer]) -> None:
    """Refuse, before `save` writes anything, a layer that `load_model` could not rebuild from the config it saves:
    load_model calls the layer's class with what its `get_config()` returned (`Layer.from_layer_config`), so the
    config must bind to the class's `__init__`: every argument without a default, and no other (unless it takes
    **kwargs). A layer of one's own whose `__init__` takes an argument its `get_config` leaves out would save and
    then never load. Layers that rebuild otherwise (a nested model) are checked through their own layers.

    Raises:
        InvalidArgumentError: naming the layer, the arguments its config lacks (or has too many) and the fix.
    """
    for layer in every_layer(list(layers)):
        cls = type(layer)
        own = getattr(cls.from_layer_config, "__func__", None)
        if own is not getattr(Layer.from_layer_config, "__func__", None):
            continue  # rebuilt its own way (a Functional from its layers' configs)
        config = layer.get_config()
        try:
            parameters = inspect.signature(cls).parameters
        except (TypeError, ValueError):  # no readable signature: nothing to check against
            continue
        try:
            inspect.signature(cls).bind(**config)
        except TypeError:
            pass
        else:
            continue
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        required = [
            name
            for name, p in parameters.items()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
        ]
        missing = [name for name in required if name not in config]
        unexpected = [] if takes_any else [key for key in config if key not in parameters]
        problems = []
        if missing:
            problems.append(f"{cls.__name__}.__init__ needs {missing}, which get_config() does not return")
        if unexpected:
            problems.append(f"get_config() returns {unexpected}, which {cls.__name__}.__init__ does not take")
        example = ", ".join(f"{name!r}: self.{name}" for name in missing) or "..."
        raise InvalidArgumentError(
            f"save: {describe(layer)} could not be loaded back: load_model rebuilds it as "
            f"{cls.__name__}(**layer.get_config()), and {'; '.join(problems) or 'its config does not fit __init__'} "
            f"(it returns {sorted(config)}). Override get_config() to return every argument __init__ needs: "
            f"def get_config(self): return {{**super().get_config(), {example}}}. Nothing was written."
        )
