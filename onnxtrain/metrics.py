"""Metrics, computed on the host from each batch's outputs and accumulated over an epoch: the `Metrics` names,
the metric objects compile takes (Keras' Precision, Recall, AUC, F1Score, FBetaScore, the top-k accuracies with
their k), and `named`, which turns what compile was given into compiled metrics (`Metric`).

Every metric keeps sums (a float, or a vector: a threshold's true and false positives), so per-batch work is a small
numpy reduction on a (batch, units) array and the epoch's value comes from the summed vector (`Metric.finish`).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._confusion_metrics import AUC, Precision, Recall
from onnxtrain._f_score_metrics import F1Score, FBetaScore
from onnxtrain._layer_names import to_snake_case
from onnxtrain._metric_base import Metric, Shape, Sums, WeightedMetric
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError

__all__ = [
    "AUC",
    "F1Score",
    "FBetaScore",
    "Metric",
    "Metrics",
    "NamedMetric",
    "Precision",
    "Recall",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "WeightedMetric",
    "check_loss",
    "get",
    "named",
]

if TYPE_CHECKING:
    from onnxtrain.losses import Loss


TOP_K = 5  # Keras' default k of the top-k accuracies


class Metrics(enum.Enum):
    """Metric names (KotlinDL's, then Keras'); `.value` is the Keras-style key used in History ("accuracy", "mae")
    for a metric given as a member. A metric given by a name keeps that name as its key, as in Keras 3 (`named`).

    ACCURACY resolves by the loss, as tf.keras 2 and KotlinDL do: the argmax's for class labels and one-hot
    targets, and, as Keras' binary accuracy, the share of units on the target's side of 0.5 (of 0 for a loss from
    logits) for binary cross-entropy and for one output unit. Keras 3 resolves "accuracy" by shapes instead
    (CategoricalAccuracy for several units with targets shaped like the output, whatever the loss); name the
    metric (BINARY_ACCURACY, CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY) to choose it.

    Where the loss trains on logits (softmax cross-entropy, whose graphs leave a last softmax out; binary
    cross-entropy from logits), MAE and MSE compare the probabilities (`Loss.probabilities`) with the targets
    (one-hot for class labels), as KotlinDL computes its metrics on the softmax of the outputs. MAE and MSE are means
    over every element of an example's output, whatever its rank; RMSE is the square root of the epoch's MSE, as
    Keras' RootMeanSquaredError (not a mean of per-batch roots). The top-k accuracies take k = 5, Keras' default
    (`TopKCategoricalAccuracy(k=...)` and `SparseTopKCategoricalAccuracy(k=...)` take another).
    """

    ACCURACY = "accuracy"
    MAE = "mae"
    MSE = "mse"
    RMSE = "root_mean_squared_error"
    BINARY_ACCURACY = "binary_accuracy"
    CATEGORICAL_ACCURACY = "categorical_accuracy"
    SPARSE_CATEGORICAL_ACCURACY = "sparse_categorical_accuracy"
    TOP_K_CATEGORICAL_ACCURACY = "top_k_categorical_accuracy"
    SPARSE_TOP_K_CATEGORICAL_ACCURACY = "sparse_top_k_categorical_accuracy"

    def batch_sum(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> float:
        """Sum of this metric over the examples of one batch (divide by the example count for the mean).

        `labels` are what `loss.prepare_labels` made: class indices (N,) for a classification loss, else float
        targets shaped like `outputs`.

        Raises:
            InvalidArgumentError: a metric that reads the other kind of labels than the loss takes (class indices
                or targets shaped like the output).
        """
        if not len(outputs):  # a data-parallel process's share of a last batch may hold no row
            return 0.0
        return _summed(self.example_values(outputs, labels, loss))

    def example_values(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, k: int = TOP_K) -> np.ndarray:
        """What each example of a batch scores: hits (bool [N]), binary hits (bool [N, units]) or errors (float
        [N, elements], absolute or squared); `k` of the top-k accuracies."""
        outputs = outputs.reshape(len(outputs), -1)
        if self is Metrics.ACCURACY:
            if loss.classification:
                return outputs.argmax(axis=1) == labels
            if loss.binary or outputs.shape[1] == 1:  # each unit a probability of its own
                return _binary_hits(outputs, labels, loss)
            return outputs.argmax(axis=1) == labels.reshape(len(labels), -1).argmax(axis=1)
        self.check_loss(loss)
        if self in _SPARSE:
            if self is Metrics.SPARSE_CATEGORICAL_ACCURACY:
                return outputs.argmax(axis=1) == labels
            return _in_top_k(outputs, labels, k)
        if self is Metrics.BINARY_ACCURACY:
            return _binary_hits(outputs, labels, loss)
        if self is Metrics.CATEGORICAL_ACCURACY:
            return outputs.argmax(axis=1) == labels.reshape(len(labels), -1).argmax(axis=1)
        if self is Metrics.TOP_K_CATEGORICAL_ACCURACY:
            return _in_top_k(outputs, labels.reshape(len(labels), -1).argmax(axis=1), k)
        if loss.classification:
            outputs, targets = _softmax(outputs), _one_hot(labels, outputs.shape[1])
        else:
            targets = labels.reshape(len(labels), -1)
            if loss.trains_on_logits:
                outputs = loss.probabilities(outputs)
        error = outputs - targets
        return np.abs(error) if self is Metrics.MAE else error * error

    def check_loss(self, loss: Loss) -> None:
        """Refuse a metric that reads the other kind of labels than `loss` takes: class indices (the sparse
        accuracies) or targets shaped like the output (binary, categorical and top-k categorical accuracy).
        ACCURACY follows the loss, and the errors (MAE, MSE, RMSE) read either.

        Raises:
            InvalidArgumentError: naming the metric, the loss and the metrics that fit the loss.
        """
        if self in _SPARSE and not loss.classification:
            raise _labels_mismatch(self, loss, "class indices (a loss like sparse_categorical_crossentropy)")
        if loss.classification and self not in _SPARSE and self not in _ERRORS and self is not Metrics.ACCURACY:
            raise _labels_mismatch(self, loss, "targets shaped like the output")

    def finish(self, mean: float) -> float:
        """The metric's value from the mean of its `batch_sum`s over all examples: the mean itself, except RMSE's
        square root of the mean squared error."""
        return math.sqrt(mean) if self is Metrics.RMSE else mean


_SPARSE = (Metrics.SPARSE_CATEGORICAL_ACCURACY, Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY)
_ERRORS = (Metrics.MAE, Metrics.MSE, Metrics.RMSE)

_ALIASES = {
    "acc": "accuracy",
    "mean_absolute_error": "mae",
    "mean_squared_error": "mse",
    "rmse": "root_mean_squared_error",
    "top_5_categorical_accuracy": "top_k_categorical_accuracy",
    "sparse_top_5_categorical_accuracy": "sparse_top_k_categorical_accuracy",
}


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
        # Keras' class names too ("TopKCategoricalAccuracy"), each part between - or _ as Keras names layers
        key = _key(identifier)
        key = _ALIASES.get(key, key)
        for metric in Metrics:
            if metric.value == key or metric.name.lower() == key:
                return metric
    raise UnknownIdentifierError(
        f"Could not interpret metric {identifier!r}. Valid names: {[m.value for m in Metrics]}, and the aliases "
        f"{sorted(_ALIASES)}."
    )


@dataclass(frozen=True)
class NamedMetric(Metric):
    """A compiled metric of `Metrics`: what it computes (`metric`), its key in the logs, History and evaluate
    (`name`), and the k of a top-k accuracy (`k`).

    As Keras 3 keys its logs, the name is the spelling compile was given: metrics=["acc"] logs "acc" and "val_acc",
    "mean_absolute_error" logs "mean_absolute_error", "RootMeanSquaredError" logs "RootMeanSquaredError"; a
    `Metrics` member logs its value (Metrics.ACCURACY: "accuracy"). `value` is the name too, as a member's is, so
    configs store it and `named` reads it back.

    Its sums: the sum of the examples' values (one float; the mean is sum / examples), or, as a metric of
    `weighted_metrics`, [sum of w_i v_i, sum of w_i] (the mean is their ratio, as Keras' weighted Mean).
    """

    metric: Metrics
    name: str
    k: int = TOP_K

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        return 2 if weighted else 1

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        if sample_weight is None:
            if self.k == TOP_K:
                return self.metric.batch_sum(outputs, labels, loss)
            return _summed(self.metric.example_values(outputs, labels, loss, self.k)) if len(outputs) else 0.0
        if not len(outputs):
            return np.zeros(2)
        values = self.metric.example_values(outputs, labels, loss, self.k)
        return np.array([_weighted(values, sample_weight), float(np.sum(sample_weight, dtype=np.float64))])

    def finish(self, sums: Sums, examples: float) -> float:
        if isinstance(sums, np.ndarray):  # weighted: [sum of w v, sum of w]
            total, weight = (float(v) for v in sums)
            return self.metric.finish(total / weight if weight else 0.0)
        return self.metric.finish(sums / max(examples, 1))

    def get_config(self) -> str | dict[str, Any]:
        if self.k == TOP_K:
            return self.name
        return {"class_name": _TOP_K_CLASSES[self.metric], "config": {"k": self.k, "name": self.name}}


class TopKCategoricalAccuracy(NamedMetric):
    """Keras' TopKCategoricalAccuracy: how often the target's class (the argmax of one-hot targets) is among the
    `k` highest scores. Logged as "top_k_categorical_accuracy" (or `name`)."""

    def __init__(self, k: int = TOP_K, name: str = "top_k_categorical_accuracy"):
        super().__init__(Metrics.TOP_K_CATEGORICAL_ACCURACY, str(name), _positive_k(type(self).__name__, k))


class SparseTopKCategoricalAccuracy(NamedMetric):
    """Keras' SparseTopKCategoricalAccuracy: how often the class index is among the `k` highest scores. Logged as
    "sparse_top_k_categorical_accuracy" (or `name`)."""

    def __init__(self, k: int = TOP_K, name: str = "sparse_top_k_categorical_accuracy"):
        super().__init__(Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY, str(name), _positive_k(type(self).__name__, k))


_TOP_K_CLASSES = {
    Metrics.TOP_K_CATEGORICAL_ACCURACY: "TopKCategoricalAccuracy",
    Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY: "SparseTopKCategoricalAccuracy",
}
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
    for cls in (Precision, Recall, AUC, F1Score, FBetaScore, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy)
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

    Raises:
        InvalidArgumentError: naming the metric, the loss and the metrics that fit the loss.
    """
    inner = metric.metric if isinstance(metric, WeightedMetric) else metric
    if isinstance(inner, NamedMetric):
        try:
            inner.metric.check_loss(loss)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"compile: {e}") from None


def _from_config(config: Mapping[str, Any]) -> Metric:
    cls = _CONFIG_CLASSES.get(str(config.get("class_name")))
    arguments = config.get("config", {})
    if cls is None or not isinstance(arguments, Mapping):
        raise InvalidArgumentError(
            f"A metric config expects {{'class_name': one of {sorted(_CONFIG_CLASSES)}, 'config': {{...}}}}. "
            f"Received: {dict(config)!r}"
        )
    try:
        return cls(**arguments)
    except TypeError as e:
        raise InvalidArgumentError(f"Metric config {dict(config)!r} does not build a {cls.__name__}: {e}") from e


def _key(name: str) -> str:
    """A metric name as `get` compares it: Keras' class names snake-cased, each part between - or _."""
    return "_".join(to_snake_case(part) for part in re.split(r"[-_]", name.strip()))


def _positive_k(metric: str, k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidArgumentError(f"{metric}(k=...) expects a positive int. Received: k={k!r}")
    return int(k)


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    """Sum over a batch of each example's `Metrics.example_values` times its weight."""
    w = np.asarray(weights, np.float64)
    if values.dtype == bool and values.ndim == 1:  # hits
        return float(w @ values)
    if values.dtype == bool:  # binary hits, as a share of each example's units
        return float(w @ (np.count_nonzero(values, axis=1) / values.shape[1]))
    return float(w @ values.mean(axis=1))


def _summed(values: np.ndarray) -> float:
    """The sum over a batch of `Metrics.example_values`: hits counted, binary hits as a share of each example's
    units, errors as the mean over each example's elements."""
    if values.dtype == bool:
        return (
            float(np.count_nonzero(values) / values.shape[1]) if values.ndim == 2 else float(np.count_nonzero(values))
        )
    return float(values.mean(axis=1).sum())


def _binary_hits(outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> np.ndarray:
    """Whether each unit is on its target's side of the threshold (0 for logits, else 0.5)."""
    threshold = 0.0 if loss.trains_on_logits else 0.5
    return (outputs > threshold) == (labels.reshape(len(labels), -1) > 0.5)


def _in_top_k(scores: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Whether each example's class is among its k highest scores (ties counted in, as Keras' in_top_k)."""
    own = scores[np.arange(len(scores)), classes.astype(np.int64)]
    return np.count_nonzero(scores > own[:, None], axis=1) < k


def _labels_mismatch(metric: Metrics, loss: Loss, expected: str) -> InvalidArgumentError:
    kind = "class indices" if loss.classification else "targets shaped like the output"
    instead = (
        "sparse_categorical_accuracy or sparse_top_k_categorical_accuracy"
        if loss.classification
        else "categorical_accuracy, binary_accuracy or top_k_categorical_accuracy"
    )
    return InvalidArgumentError(
        f"Metric {metric.value!r} reads {expected}, but loss {loss.name!r} takes {kind}. Use {instead}, or "
        "'accuracy', which follows the loss."
    )


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
