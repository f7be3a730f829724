"""Keras' F1Score and FBetaScore: per class (or over all, "micro") true positives, false positives, false negatives
and support, summed over the epoch (keras/src/metrics/f_score_metrics.py of Keras 3.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._metric_base import Metric, Shape, Sums, keras_view
from onnxtrain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss

EPSILON = 1e-7  # Keras' backend.epsilon()
AVERAGES = ("micro", "macro", "weighted")


class FBetaScore(Metric):
    """Keras' FBetaScore of outputs [batch, classes]: (1 + beta^2) precision recall / (beta^2 precision + recall)
    per class, averaged "macro" (the mean over classes), "weighted" (by each class's support) or "micro" (from the
    counts of every class together). A prediction is positive above `threshold`, or, without one, where it is its
    example's highest score. Keras' default `average=None` gives one score per class, which a History entry (one
    number per epoch) cannot hold: the default here is "macro". Logged as "fbeta_score" (or `name`).
    """

    direction = "up"  # Keras' _direction: callbacks in mode "auto" maximize it

    def __init__(
        self, average: str = "macro", beta: float = 1.0, threshold: float | None = None, name: str | None = None
    ):
        kind = type(self).__name__
        if average not in AVERAGES:
            raise InvalidArgumentError(
                f"{kind}(average=...) expects one of {list(AVERAGES)} (Keras' None, one score per class, does not "
                f"fit a History entry). Received: average={average!r}"
            )
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta > 0:
            raise InvalidArgumentError(f"{kind}(beta=...) expects a number > 0. Received: beta={beta!r}")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1
        ):
            raise InvalidArgumentError(
                f"{kind}(threshold=...) expects a number in (0, 1] or None. Received: threshold={threshold!r}"
            )
        self.average = average
        self.beta = float(beta)
        self.threshold = None if threshold is None else float(threshold)
        self.name = self._default_name() if name is None else str(name)

    def _default_name(self) -> str:
        return "fbeta_score"

    def _settings(self) -> dict[str, Any]:
        return {"average": self.average, "beta": self.beta, "threshold": self.threshold, "name": self.name}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FBetaScore) and type(other) is type(self) and other._settings() == self._settings()

    def __hash__(self) -> int:
        return hash((type(self), *self._settings().values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        if len(output_shape) != 1:
            raise InvalidArgumentError(
                f"{type(self).__name__} reads outputs [batch, classes], as Keras'. Received: an output of shape "
                f"{output_shape}."
            )
        return 4 if self.average == "micro" else 4 * output_shape[0]

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        y_pred, y_true = keras_view(outputs, labels, loss)
        y_pred = y_pred.astype(np.float32)
        if self.threshold is None:
            highest = y_pred.max(axis=-1, keepdims=True) if len(y_pred) else y_pred
            predicted = (y_pred >= highest) & (np.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        p, t = predicted.astype(np.float64), y_true.astype(np.float64)
        w = np.ones((len(p), 1)) if sample_weight is None else np.asarray(sample_weight, np.float64)[:, None]
        axis = None if self.average == "micro" else 0
        parts = [p * t, p * (1 - t), (1 - p) * t, t]
        return np.concatenate([np.atleast_1d(np.sum(part * w, axis=axis)) for part in parts])

    def finish(self, sums: Sums, examples: float) -> float:
        tp, fp, fn, support = np.asarray(sums, np.float64).reshape(4, -1)
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        beta2 = self.beta**2
        score = precision * recall / (beta2 * precision + recall + EPSILON) * (1 + beta2)
        if self.average == "weighted":
            return float(np.sum(score * support / (support.sum() + EPSILON)))
        return float(score.mean())

    def get_config(self) -> dict[str, Any]:
        return {"class_name": type(self).__name__, "config": self._settings()}


class F1Score(FBetaScore):
    """Keras' F1Score: FBetaScore with beta = 1. Logged as "f1_score" (or `name`)."""

    def __init__(self, average: str = "macro", threshold: float | None = None, name: str | None = None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)

    def _default_name(self) -> str:
        return "f1_score"

    def _settings(self) -> dict[str, Any]:
        return {"average": self.average, "threshold": self.threshold, "name": self.name}
