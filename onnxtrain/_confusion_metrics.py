"""Keras' metrics over true and false positives at thresholds: Precision, Recall and AUC. Each batch adds its
counts (weighted by sample weights where the metric is a weighted one); the value comes from the epoch's counts,
as Keras' metric variables give it (keras/src/metrics/confusion_metrics.py, metrics_utils.py of Keras 3.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._metric_base import Metric, Shape, Sums, divide_no_nan, keras_view
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss

NEG_INF = -1e10  # Keras' threshold of a top_k precision or recall: every kept score is above it
EPSILON = 1e-7  # Keras' backend.epsilon(): AUC's end thresholds are -epsilon and 1 + epsilon


def confusion_counts(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    thresholds: np.ndarray,
    evenly: bool,
    sample_weight: np.ndarray | None,
    multi_label: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tp, fp, tn, fn) at each threshold, a prediction being positive where it is above the threshold: [T], or
    [T, labels] with `multi_label` (y_pred [N, labels]); else every element of y_pred counts alike.

    Evenly spaced thresholds (`evenly`) take Keras' bucket method, which clips predictions to [0, 1] and puts each in
    the bucket ceil(p (T - 1)) - 1, so the counts equal Keras' to the last prediction; others compare each pair.
    """
    positive = y_true != 0
    weights: np.ndarray = np.ones(y_pred.shape, np.float64)
    if sample_weight is not None:
        given = np.asarray(sample_weight, np.float64)  # [N], or [N, *positions] weighing each position
        weights = np.broadcast_to(given.reshape(*given.shape, *([1] * (y_pred.ndim - given.ndim))), y_pred.shape)
    shape: tuple[int, ...] = (len(y_pred), -1) if multi_label else (-1,)
    y_pred, positive, weights = y_pred.reshape(shape), positive.reshape(shape), weights.reshape(shape)
    true_w = np.where(positive, weights, 0.0)
    false_w = np.where(positive, 0.0, weights)
    count = len(thresholds)
    if evenly:
        # Keras' float32 arithmetic, so a prediction on a bucket edge lands where Keras puts it
        scaled = np.clip(y_pred.astype(np.float32), 0.0, 1.0) * np.float32(count - 1)
        bucket = np.ceil(scaled).astype(np.int64) - 1
        with_epsilon = thresholds[0] < 0.0 or thresholds[-1] > 1.0
        if with_epsilon:
            bucket = np.maximum(bucket, 0)
        kept = bucket >= 0  # (without the end thresholds, 0 is above no threshold: Keras drops its bucket -1)
        if multi_label:
            columns = int(y_pred.shape[-1])
            index = (bucket + count * np.arange(columns))[kept]
            tp_b = np.bincount(index, true_w[kept], count * columns).reshape(columns, count).T
            fp_b = np.bincount(index, false_w[kept], count * columns).reshape(columns, count).T
        else:
            tp_b = np.bincount(bucket[kept], true_w[kept], count)
            fp_b = np.bincount(bucket[kept], false_w[kept], count)
        tp = np.cumsum(tp_b[::-1], axis=0)[::-1]
        fp = np.cumsum(fp_b[::-1], axis=0)[::-1]
    else:
        above = y_pred.astype(np.float32)[None] > thresholds.astype(np.float32).reshape(-1, *([1] * y_pred.ndim))
        tp = (above * true_w).sum(axis=1)
        fp = (above * false_w).sum(axis=1)
    total_true, total_false = true_w.sum(axis=0), false_w.sum(axis=0)
    return tp, fp, total_false - fp, total_true - tp


def evenly_distributed(thresholds: np.ndarray) -> bool:
    """Keras' `is_evenly_distributed_thresholds`: at least 3, each i / (T - 1) to within epsilon."""
    count = len(thresholds)
    if count < 3:
        return False
    even = np.arange(count, dtype=np.float32) / (count - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def top_k_filtered(y_pred: np.ndarray, k: int) -> np.ndarray:
    """Keras' `_filter_top_k`: the k highest scores of the last axis kept (ties to the lower index), the rest
    NEG_INF."""
    order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(y_pred.shape, bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return np.where(mask, y_pred, np.float32(NEG_INF)).astype(np.float32)


def _class_id(metric: str, class_id: Any) -> int | None:
    if class_id is None:
        return None
    if isinstance(class_id, bool) or not isinstance(class_id, int | np.integer) or class_id < 0:
        raise InvalidArgumentError(f"{metric}(class_id=...) expects a class index >= 0 or None. Received: {class_id!r}")
    return int(class_id)


def _check_class_id(metric: str, class_id: int | None, output_shape: Shape) -> None:
    if class_id is not None and (not output_shape or class_id >= output_shape[-1]):
        raise InvalidArgumentError(
            f"{metric}(class_id={class_id}) reads one unit of the output's last axis, but the output has shape "
            f"{output_shape}. Give a class_id below {output_shape[-1] if output_shape else 1}."
        )


def _threshold(metric: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidTypeError(f"{metric}(thresholds=...) expects numbers in [0, 1]. Received: {value!r}")
    if not 0 <= value <= 1:
        raise InvalidArgumentError(f"{metric}(thresholds=...) expects numbers in [0, 1]. Received: {value!r}")
    return float(value)


class _PrecisionOrRecall(Metric):
    """Precision (tp / (tp + fp)) or Recall (tp / (tp + fn)) at one threshold, of every element of y_pred, of its
    `top_k` highest scores (`top_k`) or of one class (`class_id`), as Keras' Precision and Recall."""

    _default_name = ""
    direction = "up"  # Keras' _direction: callbacks in mode "auto" maximize it

    def __init__(
        self,
        thresholds: float | list[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
    ):
        kind = type(self).__name__
        given = thresholds
        if isinstance(given, list | tuple):
            if len(given) != 1:
                raise InvalidArgumentError(
                    f"{kind}(thresholds=...) takes one threshold: Keras' result for several is a vector, which a "
                    f"History entry (one number per epoch) cannot hold. Compile one {kind} per threshold, e.g. "
                    f"{kind}(thresholds=0.3, name='{self._default_name}_at_0.3'). Received: thresholds={given!r}"
                )
            given = given[0]
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1):
            raise InvalidArgumentError(f"{kind}(top_k=...) expects a positive int or None. Received: {top_k!r}")
        self.thresholds = None if given is None else _threshold(kind, given)
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = _class_id(kind, class_id)
        self.name = self._default_name if name is None else str(name)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), *vars(self).values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        _check_class_id(type(self).__name__, self.class_id, output_shape)
        return 2

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        y_pred, y_true = keras_view(outputs, labels, loss)
        if self.top_k is not None:
            y_pred = top_k_filtered(y_pred, self.top_k)
        if self.class_id is not None:
            y_pred, y_true = y_pred[..., self.class_id], y_true[..., self.class_id]
        default = 0.5 if self.top_k is None else NEG_INF
        threshold = np.array([default if self.thresholds is None else self.thresholds])
        tp, fp, _, fn = confusion_counts(y_true, y_pred, threshold, False, sample_weight)
        return np.array([tp[0], fp[0] if isinstance(self, Precision) else fn[0]])

    def finish(self, sums: Sums, examples: float) -> float:
        tp, other = np.asarray(sums)
        return float(divide_no_nan(tp, tp + other))

    def get_config(self) -> dict[str, Any]:
        return {"class_name": type(self).__name__, "config": dict(vars(self))}


class Precision(_PrecisionOrRecall):
    """Keras' Precision: tp / (tp + fp) over the epoch, a prediction positive above `thresholds` (default 0.5; with
    `top_k`, among the k highest scores of an example, and above `thresholds` when given), of one class with
    `class_id`. Logged as "precision" (or `name`).

    Example: `compile(..., metrics=[Precision(), Precision(class_id=2, name="precision_2")])`
    """

    _default_name = "precision"


class Recall(_PrecisionOrRecall):
    """Keras' Recall: tp / (tp + fn) over the epoch; arguments as `Precision`'s. Logged as "recall" (or `name`)."""

    _default_name = "recall"


class AUC(Metric):
    """Keras' AUC: the area under the ROC curve (`curve="ROC"`) or the precision-recall curve (`"PR"`), from the
    epoch's tp/fp/tn/fn at `num_thresholds` evenly spaced thresholds (or at `thresholds`), plus -epsilon and
    1 + epsilon. `summation_method` "interpolation" (Keras' default: the trapezoid for ROC, Davis & Goadrich's
    interpolation for PR), "minoring" or "majoring"; `multi_label` keeps each unit's counts and averages the units'
    AUCs (an output [batch, labels]); `from_logits` applies a sigmoid first. Logged as "auc" (or `name`).
    """

    direction = "up"

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        thresholds: list[float] | None = None,
        multi_label: bool = False,
        from_logits: bool = False,
    ):
        if str(curve).upper() not in ("ROC", "PR"):
            raise InvalidArgumentError(f'AUC(curve=...) expects "ROC" or "PR". Received: curve={curve!r}')
        methods = ("interpolation", "minoring", "majoring")
        if str(summation_method).lower() not in methods:
            raise InvalidArgumentError(
                f"AUC(summation_method=...) expects one of {list(methods)}. Received: {summation_method!r}"
            )
        for argument, flag in (("multi_label", multi_label), ("from_logits", from_logits)):
            if not isinstance(flag, bool | np.bool_):
                raise InvalidTypeError(f"AUC({argument}=...) expects a bool. Received: {flag!r}")
        if thresholds is not None:
            given = sorted(_threshold("AUC", t) for t in thresholds)
            num_thresholds = len(given) + 2
            self._evenly = evenly_distributed(np.array([0.0, *given, 1.0]))
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) or num_thresholds <= 1:
                raise InvalidArgumentError(
                    f"AUC(num_thresholds=...) expects an int > 1. Received: num_thresholds={num_thresholds!r}"
                )
            given = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self.thresholds = None if thresholds is None else given
        self.num_thresholds = int(num_thresholds)
        self.curve = str(curve).upper()
        self.summation_method = str(summation_method).lower()
        self.multi_label = bool(multi_label)
        self.from_logits = bool(from_logits)
        self.name = "auc" if name is None else str(name)
        self._all_thresholds = np.array([0.0 - EPSILON, *given, 1.0 + EPSILON])

    def _settings(self) -> dict[str, Any]:
        return {
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "name": self.name,
            "thresholds": self.thresholds,
            "multi_label": self.multi_label,
            "from_logits": self.from_logits,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AUC) and other._settings() == self._settings()

    def __hash__(self) -> int:
        return hash(repr(self._settings()))

    def __repr__(self) -> str:
        return f"AUC({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        if self.multi_label and len(output_shape) != 1:
            raise InvalidArgumentError(
                f"AUC(multi_label=True) reads outputs [batch, labels], as Keras' (y_pred of rank 2). Received: an "
                f"output of shape {output_shape}."
            )
        return 4 * self.num_thresholds * (output_shape[-1] if self.multi_label else 1)

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        y_pred, y_true = keras_view(outputs, labels, loss)
        if self.from_logits:
            y_pred = 1.0 / (1.0 + np.exp(-y_pred.astype(np.float32)))
        counts = confusion_counts(y_true, y_pred, self._all_thresholds, self._evenly, sample_weight, self.multi_label)
        return np.concatenate([np.ravel(c) for c in counts])

    def finish(self, sums: Sums, examples: float) -> float:
        tp, fp, tn, fn = np.asarray(sums, np.float64).reshape(4, self.num_thresholds, -1)
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = _interpolated_pr_terms(tp, fp, fn)
        else:
            recall = divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, divide_no_nan(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        by_label = terms.sum(axis=0)
        return float(by_label.mean() if self.multi_label else by_label[0])

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "AUC", "config": self._settings()}


def _interpolated_pr_terms(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Keras' `interpolate_pr_auc`: each interval's area with tp and the predicted positives varying linearly."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = divide_no_nan(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
    return divide_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))
