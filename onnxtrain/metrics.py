"""Metrics, computed on the host from each batch's outputs and accumulated over an epoch: the `Metrics` names,
the metric objects compile takes (Keras' Precision, Recall, AUC, F1Score, FBetaScore, the accuracies, the top-k
accuracies with their k), and `named`, which turns what compile was given into compiled metrics (`Metric`). The
metrics themselves live in `_named_metrics`, `_accuracy_metrics`, `_confusion_metrics` and `_f_score_metrics`.

Every metric keeps sums (a float, or a vector: a threshold's true and false positives), so per-batch work is a small
numpy reduction on a (batch, units) array and the epoch's value comes from the summed vector (`Metric.finish`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from onnxtrain._accuracy_metrics import Accuracy
from onnxtrain._confusion_metrics import AUC, Precision, Recall
from onnxtrain._f_score_metrics import F1Score, FBetaScore
from onnxtrain._metric_base import Metric, WeightedMetric
from onnxtrain._named_metrics import (
    _ALIASES,
    BinaryAccuracy,
    CategoricalAccuracy,
    Metrics,
    NamedMetric,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    _key,
    member_named,
)
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "F1Score",
    "FBetaScore",
    "Metric",
    "Metrics",
    "NamedMetric",
    "Precision",
    "Recall",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "WeightedMetric",
    "check_loss",
    "get",
    "named",
]

if TYPE_CHECKING:
    from onnxtrain.losses import Loss


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
    )
}


def named(identifier: str | Metrics | Metric | Mapping[str, Any] | Any) -> Metric:
    """The compiled metric `identifier` gives, keyed as Keras 3 keys it: a metric object as it is (`Precision()`
    logs "precision", `AUC(name="pr_auc")` "pr_auc"); a name, Keras' ("precision", "recall", "auc", "f1_score",
    "fbeta_score", their class names, and the names `get` reads), keyed by the name as given; a `Metrics` member,
    keyed by its value; or a saved config {"class_name": ..., "config": {...}}.

    Raises:
        UnknownIdentifierError: not a metric name, with the valid names.
        InvalidArgumentError: a config that builds no metric.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, Mapping):
        return _from_config(identifier)
    if isinstance(identifier, str):
        cls = _CLASSES.get(_key(identifier))
        if cls is not None:
            return cls(name=identifier.strip())  # type: ignore[call-arg]
    try:
        metric = get(identifier)
    except UnknownIdentifierError as e:
        raise UnknownIdentifierError(
            f"{e} Metric classes: {sorted(_CONFIG_CLASSES)} (by name: {sorted(_CLASSES)})."
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
    cls = _CONFIG_CLASSES.get(str(config.get("class_name")))
    arguments = config.get("config", {})
    if cls is None or not isinstance(arguments, Mapping):
        raise InvalidArgumentError(
            f"A metric config expects {{'class_name': one of {sorted(_CONFIG_CLASSES)}, 'config': {{...}}}}. "
            f"Received: {dict(config)!r}"
        )
    # Keras' get_config adds the dtype its metric computes in: float32 is the only one here
    arguments = {key: value for key, value in arguments.items() if not (key == "dtype" and value in _DTYPES)}
    try:
        return cls(**arguments)
    except TypeError as e:
        raise InvalidArgumentError(f"Metric config {dict(config)!r} does not build a {cls.__name__}: {e}") from e


_DTYPES = (None, "float32")
