"""Loss functions: the ONNX nodes each emits, and the labels each expects (checked before ONNX Runtime sees them).
The names (`Losses`, the registry's aliases) and `get` are here; the classes live in `_classification_losses` and
`_regression_losses`, on the base of `_loss_base`.

Every loss is a mean over the batch, emitted through the GraphBuilder from operators that ONNX Runtime can
differentiate, so the same definition serves training, evaluation and any engine.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any

from onnxtrain._classification_losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Hinge,
    SoftmaxCrossEntropyWithLogits,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from onnxtrain._layer_names import to_snake_case
from onnxtrain._loss_base import Loss, Shape
from onnxtrain._registry import Registry
from onnxtrain._regression_losses import (
    CosineSimilarity,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
)
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "Losses",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "Shape",
    "SoftmaxCrossEntropyWithLogits",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "get",
]


class Losses(enum.Enum):
    """KotlinDL's loss names."""

    SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS = "softmax_cross_entropy_with_logits"
    MSE = "mse"
    MAE = "mae"
    BINARY_CROSSENTROPY = "binary_crossentropy"
    HUBER = "huber"
    CATEGORICAL_CROSSENTROPY = "categorical_crossentropy"
    KL_DIVERGENCE = "kl_divergence"
    POISSON = "poisson"
    LOG_COSH = "log_cosh"
    MAPE = "mean_absolute_percentage_error"
    MSLE = "mean_squared_logarithmic_error"
    HINGE = "hinge"
    SQUARED_HINGE = "squared_hinge"
    COSINE_SIMILARITY = "cosine_similarity"


_CLASSES: dict[str, type[Loss]] = {
    Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS.value: SoftmaxCrossEntropyWithLogits,
    Losses.MSE.value: MeanSquaredError,
    Losses.MAE.value: MeanAbsoluteError,
    Losses.BINARY_CROSSENTROPY.value: BinaryCrossentropy,
    Losses.HUBER.value: Huber,
    Losses.CATEGORICAL_CROSSENTROPY.value: CategoricalCrossentropy,
    Losses.KL_DIVERGENCE.value: KLDivergence,
    Losses.POISSON.value: Poisson,
    Losses.LOG_COSH.value: LogCosh,
    Losses.MAPE.value: MeanAbsolutePercentageError,
    Losses.MSLE.value: MeanSquaredLogarithmicError,
    Losses.HINGE.value: Hinge,
    Losses.SQUARED_HINGE.value: SquaredHinge,
    Losses.COSINE_SIMILARITY.value: CosineSimilarity,
}
_ALIASES = {
    "sparse_categorical_crossentropy": "softmax_cross_entropy_with_logits",
    "soft_max_cross_entropy_with_logits": "softmax_cross_entropy_with_logits",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "kld": "kl_divergence",
    "huber_loss": "huber",  # Keras' name of a Huber() in its config
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
}


def _normalize(name: str) -> str:
    """A loss name as the registry keys it: Keras' class names snake-cased ("SparseCategoricalCrossentropy",
    "KLDivergence"), each part between - or _, lower case."""
    return "_".join(to_snake_case(part) for part in re.split(r"[-_]", name.strip())).lower()


_REGISTRY = Registry("loss", Loss, _CLASSES, _ALIASES, normalize=_normalize)
# "sparse_categorical_crossentropy" alone is KotlinDL's softmax cross-entropy (an alias, the loss it has always
# compiled); with arguments (from_logits, ignore_class: a SparseCategoricalCrossentropy's config) it is Keras' class.
_WITH_ARGUMENTS: dict[str, type[Loss]] = {"sparse_categorical_crossentropy": SparseCategoricalCrossentropy}
_ARGUMENT_REGISTRY = Registry("loss", Loss, {cls.__name__: cls for cls in _WITH_ARGUMENTS.values()}, normalize=str)
# Keras' loss config keys that onnxtrain's losses do not take, and the one value each may have here (Keras' default)
_KERAS_ONLY = {"reduction": "sum_over_batch_size", "axis": -1, "dtype": None}


def get(identifier: str | Losses | Loss | Mapping[str, Any]) -> Loss:
    """Map a `Losses` member, a name ("mse", or Keras' class name "MeanSquaredError"), a config dict (onnxtrain's
    {"name": ..., **arguments}, or Keras' {"class_name": "SparseCategoricalCrossentropy", "config": {...}}) or a
    Loss instance to a Loss.

    Raises:
        UnknownIdentifierError: the name is not a known loss.
        InvalidArgumentError: a config with keys the loss does not take, or a Keras setting onnxtrain does not
            compute (a `reduction` other than "sum_over_batch_size").
        InvalidTypeError: a Python function (Keras' `loss=fn`), which cannot be one (`refuse_loss_function`).
    """
    if inspect.isroutine(identifier) or isinstance(identifier, functools.partial):
        refuse_loss_function(identifier)
    if isinstance(identifier, Losses):
        identifier = identifier.value
    if isinstance(identifier, Mapping) and "class_name" in identifier:
        identifier = _from_keras_config(identifier)
    if isinstance(identifier, Mapping) and len(identifier) > 1 and isinstance(identifier.get("name"), str):
        # A name that alone stands for a loss without arguments, and with them for Keras' class that takes them
        cls = _WITH_ARGUMENTS.get(_normalize(identifier["name"]))
        if cls is not None:
            identifier = {**identifier, "name": cls.__name__}
            return _ARGUMENT_REGISTRY.get(identifier)
    return _REGISTRY.get(identifier, also_accepted=", a Losses member")


@contextlib.contextmanager
def resolving(own: Mapping[str, type[Loss]]) -> Iterator[None]:
    """While the block runs, `get` also reads the names of `own`, losses of one's own (load_model's
    `custom_objects`): each by its key, its class name and the name its instances save (`Loss.name`), as a saved
    config names it ({"name": "absolute_error"}). Names onnxtrain's losses take stay theirs; nothing stays after.
    """
    added: dict[str, type[Loss]] = {}
    for key, cls in own.items():
        saved_name = getattr(cls, "name", "")  # a dataclass field's default, on the class
        for name in (key, cls.__name__, saved_name):
            normalized = _normalize(name) if isinstance(name, str) and name else ""
            taken = normalized in _REGISTRY.classes or normalized in _REGISTRY.aliases
            if normalized and not taken:
                added.setdefault(normalized, cls)
    _REGISTRY.classes.update(added)
    try:
        yield
    finally:
        for name in added:
            _REGISTRY.classes.pop(name, None)


def _from_keras_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keras' serialized loss ({"class_name", "config"}, as `keras.losses.serialize` and a Keras model's compile
    config write it) as onnxtrain's config {"name": ..., **arguments}: Keras' own name of the instance is dropped
    ("mean_squared_error"), and so are `reduction`, `axis` and `dtype` at Keras' defaults."""
    arguments = config.get("config", {})
    if not isinstance(config["class_name"], str) or not isinstance(arguments, Mapping):
        raise InvalidArgumentError(
            "A Keras loss config expects {'class_name': 'SparseCategoricalCrossentropy', 'config': {...}}. "
            f"Received: {dict(config)!r}"
        )
    converted: dict[str, Any] = {"name": config["class_name"]}
    for key, value in arguments.items():
        if key == "name":
            continue
        if key in _KERAS_ONLY:
            if value not in (_KERAS_ONLY[key], "float32"):
                raise InvalidArgumentError(
                    f"Loss config {dict(config)!r}: {key}={value!r} is not supported; onnxtrain's losses average over "
                    "the batch (Keras' reduction 'sum_over_batch_size') over the last axis, in float32."
                )
            continue
        converted[key] = value
    return converted


def refuse_loss_function(fn: Any) -> None:
    """Refuse a Python function as a loss (Keras' `loss=fn(y_true, y_pred)`), saying why and what to do instead.

    Raises:
        InvalidTypeError: always.
    """
    name = getattr(fn, "__name__", type(fn).__name__)
    raise InvalidTypeError(
        f"loss expects a loss name, a Losses member or a Loss instance. Received: the function {name!r}. onnxtrain's "
        "losses are ONNX graphs that ONNX Runtime differentiates and runs in the training step, so a Python (numpy) "
        "function cannot be one. Pick a built-in loss "
        f"({sorted(_CLASSES)}, or Keras' class names such as 'MeanSquaredError'), or write your own as a subclass of "
        "onnxtrain.losses.Loss whose elements(builder, output, labels) emits the per-example values as ONNX nodes "
        "(builder.node(op_type, inputs)), as the built-in losses in onnxtrain/_regression_losses.py do. To watch a "
        "numpy function during training, pass it as a metric: compile(metrics=[fn])."
    )
