"""Metrics, computed on the host from each batch's outputs and accumulated over an epoch: the `Metrics` names,
the metric objects compile takes (Keras' Precision, Recall, AUC, F1Score, FBetaScore, the accuracies, the top-k
accuracies with their k, the errors MeanAbsoluteError, MeanSquaredError and RootMeanSquaredError, the regression
metrics such as R2Score), `named`, which turns what compile was given (a name, a metric object, a config, a function
fn(y_true, y_pred), a loss object) into compiled metrics (`Metric`), and `register`, which lets a saved model name a
metric of one's own. The metrics themselves live in `_named_metrics`, `_accuracy_metrics`, `_confusion_metrics`,
`_f_score_metrics`, `_regression_metrics` and `_loss_metrics`.

Every metric keeps sums (a float, or a vector: a threshold's true and false positives), so per-batch work is a small
numpy reduction on a (batch, units) array and the epoch's value comes from the summed vector (`Metric.finish`).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard, TypeVar

from onnxtrain._accuracy_metrics import Accuracy
from onnxtrain._confusion_metrics import AUC, Precision, Recall
from onnxtrain._f_score_metrics import F1Score, FBetaScore
from onnxtrain._loss_base import Loss
from onnxtrain._loss_metrics import LOSS_NAMES, LossMetric
from onnxtrain._metric_base import DEFINED, Metric, WeightedMetric
from onnxtrain._named_metrics import (
    _ALIASES,
    BinaryAccuracy,
    CategoricalAccuracy,
    MeanAbsoluteError,
    MeanSquaredError,
    Metrics,
    NamedMetric,
    RootMeanSquaredError,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    _key,
    member_named,
)
from onnxtrain._registry import Registered
from onnxtrain._regression_metrics import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsolutePercentageError,
    MeanMetricWrapper,
    MeanSquaredLogarithmicError,
    R2Score,
)
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "LogCoshError",
    "LossMetric",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Metrics",
    "NamedMetric",
    "Precision",
    "R2Score",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "WeightedMetric",
    "check_loss",
    "get",
    "named",
    "register",
]


def get(identifier: str | Metrics | Any) -> Metrics:
    """Map a Metrics member or a name ("accuracy", "acc", "mae", "binary_accuracy", "BinaryAccuracy", ...) to a
    Metrics member.

    Raises:
        UnknownIdentifierError: not a metric name, with the valid names.
    """
    if isinstance(identifier, Metrics):
        return identifier
    if isinstance(identifier, NamedMetric):
        return identifier.metric
    if isinstance(identifier, str):
        member = member_named(identifier)
        if member is not None:
            return member
    raise UnknownIdentifierError(
        f"Could not interpret metric {identifier!r}. Valid names: {[m.value for m in Metrics]}, and the aliases "
        f"{sorted(_ALIASES)}."
    )


# Metric classes built by name: Keras' string names and class names (snake-cased as `get` reads names)
_CLASSES: dict[str, type[Metric]] = {
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
    "f1_score": F1Score,
    "fbeta_score": FBetaScore,
    "f_beta_score": FBetaScore,
    "r2_score": R2Score,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "log_cosh_error": LogCoshError,
    "logcosh": LogCoshError,
    "log_cosh": LogCoshError,
    "cosine_similarity": CosineSimilarity,
}
_CONFIG_CLASSES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        Precision,
        Recall,
        AUC,
        F1Score,
        FBetaScore,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        SparseCategoricalAccuracy,
        CategoricalAccuracy,
        BinaryAccuracy,
        Accuracy,
        R2Score,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        LogCoshError,
        CosineSimilarity,
        MeanMetricWrapper,
        MeanAbsoluteError,
        MeanSquaredError,
        RootMeanSquaredError,
        LossMetric,
    )
}

MetricT = TypeVar("MetricT")
_REGISTERED = Registered(
    "metric",
    "onnxtrain.metrics.register",
    lambda obj: (isinstance(obj, type) and issubclass(obj, Metric)) or inspect.isfunction(obj),
    "a Metric subclass or a function fn(y_true, y_pred)",
    lambda: {*_CONFIG_CLASSES, *_CLASSES, *(m.value for m in Metrics), *_ALIASES, *LOSS_NAMES},
)


def register(obj: MetricT) -> MetricT:
    """Decorator, Keras' `register_keras_serializable` for metrics: a saved model that names this metric function or
    `Metric` subclass (by its `__name__`) loads with it. A function needs it (or `load_model(d, metrics=[fn])`); a
    class is found without it once it is defined or imported, as a layer class is (registering it gives it the
    name before a class of the same name defined later). Define (and register) it before `load_model`, which
    rebuilds a class from its `get_config()`: Keras' {"class_name": "R2", "config": {...}} (through
    `from_config(config)` where the class has one, else `R2(**config)`), or a name, which rebuilds the class whose
    name it is (snake-cased, "r2" for R2) with its defaults; and a function from its name. Registering a name again
    replaces it (a notebook cell run twice).

    Example:
        >>> @onnxtrain.metrics.register
        ... class R2(Metric): ...

    Raises:
        InvalidTypeError: neither a Metric subclass nor a named function (a lambda has no name to save).
        InvalidArgumentError: the name of a built-in metric.
    """
    return _REGISTERED.register(obj)


def _own_objects() -> dict[str, Any]:
    """The metric classes and functions of one's own a save may name, by name: the Metric subclasses defined in this
    process (`DEFINED`, recorded as each class is defined), and those registered (`register`, load_model's
    `custom_objects`), which come first. None takes a built-in metric's name."""
    built_in = _REGISTERED.built_in()
    return {
        **{name: cls for name, cls in DEFINED.items() if name not in built_in and _key(name) not in built_in},
        **_REGISTERED.objects,
    }


def _registered_named(name: str) -> Metric | None:
    """The metric a class of one's own (defined or registered) or a registered function of that name makes (the
    class's name, or its snake case, as `get_config` gave it), or None."""
    key = _key(name)
    own = _own_objects()
    for own_name in sorted(own):
        obj: Any = own[own_name]
        if own_name == name.strip() or _key(own_name) == key:
            return obj() if isinstance(obj, type) else MeanMetricWrapper(obj)
    return None


def _is_metric_function(identifier: Any) -> TypeGuard[Callable[..., Any]]:
    """Whether `identifier` is a function fn(y_true, y_pred) to wrap as a mean (`MeanMetricWrapper`)."""
    return inspect.isroutine(identifier) or isinstance(identifier, functools.partial)


def named(identifier: str | Metrics | Metric | Mapping[str, Any] | Any) -> Metric:
    """The compiled metric `identifier` gives, keyed as Keras 3 keys it: a metric object as it is (`Precision()` logs
    "precision", `AUC(name="pr_auc")` "pr_auc"), a metric class made with its defaults; a name, Keras' ("precision",
    "recall", "auc", "f1_score", "fbeta_score", "r2_score", "mape", "msle", "logcosh", "cosine_similarity", their class
    names, the names `get` reads, Keras' metric names of losses such as "binary_crossentropy" and "hinge", and those
    `register`ed), keyed by the name as given; a `Metrics` member, keyed by its value; a function fn(y_true, y_pred)
    returning a value per example (Keras' metric functions), as a `MeanMetricWrapper` keyed by the function's name; a
    loss object or class (`losses.Huber()`), as a `LossMetric` keyed by Keras' name of the loss ("huber_loss"), the mean
    of the batches' means, as Keras takes one; or a saved config {"class_name": ..., "config": {...}}.

    Raises:
        UnknownIdentifierError: not a metric name, with the valid names.
        InvalidArgumentError: a config that builds no metric.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):  # a class, as Keras takes it
        return identifier()
    if isinstance(identifier, Loss) or (isinstance(identifier, type) and issubclass(identifier, Loss)):
        # Keras wraps the object, whose value is a batch's mean: the metric is the mean of the batches' means
        return LossMetric(identifier if isinstance(identifier, Loss) else identifier(), per_batch=True)
    if _is_metric_function(identifier):
        return MeanMetricWrapper(identifier)
    if isinstance(identifier, Mapping):
        return _from_config(identifier)
    if isinstance(identifier, str):
        cls = _CLASSES.get(_key(identifier))
        if cls is not None:
            return cls(name=identifier.strip())  # type: ignore[call-arg]
        if _key(identifier) in LOSS_NAMES:  # keras.metrics.get("hinge") is the loss function
            return LossMetric(_key(identifier), name=identifier.strip())
        if member_named(identifier) is None:
            own = _registered_named(identifier)
            if own is not None:
                return own
    try:
        metric = get(identifier)
    except UnknownIdentifierError as e:
        registered = f" Registered: {_REGISTERED.names}." if _REGISTERED.names else ""
        raise UnknownIdentifierError(
            f"{e} Metric classes: {sorted(_CONFIG_CLASSES)} (by name: {sorted(_CLASSES)}); losses by Keras' metric "
            f"names: {list(LOSS_NAMES)}, or as objects (losses.Huber()).{registered} A metric of one's own: a Metric "
            "instance, or a function fn(y_true, y_pred) returning a value per example."
        ) from None
    return NamedMetric(metric, identifier.strip() if isinstance(identifier, str) else metric.value)


def check_loss(metric: Metric, loss: Loss) -> None:
    """Refuse, at compile, a compiled metric (a weighted one too) that cannot read the labels `loss` takes
    (`Metrics.check_loss`): it would fail at fit's first step otherwise. Keras' metric objects (Precision, AUC, ...)
    read either kind.

    Keras' `Accuracy` (exact equality of values) under a classification loss earns a warning: it is about 0 there.

    Raises:
        InvalidArgumentError: naming the metric, the loss and the metrics that fit the loss.
    """
    inner = metric.metric if isinstance(metric, WeightedMetric) else metric
    if isinstance(inner, LossMetric):
        inner.check_loss(loss)
    if isinstance(inner, NamedMetric):
        try:
            inner.metric.check_loss(loss)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"compile: {e}") from None
    if isinstance(inner, Accuracy) and (loss.classification or loss.binary or loss.trains_on_logits):
        instead = "SparseCategoricalAccuracy()" if loss.classification else "BinaryAccuracy() or CategoricalAccuracy()"
        warnings.warn(
            f"Metric {inner.name!r} is Keras' Accuracy, which counts outputs exactly equal to their targets; a "
            f"classifier's probabilities under loss {loss.name!r} rarely are, so it stays near 0 (as in Keras). For "
            f"the share of right classes use 'accuracy' (which follows the loss) or {instead}.",
            UserWarning,
            stacklevel=5,  # the caller of compile: compile -> _compile -> compile_settings -> here
        )


def _from_config(config: Mapping[str, Any]) -> Metric:
    """The metric of Keras' config {"class_name": ..., "config": {...}}: of onnxtrain's classes, or of a class of
    one's own, defined or registered (through its `from_config` where it has one); a MeanMetricWrapper's "fn" names a
    registered function.

    Raises:
        UnknownIdentifierError: a class or function neither onnxtrain's nor of one's own (defined or registered).
        InvalidArgumentError: not such a config, or one that does not build its class.
    """
    class_name = str(config.get("class_name"))
    arguments = config.get("config", {})
    if not isinstance(arguments, Mapping):
        raise InvalidArgumentError(
            f"A metric config expects {{'class_name': one of {sorted(_CONFIG_CLASSES)}, 'config': {{...}}}}. "
            f"Received: {dict(config)!r}"
        )
    cls = _CONFIG_CLASSES.get(class_name)
    own = _own_objects().get(class_name) if cls is None else None
    if isinstance(own, type):
        if callable(getattr(own, "from_config", None)):
            return own.from_config(dict(arguments))  # type: ignore[attr-defined]
        cls = own
    if cls is None:
        raise UnknownIdentifierError(
            f"A metric config expects {{'class_name': one of {sorted(_CONFIG_CLASSES)} or a Metric subclass of one's "
            f"own, defined or imported in this process or registered with @onnxtrain.metrics.register "
            f"({sorted(_own_objects())}), 'config': {{...}}}}. Received: {dict(config)!r}"
        )
    # Keras' get_config adds the dtype its metric computes in: float32 is the only one here
    arguments = {key: value for key, value in arguments.items() if not (key == "dtype" and value in _DTYPES)}
    if cls is MeanMetricWrapper:
        arguments = {**arguments, "fn": _registered_function(arguments.get("fn"))}
    try:
        return cls(**arguments)
    except TypeError as e:
        raise InvalidArgumentError(f"Metric config {dict(config)!r} does not build a {cls.__name__}: {e}") from e


def _registered_function(name: Any) -> Any:
    """The metric function registered under `name` (a saved MeanMetricWrapper's "fn").

    Raises:
        UnknownIdentifierError: none is.
    """
    fn = _REGISTERED.get(name) if isinstance(name, str) else None
    if fn is None or isinstance(fn, type):
        raise UnknownIdentifierError(
            f"Could not interpret metric function {name!r}: a metric function is saved by its name, and none of that "
            f"name is registered with @onnxtrain.metrics.register (registered: {_REGISTERED.names})."
        )
    return fn


_DTYPES = (None, "float32")
