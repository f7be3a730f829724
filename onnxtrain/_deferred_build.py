"""Keras' deferred build of a Sequential without an Input (`Sequential([Dense(8), Dense(3)])`): the input shape
that `model.build(input_shape)` or the first data (fit, evaluate, predict, `model(x)`) gives, and the message of a
model asked for what needs it before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from onnxtrain.arrays import as_array
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Layer, Shape

_HOW = (
    "Build the model first by calling `build()` or by calling the model on a batch of data: "
    "model.build((None, 4)) for examples of shape (4,), or fit / evaluate / predict / model(x), which build it from "
    "the data's shape. Or give its first layer input_shape=(4,), or start it with Input(4)."
)


def not_built_message(action: str, has_layers: bool) -> str:
    """Keras' message for `action` on a Sequential that has no input shape yet (none at all where not `has_layers`)."""
    if not has_layers:
        return (
            f"This Sequential has no layers yet ({action} needs them): add its Input first, then the other layers: "
            "model.add(Input(28, 28, 1)); model.add(Dense(10)). Or Sequential([Input(...), ...]); or add the layers "
            "alone and build the model later (model.build((None, 28, 28, 1)), or from the first data)."
        )
    return f"This model has not yet been built ({action} needs its input shape). {_HOW}"


def build_shape(input_shape: object) -> Shape:
    """The per-example shape of Keras' `model.build(input_shape)`: the batch axis first (None, or a size, which
    onnxtrain's models leave free), then the example's positive dimensions.

    Raises:
        InvalidArgumentError: not a tuple or list of at least two entries, or a dimension that is not a positive int.
    """
    if not isinstance(input_shape, tuple | list) or len(input_shape) < 2:
        raise InvalidArgumentError(
            "build(input_shape) expects the shape of a batch, the batch axis first: e.g. model.build((None, 4)) for "
            f"examples of shape (4,), model.build((None, 28, 28, 1)) for images. Received: input_shape={input_shape!r}"
        )
    batch, *dims = input_shape
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch <= 0):
        raise InvalidArgumentError(
            f"build(input_shape) expects None (any batch size) or a positive int first. Received: "
            f"input_shape={input_shape!r}"
        )
    for i, dim in enumerate(dims, start=1):
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
            raise InvalidArgumentError(
                f"build(input_shape) expects a positive int for each dimension of an example (onnxtrain's models "
                f"have a fixed shape per example; pad sequences to one length). Received: input_shape[{i}]={dim!r} "
                f"in input_shape={input_shape!r}"
            )
    return tuple(int(dim) for dim in dims)


def input_dtype_for(first: Layer) -> str:
    """The dtype of the Input a deferred build makes before `first`: int64 token ids for a layer that reads
    integers (Embedding), else float32 (integer data, such as uint8 pixels, is fed converted and scaled)."""
    return "int64" if getattr(first, "reads_integers", False) else "float32"


def fit_inputs(dataset: Any, y: Any) -> Any:
    """The inputs of fit's or evaluate's data: x of (x, y) arguments, of an (x, y) tuple, or of a Dataset."""
    if y is not None:
        return dataset
    if isinstance(dataset, Dataset):
        return dataset.x
    if isinstance(dataset, tuple | list) and len(dataset) in (2, 3):
        return dataset[0]
    return dataset


def data_shape(x: Any, action: str) -> Shape:
    """The per-example shape of the batch `x` (an array, or Keras' [array] and {name: array} of one input): what
    the first `action` (fit, evaluate, predict, a call) builds a deferred model for.

    Raises:
        InvalidArgumentError: `x` holds no batch of examples of at least one dimension.
    """
    if isinstance(x, Dataset):
        x = x.x
    if isinstance(x, dict) and len(x) == 1:
        x = next(iter(x.values()))
    if isinstance(x, list | tuple) and len(x) == 1 and isinstance(x[0], np.ndarray):
        x = x[0]
    shape = getattr(x, "shape", None)
    if shape is None:
        try:  # (a list of numbers, or an array-like with only to_numpy(), as fit takes them)
            shape = np.shape(as_array(x, "x"))
        except (TypeError, ValueError):
            shape = None
    if not isinstance(shape, Sequence) or len(shape) < 2 or any(int(d) <= 0 for d in shape[1:]):
        received = f"shape {tuple(shape)}" if isinstance(shape, Sequence) else type(x).__name__
        raise InvalidArgumentError(
            f"{action}() builds this model (it has no input shape yet) from its data: a numpy array of a batch, "
            f"(batch, *the example's shape), with at least one dimension per example. Received: x of {received}. "
            "Build it first with model.build((None, *shape)), e.g. model.build((None, 4))."
        )
    return tuple(int(d) for d in shape[1:])


def check_compile_options(options: dict[str, Any]) -> None:
    """What `compile` on a model not built yet checks at once (the rest, which needs the model's outputs, is
    checked when the build opens the engine): the optimizer, loss, metrics and engine name.

    Raises:
        UnknownIdentifierError and the errors of the registries (`optimizers.get`, `losses.get`, ...).
    """
    from onnxtrain import engines, losses, optimizers
    from onnxtrain import metrics as metrics_module

    optimizers.get(options["optimizer"])
    losses.get(options["loss"])
    engines.get(options["engine"])
    for key in ("metric", "metrics", "weighted_metrics"):
        given = options.get(key)
        listed = [given] if isinstance(given, str) or not isinstance(given, Iterable) else list(given)
        for each in listed:
            if each is not None:
                metrics_module.named(each)
