"""A loss given as a metric, as Keras 3 takes one (`compile(metrics=[onnxtrain.losses.Huber()])`: the mean of the
batches' means; or a Keras metric name that is a loss's, "binary_crossentropy": the mean over the examples),
computed in numpy from each batch as Keras' metrics read it (`keras_view`) and keyed by Keras' name of the loss
("huber_loss")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain import losses
from onnxtrain._metric_base import Sums, reads_softmax
from onnxtrain._regression_metrics import EPSILON, MeanOfExamples, _l2_normalized
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss

Values = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]  # (loss, y_true, y_pred) -> a value per example
_LOG_2 = float(np.log(2.0))


def _squared(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.mean((p - t) ** 2, axis=-1)


def _absolute(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.mean(np.abs(p - t), axis=-1)


def _percentage(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return 100.0 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPSILON), axis=-1)


def _squared_log(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.mean((np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))) ** 2, axis=-1)


def _log_cosh(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    x = p - t
    return np.mean(x + np.logaddexp(0.0, -2.0 * x) - _LOG_2, axis=-1)


def _cosine(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -np.sum(_l2_normalized(t, -1) * _l2_normalized(p, -1), axis=-1)


def _huber(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    error, delta = np.abs(p - t), float(loss.delta)
    return np.mean(np.where(error <= delta, 0.5 * error * error, delta * error - 0.5 * delta * delta), axis=-1)


def _kl_divergence(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    t, p = np.clip(t, EPSILON, 1.0), np.clip(p, EPSILON, 1.0)
    return np.sum(t * np.log(t / p), axis=-1)


def _poisson(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.mean(p - t * np.log(p + EPSILON), axis=-1)


def _hinge(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    signs = 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t  # Keras maps a batch of 0/1 targets to -1/1
    violation = np.maximum(1.0 - signs * p, 0.0)
    return np.mean(violation * violation if loss.squared else violation, axis=-1)


def _binary_crossentropy(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    t = t * (1.0 - loss.label_smoothing) + 0.5 * loss.label_smoothing
    if loss.from_logits:  # softplus(z) - t z, without overflow
        return np.mean(np.logaddexp(0.0, p) - t * p, axis=-1)
    epsilon = loss.epsilon
    p = np.clip(p, epsilon, 1.0 - epsilon)
    return -np.mean(t * np.log(p + epsilon) + (1.0 - t) * np.log(1.0 - p + epsilon), axis=-1)


def _crossentropy(loss: Any, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    smoothing = float(getattr(loss, "label_smoothing", 0.0))
    if smoothing:
        t = t * (1.0 - smoothing) + smoothing / t.shape[-1]
    p = np.clip(p / np.sum(p, axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)  # Keras' on probabilities
    return -np.sum(t * np.log(p), axis=-1)


_VALUES: dict[type, Values] = {
    losses.MeanSquaredError: _squared,
    losses.MeanAbsoluteError: _absolute,
    losses.MeanAbsolutePercentageError: _percentage,
    losses.MeanSquaredLogarithmicError: _squared_log,
    losses.LogCosh: _log_cosh,
    losses.CosineSimilarity: _cosine,
    losses.Huber: _huber,
    losses.KLDivergence: _kl_divergence,
    losses.Poisson: _poisson,
    losses.Hinge: _hinge,
    losses.SquaredHinge: _hinge,
    losses.BinaryCrossentropy: _binary_crossentropy,
    losses.CategoricalCrossentropy: _crossentropy,
    losses.SparseCategoricalCrossentropy: _crossentropy,
    losses.SoftmaxCrossEntropyWithLogits: _crossentropy,
}
# Keras' names of the losses onnxtrain names otherwise (KotlinDL's "mse", "mae", "huber"); the others are Keras'
_KERAS_NAMES: dict[type, str] = {
    losses.MeanSquaredError: "mean_squared_error",
    losses.MeanAbsoluteError: "mean_absolute_error",
    losses.Huber: "huber_loss",
}
# Keras' metric names that are losses' (keras.metrics.get("hinge") is the loss function): `named` takes them
LOSS_NAMES = (
    "binary_crossentropy",
    "bce",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "poisson",
    "hinge",
    "squared_hinge",
)


class LossMetric(MeanOfExamples):
    """A loss as a metric, keyed by Keras' name of it ("mean_squared_error" for `losses.MeanSquaredError()`,
    "huber_loss" for `Huber()`) or `name`, computed as Keras computes each kind:

    * `per_batch=True`, a loss object in `metrics` (`compile(metrics=[losses.Huber()])`, which `named` makes): Keras
      wraps the object, which returns each batch's mean, in a `MeanMetricWrapper`, so the value is the mean of the
      batches' means, a last, smaller batch counting as much as a full one. Keras refuses such a metric in
      `weighted_metrics` when weights are given; here each batch's mean is then its weighted mean, sum(w l) / sum(w).
      In a data-parallel fit each process's share of a batch counts as a batch (the same where the shares are of
      one size).
    * `per_batch=False` (the default), a Keras metric name that is a loss's ("binary_crossentropy",
      "SparseCategoricalCrossentropy": Keras' loss function, or its metric class): the mean over the examples of
      the loss's value for each, weighted by each example's (or each position's) sample weight in
      `weighted_metrics`.

    It reads a batch as Keras' metrics do (`keras_view`): the model's outputs (under softmax cross-entropy that does
    not say `from_logits=True`, the probabilities), and class indices as one-hot targets, per example or per
    position. A cross-entropy is of those probabilities, clipped to [1e-7, 1 - 1e-7] as Keras' is; `from_logits=True`
    applies a softmax first, unless the outputs are already the probabilities of the compile loss's softmax (which
    is never applied twice).

    Raises:
        InvalidTypeError: `loss` is neither a Loss nor a loss config.
        InvalidArgumentError: a loss class of one's own, whose value per example only its graph computes.
    """

    direction = "down"

    def __init__(self, loss: Loss | Mapping[str, Any] | str, name: str | None = None, per_batch: bool = False):
        if isinstance(loss, Mapping | str):  # a save's config, {"name": "huber", "delta": 0.5}
            loss = losses.get(loss)
        if not isinstance(loss, losses.Loss):
            raise InvalidTypeError(f"LossMetric(loss=...) expects an onnxtrain Loss. Received: {loss!r}")
        if type(loss) not in _VALUES:
            raise InvalidArgumentError(
                f"Metric {loss!r} is a loss of one's own, which onnxtrain computes as a graph only, so it cannot "
                "be a metric. Pass its value per example as a numpy function instead: metrics=[fn], with "
                "fn(y_true, y_pred) returning one value per example."
            )
        if not isinstance(per_batch, bool | np.bool_):
            raise InvalidTypeError(f"LossMetric(per_batch=...) expects a bool. Received: per_batch={per_batch!r}")
        self.loss = loss
        self.name = _KERAS_NAMES.get(type(loss), loss.name) if name is None else str(name)
        self.per_batch = bool(per_batch)

    def _settings(self) -> dict[str, Any]:
        return {"loss": self.loss, "name": self.name, "per_batch": self.per_batch}

    @property
    def reads_class_indices(self) -> bool:
        """Whether the loss takes class indices (sparse cross-entropy), which only a loss that does can give it."""
        return bool(self.loss.classification)

    def view(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
        y_pred, y_true = super().view(outputs, labels, loss)
        if _VALUES[type(self.loss)] is _crossentropy and getattr(self.loss, "from_logits", False):
            if not reads_softmax(loss):  # the outputs as they are: logits, by the metric's word
                shifted = np.exp(y_pred - y_pred.max(axis=-1, keepdims=True))
                y_pred = shifted / shifted.sum(axis=-1, keepdims=True)
        return y_pred, y_true

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return _VALUES[type(self.loss)](self.loss, y_true.astype(np.float64), y_pred.astype(np.float64))

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        """[sum of w v, sum of w] over the examples; `per_batch`: [the batch's (weighted) mean, 1], a batch of no
        rows or no weight adding nothing."""
        sums = super().batch_sum(outputs, labels, loss, sample_weight)
        if not self.per_batch:
            return sums
        total, weight = (float(v) for v in np.asarray(sums))
        return np.array([total / weight, 1.0]) if weight else np.zeros(2)

    def check_loss(self, loss: Loss) -> None:
        """Refuse, at compile, a sparse cross-entropy under a loss that takes targets shaped like the output.

        Raises:
            InvalidArgumentError: naming both losses and the metric to use instead.
        """
        if self.reads_class_indices and not loss.classification:
            raise InvalidArgumentError(
                f"compile: metric {self.name!r} is a sparse cross-entropy, which reads class indices, but loss "
                f"{loss.name!r} takes targets shaped like the output. Use losses.CategoricalCrossentropy() (or "
                "'categorical_crossentropy') as the metric."
            )

    def get_config(self) -> str | dict[str, Any]:
        """The name alone where it is a Keras metric name that builds this loss's mean over the examples; else
        {"class_name": "LossMetric", "config": {"loss": the loss's config, "name": ...}}, with "per_batch": True
        for a loss object's mean of batch means."""
        if not self.per_batch and self.name in LOSS_NAMES and losses.get(self.name) == self.loss:
            return self.name
        config: dict[str, Any] = {"loss": self.loss.get_config(), "name": self.name}
        if self.per_batch:
            config["per_batch"] = True
        return {"class_name": "LossMetric", "config": config}
