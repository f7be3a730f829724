"""Keras' `Accuracy` metric: how often the outputs equal their targets exactly (keras/src/metrics/accuracy_metrics.py).
The accuracies that compare classes (`BinaryAccuracy`, `CategoricalAccuracy`, ...) are `onnxtrain.metrics`' named
metrics; this one compares values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._metric_base import Metric, Shape, Sums, keras_view, weighted_sums

if TYPE_CHECKING:
    from onnxtrain.losses import Loss


class Accuracy(Metric):
    """Keras' Accuracy: the share of output values equal to their targets, per example, averaged over the examples
    (Keras' `accuracy` function in a mean metric). It compares values, not classes: a classifier's probabilities
    (the softmax under softmax cross-entropy, as the Keras model outputs it) are rarely exactly 0 or 1, so for a
    classifier it is about 0, as in Keras. The share of right classes is "accuracy" (which follows the loss),
    `SparseCategoricalAccuracy`, `CategoricalAccuracy` or `BinaryAccuracy`. Class indices are compared with every
    unit (of their position, for class indices per position), as Keras compares a label column with the output.
    Logged as "accuracy" (or `name`).
    """

    direction = "up"  # Keras' _direction: callbacks in mode "auto" maximize it

    def __init__(self, name: str = "accuracy"):
        self.name = str(name)

    def __eq__(self, other: object) -> bool:
        return type(other) is Accuracy and other.name == self.name

    def __hash__(self) -> int:
        return hash((Accuracy, self.name))

    def __repr__(self) -> str:
        return f"Accuracy(name={self.name!r})"

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        return 2 if weighted else 1

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        if not len(outputs):
            return np.zeros(2) if sample_weight is not None else 0.0
        y_pred, _ = keras_view(outputs, labels, loss)
        y_true = labels[..., None] if loss.classification else labels.reshape(outputs.shape)
        equal = y_pred == y_true  # [N, *positions, units]
        if sample_weight is None:
            return float(np.count_nonzero(equal) / (equal.size / len(outputs)))
        return weighted_sums(equal, sample_weight)

    def finish(self, sums: Sums, examples: float) -> float:
        if isinstance(sums, np.ndarray):  # weighted: [sum of w v, sum of w]
            total, weight = (float(v) for v in sums)
            return total / weight if weight else 0.0
        return float(sums) / max(examples, 1)

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "Accuracy", "config": {"name": self.name}}
