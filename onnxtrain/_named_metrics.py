"""The metrics of `Metrics`' names (accuracies, errors) as compiled metrics: the `Metrics` members and what each
computes of a batch, `NamedMetric` (one of them under the key compile was given it), and Keras' classes of them
(`SparseCategoricalAccuracy`, `BinaryAccuracy`, the top-k accuracies, `MeanAbsoluteError`, `RootMeanSquaredError`,
...). Resolving names is `onnxtrain.metrics`'.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._checks import as_real
from onnxtrain._layer_names import to_snake_case
from onnxtrain._metric_base import Metric, Shape, Sums, model_outputs, weighted_sums
from onnxtrain._regression_metrics import EPSILON
from onnxtrain.errors import InvalidArgumentError

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

    MAE, MSE and MSLE compare the model's outputs as Keras' metrics read them (`model_outputs`) with the targets
    (one-hot for class labels): under softmax cross-entropy whose graphs leave a last softmax out (or KotlinDL's,
    which computes its metrics on the softmax of the outputs) the probabilities; under a loss with
    `from_logits=True` the logits the model ends in, as Keras. Class indices per position (a tagger's (N, T)
    under sparse cross-entropy) score each position, as Keras' sparse accuracies do. MAE, MSE and MSLE
    (KotlinDL's, of log(max(value, 1e-7) + 1) as Keras') are means over every element of an example's output,
    whatever its rank; RMSE is the square root of the epoch's MSE, as Keras' RootMeanSquaredError (not a mean of
    per-batch roots). The top-k accuracies take k = 5, Keras' default (`TopKCategoricalAccuracy(k=...)` and
    `SparseTopKCategoricalAccuracy(k=...)` take another).
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
    MSLE = "msle"  # KotlinDL's; last, so that the members above keep their order

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

    def example_values(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, k: int = TOP_K, threshold: float = 0.5
    ) -> np.ndarray:
        """What each example of a batch scores: hits (bool [N]; per position, bool [N, positions]), binary hits
        (bool [N, units]) or errors (float [N, elements], absolute or squared); `k` of the top-k accuracies,
        `threshold` (on probabilities) of the binary accuracy."""
        if self is not Metrics.ACCURACY:
            self.check_loss(loss)
        if loss.classification:
            return self._of_class_indices(outputs, labels, loss, k)
        if self in (Metrics.ACCURACY, Metrics.CATEGORICAL_ACCURACY) and _per_position(outputs, labels, loss):
            # A class per position (a tagger's (N, steps, classes)): a hit per step, as Keras' (bool [N, steps])
            return (outputs.argmax(axis=-1) == labels.argmax(axis=-1)).reshape(len(outputs), -1)
        flat = outputs.reshape(len(outputs), -1)
        if self is Metrics.ACCURACY:
            if loss.binary or flat.shape[1] == 1:  # each unit a probability of its own
                return _binary_hits(flat, labels, loss)
            return flat.argmax(axis=1) == labels.reshape(len(labels), -1).argmax(axis=1)
        if self is Metrics.BINARY_ACCURACY:
            return _binary_hits(flat, labels, loss, threshold)
        if self is Metrics.CATEGORICAL_ACCURACY:
            return flat.argmax(axis=1) == labels.reshape(len(labels), -1).argmax(axis=1)
        if self is Metrics.TOP_K_CATEGORICAL_ACCURACY:
            return _in_top_k(flat, labels.reshape(len(labels), -1).argmax(axis=1), k)
        return self._errors(model_outputs(outputs, loss), labels)

    def _of_class_indices(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, k: int) -> np.ndarray:
        """`example_values` for class indices: one per example (outputs [N, classes], labels [N]; hits [N]) or one
        per position (outputs [N, *positions, classes], labels [N, *positions]; hits [N, positions]), each
        position scored as Keras' sparse accuracies score it."""
        classes = outputs.shape[-1]
        if self in _ERRORS:  # the model's outputs against one-hot targets
            return self._errors(model_outputs(outputs, loss), _one_hot(labels, classes))
        scores, indices = outputs.reshape(-1, classes), labels.reshape(-1)
        if self is Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY:
            hits = _in_top_k(scores, indices, k)
        else:  # ACCURACY, SPARSE_CATEGORICAL_ACCURACY
            hits = scores.argmax(axis=1) == indices
        return hits.reshape(len(outputs), -1) if outputs.ndim > 2 else hits

    def _errors(self, y_pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Each example's absolute or squared errors (MAE; MSE and RMSE; MSLE's of log(max(value, 1e-7) + 1), as
        Keras' and KotlinDL's), [N, elements]."""
        y_pred = y_pred.reshape(len(y_pred), -1)
        targets = targets.reshape(len(y_pred), -1)
        if self is Metrics.MSLE:
            y_pred, targets = (np.log1p(np.maximum(v, EPSILON)) for v in (y_pred, targets))
        error = y_pred - targets
        return np.abs(error) if self is Metrics.MAE else error * error

    def check_loss(self, loss: Loss) -> None:
        """Refuse a metric that reads the other kind of labels than `loss` takes: class indices (the sparse
        accuracies) or targets shaped like the output (binary, categorical and top-k categorical accuracy).
        ACCURACY follows the loss, and the errors (MAE, MSE, RMSE, MSLE) read either.

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

    @property
    def direction(self) -> str:
        """Keras' `_direction` of the metric: "down" for the errors (MAE, MSE, RMSE, MSLE), "up" for the accuracies."""
        return "down" if self in _ERRORS else "up"


_SPARSE = (Metrics.SPARSE_CATEGORICAL_ACCURACY, Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY)
_ERRORS = (Metrics.MAE, Metrics.MSE, Metrics.RMSE, Metrics.MSLE)


_ALIASES = {
    "acc": "accuracy",
    "mean_absolute_error": "mae",
    "mean_squared_error": "mse",
    "rmse": "root_mean_squared_error",
    "mean_squared_logarithmic_error": "msle",
    "top_5_categorical_accuracy": "top_k_categorical_accuracy",
    "sparse_top_5_categorical_accuracy": "sparse_top_k_categorical_accuracy",
}


def member_named(name: str) -> Metrics | None:
    """The `Metrics` member a name stands for ("accuracy", "acc", "mae", Keras' class names such as
    "BinaryAccuracy", each part between - or _ as Keras names layers), or None."""
    key = _key(name)
    key = _ALIASES.get(key, key)
    return next((m for m in Metrics if m.value == key or m.name.lower() == key), None)


def _key(name: str) -> str:
    """A metric name as `get` compares it: Keras' class names snake-cased, each part between - or _."""
    return "_".join(to_snake_case(part) for part in re.split(r"[-_]", name.strip()))


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
    threshold: float = 0.5  # binary accuracy's, on probabilities (BinaryAccuracy(threshold=...))

    def __eq__(self, other: object) -> bool:
        # BinaryAccuracy() and "binary_accuracy" are one metric, as Precision() and "precision" are
        return isinstance(other, NamedMetric) and self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    def _settings(self) -> tuple[Metrics, str, int, float]:
        return self.metric, self.name, self.k, self.threshold

    @property
    def direction(self) -> str:
        return self.metric.direction

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        return 2 if weighted else 1

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        if sample_weight is None:
            if self.k == TOP_K and self.threshold == 0.5:
                return self.metric.batch_sum(outputs, labels, loss)
            return (
                _summed(self.metric.example_values(outputs, labels, loss, self.k, self.threshold))
                if len(outputs)
                else 0.0
            )
        if not len(outputs):
            return np.zeros(2)
        return weighted_sums(self.metric.example_values(outputs, labels, loss, self.k, self.threshold), sample_weight)

    def finish(self, sums: Sums, examples: float) -> float:
        if isinstance(sums, np.ndarray):  # weighted: [sum of w v, sum of w]
            total, weight = (float(v) for v in sums)
            return self.metric.finish(total / weight if weight else 0.0)
        return self.metric.finish(sums / max(examples, 1))

    def get_config(self) -> str | dict[str, Any]:
        """Its name, where the name alone rebuilds it; else Keras' {"class_name", "config"} of its class (a name
        of one's own, `BinaryAccuracy(name="bin")`, a k, a threshold)."""
        cls = _CLASS_NAMES.get(self.metric)
        if cls is None or (self.k == TOP_K and self.threshold == 0.5 and member_named(self.name) is self.metric):
            return self.name
        config: dict[str, Any] = {"name": self.name}
        if self.k != TOP_K:
            config["k"] = self.k
        if self.threshold != 0.5:
            config["threshold"] = self.threshold
        return {"class_name": cls, "config": config}


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


class SparseCategoricalAccuracy(NamedMetric):
    """Keras' SparseCategoricalAccuracy: how often the highest score is the class index (labels of a loss that
    takes class indices, such as sparse_categorical_crossentropy). Logged as "sparse_categorical_accuracy" (or
    `name`); the same as the name "sparse_categorical_accuracy"."""

    def __init__(self, name: str = "sparse_categorical_accuracy"):
        super().__init__(Metrics.SPARSE_CATEGORICAL_ACCURACY, str(name))


class CategoricalAccuracy(NamedMetric):
    """Keras' CategoricalAccuracy: how often the highest score is the target's (the argmax of one-hot or
    probability targets shaped like the output). Logged as "categorical_accuracy" (or `name`)."""

    def __init__(self, name: str = "categorical_accuracy"):
        super().__init__(Metrics.CATEGORICAL_ACCURACY, str(name))


class BinaryAccuracy(NamedMetric):
    """Keras' BinaryAccuracy: the share of output units on their 0/1 target's side of `threshold` (default 0.5).
    The threshold is on probabilities: a model trained on logits (binary_crossentropy with from_logits=True) is
    compared at the logit of the threshold, 0 for 0.5, where Keras compares its logits with the threshold itself.
    Logged as "binary_accuracy" (or `name`)."""

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5):
        value = as_real(threshold)
        if value is None or not 0 <= value <= 1:
            raise InvalidArgumentError(
                f"BinaryAccuracy(threshold=...) expects a number in [0, 1]. Received: threshold={threshold!r}"
            )
        super().__init__(Metrics.BINARY_ACCURACY, str(name), threshold=value)


class MeanAbsoluteError(NamedMetric):
    """Keras' MeanAbsoluteError: the mean of |y_true - y_pred| over each example's elements, then over the
    examples. Logged as "mean_absolute_error" (or `name`); the same as the names "mae" and
    "mean_absolute_error"."""

    def __init__(self, name: str = "mean_absolute_error"):
        super().__init__(Metrics.MAE, str(name))


class MeanSquaredError(NamedMetric):
    """Keras' MeanSquaredError: the mean of (y_true - y_pred)^2 over each example's elements, then over the
    examples. Logged as "mean_squared_error" (or `name`); the same as the names "mse" and "mean_squared_error"."""

    def __init__(self, name: str = "mean_squared_error"):
        super().__init__(Metrics.MSE, str(name))


class RootMeanSquaredError(NamedMetric):
    """Keras' RootMeanSquaredError: the square root of the epoch's mean squared error (not a mean of per-batch
    roots). Logged as "root_mean_squared_error" (or `name`); the same as the names "rmse" and
    "root_mean_squared_error"."""

    def __init__(self, name: str = "root_mean_squared_error"):
        super().__init__(Metrics.RMSE, str(name))


_CLASS_NAMES = {  # the class of each member that has one, which a config of another name or k names
    Metrics.MAE: "MeanAbsoluteError",
    Metrics.MSE: "MeanSquaredError",
    Metrics.RMSE: "RootMeanSquaredError",
    Metrics.TOP_K_CATEGORICAL_ACCURACY: "TopKCategoricalAccuracy",
    Metrics.SPARSE_TOP_K_CATEGORICAL_ACCURACY: "SparseTopKCategoricalAccuracy",
    Metrics.SPARSE_CATEGORICAL_ACCURACY: "SparseCategoricalAccuracy",
    Metrics.CATEGORICAL_ACCURACY: "CategoricalAccuracy",
    Metrics.BINARY_ACCURACY: "BinaryAccuracy",
}


def _positive_k(metric: str, k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidArgumentError(f"{metric}(k=...) expects a positive int. Received: k={k!r}")
    return int(k)


def _per_position(outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> bool:
    """Whether `outputs` holds a class per position: more than one axis per example, one-hot or probability
    targets shaped like them, and a loss that is not one sigmoid per unit."""
    return outputs.ndim > 2 and labels.shape == outputs.shape and not loss.binary and not loss.classification


def _summed(values: np.ndarray) -> float:
    """The sum over a batch of `Metrics.example_values`: hits counted, binary hits as a share of each example's
    units, errors as the mean over each example's elements."""
    if values.dtype == bool:
        return (
            float(np.count_nonzero(values) / values.shape[1]) if values.ndim == 2 else float(np.count_nonzero(values))
        )
    return float(values.mean(axis=1).sum())


def _binary_hits(outputs: np.ndarray, labels: np.ndarray, loss: Loss, threshold: float = 0.5) -> np.ndarray:
    """Whether each unit is on its target's side of `threshold`, a probability: on logits, of its logit (0 for
    0.5)."""
    if loss.trains_on_logits:
        with np.errstate(divide="ignore"):  # the logit of 0 or 1 is -inf or inf
            threshold = float(np.log(threshold) - np.log1p(-threshold)) if threshold != 0.5 else 0.0
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
