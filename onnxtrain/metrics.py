"""Metrics, computed on the host from each batch's outputs and accumulated over an epoch.

Accumulators keep running sums, so per-batch work is one small numpy reduction on a (batch, units) array.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._layer_names import to_snake_case
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss


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
    Keras' RootMeanSquaredError (not a mean of per-batch roots). The top-k accuracies take k = 5, Keras' default.
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
        outputs = outputs.reshape(len(outputs), -1)
        if self is Metrics.ACCURACY:
            if loss.classification:
                return _hits(outputs.argmax(axis=1) == labels)
            if loss.binary or outputs.shape[1] == 1:  # each unit a probability of its own
                return _binary_hits(outputs, labels, loss)
            return _hits(outputs.argmax(axis=1) == labels.reshape(len(labels), -1).argmax(axis=1))
        if self in _SPARSE:
            if not loss.classification:
                raise _labels_mismatch(self, loss, "class indices (a loss like sparse_categorical_crossentropy)")
            if self is Metrics.SPARSE_CATEGORICAL_ACCURACY:
                return _hits(outputs.argmax(axis=1) == labels)
            return _hits(_in_top_k(outputs, labels, TOP_K))
        if loss.classification and self not in _ERRORS:
            raise _labels_mismatch(self, loss, "targets shaped like the output")
        if self is Metrics.BINARY_ACCURACY:
            return _binary_hits(outputs, labels, loss)
        if self is Metrics.CATEGORICAL_ACCURACY:
            return _hits(outputs.argmax(axis=1) == labels.reshape(len(labels), -1).argmax(axis=1))
        if self is Metrics.TOP_K_CATEGORICAL_ACCURACY:
            return _hits(_in_top_k(outputs, labels.reshape(len(labels), -1).argmax(axis=1), TOP_K))
        if loss.classification:
            outputs, targets = _softmax(outputs), _one_hot(labels, outputs.shape[1])
        else:
            targets = labels.reshape(len(labels), -1)
            if loss.trains_on_logits:
                outputs = loss.probabilities(outputs)
        error = outputs - targets
        per_example = np.abs(error) if self is Metrics.MAE else error * error
        return float(per_example.mean(axis=1).sum())

    def finish(self, mean: float) -> float:
        """The metric's value from the mean of its `batch_sum`s over all examples: the mean itself, except RMSE's
        square root of the mean squared error."""
        return math.sqrt(mean) if self is Metrics.RMSE else mean


TOP_K = 5  # Keras' default k of the top-k accuracies
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
        key = "_".join(to_snake_case(part) for part in re.split(r"[-_]", identifier.strip()))
        key = _ALIASES.get(key, key)
        for metric in Metrics:
            if metric.value == key or metric.name.lower() == key:
                return metric
    raise UnknownIdentifierError(
        f"Could not interpret metric {identifier!r}. Valid names: {[m.value for m in Metrics]}, and the aliases "
        f"{sorted(_ALIASES)}."
    )


@dataclass(frozen=True)
class NamedMetric:
    """A compiled metric: what it computes (`metric`) and its key in the logs, History and evaluate (`name`).

    As Keras 3 keys its logs, the name is the spelling compile was given: metrics=["acc"] logs "acc" and "val_acc",
    "mean_absolute_error" logs "mean_absolute_error", "RootMeanSquaredError" logs "RootMeanSquaredError"; a
    `Metrics` member logs its value (Metrics.ACCURACY: "accuracy"). `value` is the name too, as a member's is, so
    configs store it and `named` reads it back.
    """

    metric: Metrics
    name: str

    @property
    def value(self) -> str:
        return self.name

    def batch_sum(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> float:
        return self.metric.batch_sum(outputs, labels, loss)

    def finish(self, mean: float) -> float:
        return self.metric.finish(mean)


def named(identifier: str | Metrics | NamedMetric | Any) -> NamedMetric:
    """The metric `identifier` names (see `get`), keyed as Keras 3 keys it: by the name given, or by a member's
    value.

    Raises:
        UnknownIdentifierError: not a metric name, with the valid names.
    """
    if isinstance(identifier, NamedMetric):
        return identifier
    metric = get(identifier)
    return NamedMetric(metric, identifier.strip() if isinstance(identifier, str) else metric.value)


def _hits(hits: np.ndarray) -> float:
    return float(np.count_nonzero(hits))


def _binary_hits(outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> float:
    """Units on their target's side of the threshold (0 for logits, else 0.5), as a share of each example's."""
    threshold = 0.0 if loss.trains_on_logits else 0.5
    hits = (outputs > threshold) == (labels.reshape(len(labels), -1) > 0.5)
    return float(np.count_nonzero(hits) / outputs.shape[1])


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
