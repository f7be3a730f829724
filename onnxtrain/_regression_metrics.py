"""Keras 3's regression metrics beyond the `Metrics` names (keras/src/metrics/regression_metrics.py): the weighted
means of a value per example (`MeanAbsolutePercentageError`, `MeanSquaredLogarithmicError`, `LogCoshError`,
`CosineSimilarity`, and `MeanMetricWrapper` of a function of one's own) and `R2Score`, which keeps per-column sums."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._metric_base import Metric, Shape, Sums, keras_view, weighted_sums
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss

EPSILON = 1e-7  # Keras' backend.epsilon()
CLASS_AGGREGATIONS = ("uniform_average", "variance_weighted_average")


class MeanOfExamples(Metric):
    """A metric that is the mean over the examples of a value per example (`values`), each example weighted by its
    sample weight as a metric of `weighted_metrics` (Keras' `Mean` of a `MeanMetricWrapper`; weights per position
    weigh each position's values: `weighted_sums`). An example's value is the mean of what `values` gives it
    ([batch], or [batch, ...] for an output of several axes).

    Its sums: [sum of w_i v_i, sum of w_i] (w = 1 unweighted); the value is their ratio, 0 for no weight (Keras'
    divide_no_nan), so it is a mean over the epoch, not of batch means.
    """

    name: str

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """The value of each example of a batch: y_true and y_pred as Keras' metrics read them (`keras_view`)."""
        raise NotImplementedError

    def view(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
        """(y_pred, y_true) of a batch as `values` reads them: Keras' metrics' view (`keras_view`)."""
        return keras_view(outputs, labels, loss)

    def _settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MeanOfExamples) and type(other) is type(self) and other._settings() == self._settings()

    def __hash__(self) -> int:
        return hash((type(self), *self._settings().values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        return 2

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        if not len(outputs):  # a data-parallel process's share of a last batch may hold no row
            return np.zeros(2)
        y_pred, y_true = self.view(outputs, labels, loss)
        values = np.asarray(self.values(y_true, y_pred))
        if values.ndim == 0 or values.shape[0] != len(outputs):
            raise InvalidArgumentError(
                f"Metric {self.name!r} expects a value per example, an array of shape ({len(outputs)}, ...) for a "
                f"batch of {len(outputs)}. Received: shape {values.shape}. Reduce over the other axes only (e.g. "
                "np.mean(..., axis=-1)), not over the batch."
            )
        return weighted_sums(values, np.ones(len(outputs)) if sample_weight is None else sample_weight)

    def finish(self, sums: Sums, examples: float) -> float:
        total, weight = (float(v) for v in np.asarray(sums).reshape(2))
        return total / weight if weight else 0.0

    def get_config(self) -> str | dict[str, Any]:
        return {"class_name": type(self).__name__, "config": self._settings()}


class MeanAbsolutePercentageError(MeanOfExamples):
    """Keras' MeanAbsolutePercentageError: 100 mean(|(y_true - y_pred) / max(|y_true|, 1e-7)|) over the last axis,
    then over the examples. Logged as "mean_absolute_percentage_error" (or `name`); by name "mape"."""

    direction = "down"

    def __init__(self, name: str = "mean_absolute_percentage_error"):
        self.name = str(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t, p = y_true.astype(np.float64), y_pred.astype(np.float64)
        return 100.0 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPSILON)), axis=-1)


class MeanSquaredLogarithmicError(MeanOfExamples):
    """Keras' MeanSquaredLogarithmicError: mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))^2) over
    the last axis, then over the examples. Logged as "mean_squared_logarithmic_error" (or `name`); by name "msle"."""

    direction = "down"

    def __init__(self, name: str = "mean_squared_logarithmic_error"):
        self.name = str(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t, p = y_true.astype(np.float64), y_pred.astype(np.float64)
        difference = np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))
        return np.mean(difference * difference, axis=-1)


class LogCoshError(MeanOfExamples):
    """Keras' LogCoshError: mean(log(cosh(y_pred - y_true))) over the last axis, computed as x + softplus(-2x) -
    log 2 (no overflow), then over the examples. Logged as "logcosh" (or `name`)."""

    direction = "down"

    def __init__(self, name: str = "logcosh"):
        self.name = str(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        x = y_pred.astype(np.float64) - y_true.astype(np.float64)
        return np.mean(x + np.logaddexp(0.0, -2.0 * x) - math.log(2.0), axis=-1)


class CosineSimilarity(MeanOfExamples):
    """Keras' CosineSimilarity: the sum over `axis` (default -1, the last; an axis of the batched output, not the
    batch's own) of the L2-normalised targets times the L2-normalised outputs, then its mean over the examples. A
    vector of norm 0 normalises to 0, as Keras' (x times min(1/norm, 1e7)). Logged as "cosine_similarity" (or
    `name`)."""

    direction = "up"

    def __init__(self, name: str = "cosine_similarity", axis: int = -1):
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or axis == 0:
            raise InvalidArgumentError(
                f"CosineSimilarity(axis=...) expects an int axis of the batched output other than the batch's (0), "
                f"e.g. -1. Received: axis={axis!r}"
            )
        self.name = str(name)
        self.axis = int(axis)

    def _settings(self) -> dict[str, Any]:
        return {"name": self.name, "axis": self.axis}

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        rank = len(output_shape) + 1  # with the batch axis, as Keras counts axes
        if not (-rank < self.axis < rank) or self.axis % rank == 0:
            raise InvalidArgumentError(
                f"CosineSimilarity(axis={self.axis}) names no axis of an output [batch, "
                f"{', '.join(map(str, output_shape))}] other than the batch's: use an axis in 1..{rank - 1}, or "
                f"-{rank - 1}..-1."
            )
        return 2

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t, p = _l2_normalized(y_true, self.axis), _l2_normalized(y_pred, self.axis)
        return np.sum(t * p, axis=self.axis)


class MeanMetricWrapper(MeanOfExamples):
    """Keras' MeanMetricWrapper: a function of one's own, `fn(y_true, y_pred)`, as a metric, the mean over the
    examples of the value it returns for each (`compile(metrics=[fn])` makes one). It computes in numpy on each
    batch: y_pred is a float32 array shaped like the output (under softmax cross-entropy the softmax of the outputs,
    as the Keras model outputs it); y_true the labels as given, as Keras passes them: class indices under a sparse
    loss (int64, [batch]: labels given as [batch, 1] arrive flat), else float32 targets shaped like the output.
    It returns one value per example, [batch] (or [batch, ...], averaged over each example's values), as Keras'
    metric functions do. As a metric of `weighted_metrics`, each example weighs its sample weight. An error the
    function raises comes back naming it and the arrays it received.

    Logged as `name`, by default the function's name. A save names the function: `load_model` rebuilds it where it
    was registered with `@onnxtrain.metrics.register`; otherwise pass it again (`load_model(d, metrics=[fn])`). A
    lambda has no name to save: `save` refuses it.

    Example:
        >>> def max_error(y_true, y_pred):
        ...     return np.max(np.abs(y_true - y_pred), axis=-1)
        >>> model.compile(optimizer="adam", loss="mse", metrics=[max_error])  # logs "max_error"
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any], name: str | None = None):
        if not callable(fn) or isinstance(fn, type):
            raise InvalidTypeError(
                f"MeanMetricWrapper(fn=...) expects a function fn(y_true, y_pred) returning a value per example. "
                f"Received: fn={fn!r}"
            )
        self.fn = fn
        self.name = function_name(fn) if name is None else str(name)

    def _settings(self) -> dict[str, Any]:
        return {"fn": self.fn, "name": self.name}

    def view(self, outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
        """Keras' view of the batch, but the labels as given: a function of one's own gets class indices as they
        are (Keras' MeanMetricWrapper passes y_true untouched), not the one-hot targets Keras' metric objects read."""
        y_pred, y_true = keras_view(outputs, labels, loss)
        return y_pred, (labels if loss.classification else y_true)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """The function's values for the batch.

        Raises:
            InvalidArgumentError: the function raised, naming it and the shapes and types it received.
        """
        try:
            return np.asarray(self.fn(y_true, y_pred))
        except Exception as e:
            raise InvalidArgumentError(
                f"Metric function {function_name(self.fn)!r} (metric {self.name!r}) raised {type(e).__name__}: "
                f"{str(e).strip()}. "
                f"It received y_true {y_true.dtype} {y_true.shape} and y_pred {y_pred.dtype} {y_pred.shape}; it "
                f"should return one value per example, shape ({len(y_pred)},)."
            ) from e

    def get_config(self) -> dict[str, Any]:
        """{"class_name": "MeanMetricWrapper", "config": {"fn": the function's name, "name": ...}}.

        Raises:
            InvalidArgumentError: a lambda or a callable without a name, which a save cannot name.
        """
        name = getattr(self.fn, "__name__", None)
        if not isinstance(name, str) or name == "<lambda>":
            what = "a lambda" if name == "<lambda>" else f"a {type(self.fn).__name__} without a __name__"
            raise InvalidArgumentError(
                f"Metric {self.name!r} is {what}, which a saved model cannot name, so it could not be loaded back. "
                "Define it as a function with def (a save names it; register it with @onnxtrain.metrics.register, "
                "or pass it to load_model(..., metrics=[...])), or compile without it before saving."
            )
        return {"class_name": "MeanMetricWrapper", "config": {"fn": name, "name": self.name}}


def function_name(fn: Any) -> str:
    """The key a metric function logs under: its `__name__` (Keras'), or its class's for a callable without one."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


class R2Score(Metric):
    """Keras' R2Score, the coefficient of determination of outputs [batch, columns], from per-column sums over the
    whole epoch (not a mean of batch scores): 1 - sum((y_true - y_pred)^2) / sum((y_true - mean(y_true))^2) per
    column (an infinite score counts 0, as Keras'), averaged "uniform_average" (the default) or
    "variance_weighted_average" (by each column's variance). Keras' `class_aggregation=None` gives one score per
    column, which a History entry (one number per epoch) cannot hold. With `num_regressors` p > 0, the adjusted
    score 1 - (1 - R2)(n - 1) / (n - p - 1), n the number of target values seen, as Keras' (its standard score,
    with a warning, where p >= n - 1). Sample weights weigh each example's values. Logged as "r2_score" (or `name`).
    """

    direction = "up"  # Keras' _direction: callbacks in mode "auto" maximize it

    def __init__(self, class_aggregation: str = "uniform_average", num_regressors: int = 0, name: str = "r2_score"):
        if class_aggregation not in CLASS_AGGREGATIONS:
            raise InvalidArgumentError(
                f"R2Score(class_aggregation=...) expects one of {list(CLASS_AGGREGATIONS)} (Keras' None, one score per "
                f"column, does not fit a History entry). Received: class_aggregation={class_aggregation!r}"
            )
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, int | np.integer) or num_regressors < 0:
            raise InvalidArgumentError(
                f"R2Score(num_regressors=...) expects an int >= 0. Received: num_regressors={num_regressors!r}"
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.name = str(name)

    def _settings(self) -> dict[str, Any]:
        return {"class_aggregation": self.class_aggregation, "num_regressors": self.num_regressors, "name": self.name}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, R2Score) and other._settings() == self._settings()

    def __hash__(self) -> int:
        return hash((R2Score, *self._settings().values()))

    def __repr__(self) -> str:
        return f"R2Score({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        if len(output_shape) != 1:
            raise InvalidArgumentError(
                f"R2Score reads outputs [batch, columns], as Keras'. Received: an output of shape {output_shape}."
            )
        return 4 * output_shape[0] + 1  # per column: sum, sum of squares, residual, weight; and the values seen

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        y_pred, y_true = keras_view(outputs, labels, loss)
        p = y_pred.reshape(len(y_pred), -1).astype(np.float64)
        t = y_true.reshape(len(y_true), -1).astype(np.float64)
        w = np.ones((len(t), 1)) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1, 1)
        w = np.broadcast_to(w, t.shape)
        columns = [np.sum(t * w, axis=0), np.sum(t * t * w, axis=0), np.sum((t - p) ** 2 * w, axis=0), w.sum(axis=0)]
        return np.concatenate([*columns, np.array([float(t.size)])])

    def finish(self, sums: Sums, examples: float) -> float:
        vector = np.asarray(sums, np.float64)
        total_sum, squared_sum, residual, count = vector[:-1].reshape(4, -1)
        samples = float(vector[-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total_sum / count
            total = squared_sum - total_sum * mean
            raw = 1.0 - residual / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = float(np.mean(raw))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                score = float(np.sum(total * raw) / np.sum(total))
        p = self.num_regressors
        if p == 0:
            return score
        if p >= samples - 1:
            why = "More independent predictors than datapoints" if p > samples - 1 else "Division by zero"
            warnings.warn(
                f"{why} in adjusted R2 score (num_regressors={p}, {samples:g} target values): R2Score "
                f"{self.name!r} falls back to the standard R2 score, as Keras'.",
                UserWarning,
                stacklevel=2,
            )
            return score
        return 1.0 - (1.0 - score) * (samples - 1.0) / (samples - p - 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "R2Score", "config": self._settings()}


def _l2_normalized(x: np.ndarray, axis: int) -> np.ndarray:
    """Keras' ops.normalize of order 2: x times min(1 / ||x||, 1 / epsilon) along `axis`."""
    x = x.astype(np.float64)
    squares = np.sum(x * x, axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        inverse = np.minimum(1.0 / np.sqrt(squares), 1.0 / EPSILON)
    return x * inverse
