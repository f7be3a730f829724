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
import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from onnxtrain import _own_losses
from onnxtrain._classification_losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Hinge,
    SoftmaxCrossEntropyWithLogits,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
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
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, OnnxtrainError, UnknownIdentifierError

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
    "check_loadable",
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
    # Keras' name: the same computation as KotlinDL's softmax cross-entropy, under the name the user gave it (in
    # messages, logs and saves), and with Keras' arguments (from_logits, ignore_class)
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_ALIASES = {
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


_normalize = _own_losses.normalized
_REGISTRY = Registry("loss", Loss, _CLASSES, _ALIASES, normalize=_normalize)
# Keras' loss config keys that onnxtrain's losses do not take, and the one value each may have here (Keras' default)
_KERAS_ONLY = {"reduction": "sum_over_batch_size", "axis": -1, "dtype": None}
_own_losses.BUILT_IN.update({*_CLASSES, *_ALIASES, *(_normalize(cls.__name__) for cls in _CLASSES.values())})
# load_model's custom_objects, by each name that finds them, while the load runs (`resolving`)
_GIVEN: dict[str, type[Loss]] = {}


def get(identifier: str | Losses | Loss | Mapping[str, Any]) -> Loss:
    """Map a `Losses` member, a name ("mse", or Keras' class name "MeanSquaredError"), a config dict (onnxtrain's
    {"name": ..., **arguments}, or Keras' {"class_name": "SparseCategoricalCrossentropy", "config": {...}}) or a
    Loss instance to a Loss.

    A name onnxtrain's losses do not take finds a loss class of one's own (`Loss` subclass): one given to
    `load_model(custom_objects=...)` during that load, or one defined (or imported) in this process, by the name a
    save gives it (`Loss.get_config`: its class's `name`, or "module.ClassName").

    Raises:
        UnknownIdentifierError: the name is not a known loss, nor that of a loss class of one's own defined in this
            process (saying how to give one), or names several of these.
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
    try:
        return _REGISTRY.get(identifier, also_accepted=", a Losses member")
    except UnknownIdentifierError as e:
        name = identifier.get("name") if isinstance(identifier, Mapping) else identifier
        if not isinstance(name, str):
            raise
        arguments = (
            {key: value for key, value in identifier.items() if key != "name"}
            if isinstance(identifier, Mapping)
            else {}
        )
        return _own_loss(name, arguments, e)


def _own_loss(name: str, arguments: dict[str, Any], unknown: UnknownIdentifierError) -> Loss:
    """The loss of one's own a name onnxtrain's losses do not take finds (`get`), made with `arguments`.

    Raises:
        UnknownIdentifierError: it finds none (`unknown`, saying how to give one) or several.
        InvalidArgumentError: the class does not take `arguments`.
    """
    found = [_GIVEN[key] for key in (_normalize(name), _normalize(name.rpartition(".")[2])) if key in _GIVEN][:1]
    found = found or _own_losses.defined_classes(name)
    if not found:
        raise UnknownIdentifierError(_not_defined(name, unknown)) from None
    if len(found) > 1:
        keys = sorted(_own_losses.class_key(cls) for cls in found)
        raise UnknownIdentifierError(
            f"Could not interpret loss {name!r}: it names several loss classes of one's own defined in this process, "
            f"{keys}. Give each class a name of its own, or pass the one you mean (compile(loss=...), or "
            f"load_model(dir, custom_objects={{{found[0].__name__!r}: {found[0].__name__}}}))."
        )
    cls = found[0]
    try:
        return cls(**arguments)
    except TypeError as e:
        raise InvalidArgumentError(
            f"Could not interpret loss {name!r}: it finds {_own_losses.class_key(cls)}, which its arguments "
            f"{sorted(arguments)} do not make ({e}). A loss class of one's own takes what its get_config() returns."
        ) from e


def _not_defined(name: str, unknown: UnknownIdentifierError) -> str:
    """The message for a loss name that nothing finds: how to give a loss of one's own."""
    stripped = name.strip()
    if not stripped:  # an earlier onnxtrain saved a loss of one's own without a name
        return (
            f"Could not interpret loss {name!r}: an earlier onnxtrain saved a loss of one's own under no name, so no "
            "class can be found for it. Pass the loss to the load: load_model(dir, loss=MyLoss()); a save now names "
            "it."
        )
    if "." in stripped.strip("."):  # a loss class of one's own, saved by its key
        module, _, short = stripped.rpartition(".")
        define = f"Define {short}" if module == "__main__" else f"Import {module}"
        others = sorted(_own_losses.class_key(cls) for cls in _own_losses.DEFINED.values() if cls.__name__ == short)
        elsewhere = (
            f" The class of that name this process has, {', '.join(others)}, is another class, which may compute "
            "something else: it is not taken in its place."
            if others
            else ""
        )
        return (
            f"Could not interpret loss {name!r}: it names a loss class of one's own, {short} of module {module!r}, "
            f"which this process has not defined: a save holds a loss's name, not its code.{elsewhere} {define} "
            f"before loading, or pass the class: load_model(dir, custom_objects={{{short!r}: {short}}})."
        )
    return (
        f"{unknown} A loss of one's own (a Loss subclass) is found by its name once its class is defined or imported; "
        "or pass it to the load: load_model(dir, custom_objects={'MyLoss': MyLoss}), or load_model(dir, "
        "loss=MyLoss())."
    )


@contextlib.contextmanager
def resolving(own: Mapping[str, type[Loss]]) -> Iterator[None]:
    """While the block runs, `get` also reads the names of `own`, losses of one's own (load_model's
    `custom_objects`), before the classes defined in the process: each by its key, its class name, its module and
    class name, and the name its instances save (`Loss.name`), as a saved config names it ({"name":
    "absolute_error"}). Names onnxtrain's losses take stay theirs; nothing stays after.
    """
    added: dict[str, type[Loss]] = {}
    for key, cls in own.items():
        for name in (key, cls.__name__, _own_losses.class_key(cls), _own_losses.class_name(cls)):
            normalized = _normalize(name) if isinstance(name, str) and name else ""
            if normalized and normalized not in _own_losses.BUILT_IN and normalized not in _GIVEN:
                added.setdefault(normalized, cls)
    _GIVEN.update(added)
    try:
        yield
    finally:
        for name in added:
            _GIVEN.pop(name, None)


def check_loadable(loss: Loss) -> None:
    """Refuse, before `save` writes anything, a loss of one's own that `load_model` could not rebuild from the
    config the save holds: `get(loss.get_config())` must make a loss of the same class with the same settings (a
    model of several outputs: each output's loss). onnxtrain's own losses always are.

    Raises:
        InvalidArgumentError: naming the loss class, why the load would fail and the fix.
    """
    for spec in getattr(loss, "outputs", ()):  # a model of several outputs' `OutputLosses`: one loss per output
        check_loadable(spec.loss)
    cls = type(loss)
    if not _own_losses.is_own(cls):
        return
    what = f"save: the loss {cls.__name__} ({_own_losses.class_key(cls)}) could not be loaded back"
    try:
        config = json.loads(json.dumps(loss.get_config()))
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"{what}: its get_config() must return JSON values (numbers, strings, lists, dicts), which a save "
            f"writes ({e}; a numpy number becomes one with float(value) or value.item()). Nothing was written."
        ) from e
    try:
        rebuilt = get(config)
    except OnnxtrainError as e:
        raise InvalidArgumentError(f"{what}: load_model would fail on its config {config!r}: {e} {_FIX}") from e
    if type(rebuilt) is not cls:
        raise InvalidArgumentError(
            f"{what}: its config {config!r} names {_own_losses.class_key(type(rebuilt))} instead. Give the class a "
            "name of its own (name: str = field(default='my_loss', init=False)). Nothing was written."
        )
    differences = _differences(rebuilt, loss)
    if differences:
        missing = sorted(name for name in differences if name not in config)
        unsaved = f" ({', '.join(missing)}: not in get_config())" if missing else ""
        raise InvalidArgumentError(
            f"{what}: load_model rebuilds it from its get_config(), {config!r}, with "
            f"{_settings(differences, 0)} where the loss has {_settings(differences, 1)}{unsaved}. {_FIX}"
        )


_FIX = (
    "Override get_config() to return every argument __init__ needs: def get_config(self): return "
    "{**super().get_config(), 'scale': self.scale}. Nothing was written."
)

_ABSENT = "<absent>"


def _differences(rebuilt: Loss, loss: Loss) -> dict[str, tuple[Any, Any]]:
    """The attributes (dataclass fields included) in which a loss rebuilt from its config differs from the loss:
    name -> (rebuilt value, loss's value). Values are compared as a save writes them (a JSON round trip: a tuple
    and the list it loads as are the same, so are a numpy number and the Python number it is); values that do not
    compare to a bool (arrays) are taken as the same, as nothing can be told of them."""
    theirs, ours = vars(rebuilt), vars(loss)
    differences = {}
    for name in sorted(set(theirs) | set(ours)):
        old, new = theirs.get(name, _ABSENT), ours.get(name, _ABSENT)
        if not _same_value(old, new):
            differences[name] = (old, new)
    return differences


def _same_value(a: Any, b: Any) -> bool:
    """Whether two settings are the same as a save writes them (`_differences`)."""
    try:
        return bool(_as_saved(a) == _as_saved(b))
    except (TypeError, ValueError):  # not JSON, and does not compare to a bool: nothing to tell
        return True


def _as_saved(value: Any) -> Any:
    """`value` after a JSON round trip (numpy numbers as Python numbers), or itself where JSON cannot hold it."""
    try:
        return json.loads(json.dumps(value, default=_json_number))
    except (TypeError, ValueError):
        return value


def _json_number(value: Any) -> Any:
    """A numpy number as the Python number it holds, for json.dumps; anything else is refused."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _settings(differences: dict[str, tuple[Any, Any]], side: int) -> str:
    """ "scale=1.0, offset=0" from one side of `_differences`."""
    return ", ".join(
        f"{name}={values[side] if values[side] is _ABSENT else repr(values[side])}"
        for name, values in differences.items()
    )


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
