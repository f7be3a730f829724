"""Metrics, computed on the host from each batch's outputs and accumulated over an epoch.

Accumulators keep running sums, so per-batch work is one small numpy reduction on a (batch, units) array.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain.errors import UnknownIdentifierError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss


class Metrics(enum.Enum):
    """KotlinDL's metric names; `.value` is the Keras-style key used in History ("accuracy", "mae", "mse").

    With softmax cross-entropy, MAE and MSE compare softmax(logits) with the one-hot labels, as KotlinDL computes
    its metrics on the softmax of the outputs (Keras would compare the raw outputs with the labels). MAE and MSE
    are means over every element of an example's output, whatever its rank. ACCURACY is the argmax's for class
    labels and one-hot targets, and, as Keras' binary accuracy, the share of units on the target's side of 0.5
    for binary cross-entropy and for one output unit.
    """

    ACCURACY = "accuracy"
    MAE = "mae"
    MSE = "mse"

    def batch_sum(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> float:
        """Sum of this metric over the examples of one batch (divide by the example count for the mean).

        `labels` are what `loss.prepare_labels` made: class indices (N,) for a classification loss, else float
        targets shaped like `outputs`.
        """
        outputs = outputs.reshape(len(outputs), -1)
        if self is Metrics.ACCURACY:
            if loss.classification:
                return float(np.count_nonzero(outputs.argmax(axis=1) == labels))
            labels = labels.reshape(len(labels), -1)
            if loss.binary or outputs.shape[1] == 1:  # each unit a probability of its own
                hits = (outputs > 0.5) == (labels > 0.5)
                return float(np.count_nonzero(hits) / outputs.shape[1])
            return float(np.count_nonzero(outputs.argmax(axis=1) == labels.argmax(axis=1)))
        if loss.classification:
            outputs, targets = _softmax(outputs), _one_hot(labels, outputs.shape[1])
        else:
            targets = labels.reshape(len(labels), -1)
        error = outputs - targets
        per_example = np.abs(error) if self is Metrics.MAE else error * error
        return float(per_example.mean(axis=1).sum())


_ALIASES = {"acc": "accuracy", "mean_absolute_error": "mae", "mean_squared_error": "mse"}


def get(identifier: str | Metrics | Any) -> Metrics:
    """Map a Metrics member or a name ("accuracy", "acc", "mae", "mse") to a Metrics member."""
    if isinstance(identifier, Metrics):
        return identifier
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        key = _ALIASES.get(key, key)
        for metric in Metrics:
            if metric.value == key or metric.name.lower() == key:
                return metric
    raise UnknownIdentifierError(
        f"Could not interpret metric {identifier!r}. Valid names: {[m.value for m in Metrics]}"
    )


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
