"""What every compiled metric is (`Metric`): a name, the sums each batch adds, and its value from an epoch's sums;
a metric of `weighted_metrics` (`WeightedMetric`); how metrics read a batch as Keras' y_pred and y_true; and the
metric classes of one's own, recorded as they are defined (`DEFINED`)."""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from onnxtrain.losses import Loss

Shape = tuple[int, ...]
Sums = float | np.ndarray  # what a metric keeps: one float, or a vector of `size` sums
# Metric subclasses of one's own (defined outside onnxtrain) by class name, as each is defined, as layer classes are
# recorded: a save names one by its class name (or its snake case), which `onnxtrain.metrics` finds here.
DEFINED: dict[str, type[Metric]] = {}


class Metric:
    """A compiled metric: its key in the logs, History and evaluate (`name`), what a batch adds to its sums
    (`batch_sum`: a float, or a vector of `size` floats) and its value from the sums of an epoch or an evaluation
    (`finish`). Everything a metric keeps is a sum, so sums add over batches and over data-parallel processes
    (one flat all-reduce), and the value comes from the total: a mean over all examples, not of batch means.

    A subclass defines `size`, `batch_sum`, `finish` and `get_config` (a name, where the name alone rebuilds it,
    or Keras' {"class_name": ..., "config": {...}}; by default its class name and, where `__init__` takes it, its
    `name`). A save holds that config, not the class's code: a class of one's own loads where it is defined or
    imported (its class is recorded then, as a layer's is), registered with `@onnxtrain.metrics.register`, or passed
    to `load_model` again (`load_model(d, metrics=[R2()])`, or `custom_objects={"R2": R2}`). A per-example numpy
    function needs no class: `compile(metrics=[fn])`.
    """

    name: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not (cls.__module__ == "onnxtrain" or cls.__module__.startswith("onnxtrain.")):
            DEFINED[cls.__name__] = cls

    @property
    def value(self) -> str:
        """The key in the logs (the name), as a `Metrics` member's `.value` is."""
        return self.name

    @property
    def direction(self) -> str | None:
        """Which way the metric improves, Keras' `_direction`: "up" (accuracies, precision, recall, AUC, F-scores),
        "down" (errors), or None where it does not say (a metric of one's own that does not override this).
        Callbacks in mode "auto" (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint) read it."""
        return None

    def size(self, output_shape: Shape, weighted: bool = False) -> int:
        """How many sums the metric keeps for an output of `output_shape` (per example); 1 is kept as a float.

        Raises:
            InvalidArgumentError: the metric cannot read such an output (compile calls this).
        """
        raise NotImplementedError

    def zeros(self, output_shape: Shape, weighted: bool = False) -> Sums:
        """The sums before the first batch."""
        size = self.size(output_shape, weighted)
        return 0.0 if size == 1 else np.zeros(size)

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        """What one batch adds to the sums: `outputs` as the engine returns them, `labels` as `loss.prepare_labels`
        made them, `sample_weight` (a metric of `weighted_metrics`; None: unweighted) one weight per example
        [batch], or for an output with positions before its last axis (a tagger's (T, C)) where fit or evaluate
        was given one per position, [batch, *positions] (`weighted_sums` reduces either as Keras does)."""
        raise NotImplementedError

    def finish(self, sums: Sums, examples: float) -> float:
        """The metric's value from its sums over `examples` examples."""
        raise NotImplementedError

    def get_config(self) -> str | dict[str, Any]:
        """Keras' {"class_name": ..., "config": {...}}: by default the class's name and, where its `__init__` takes
        it, the metric's `name`, which rebuild a class whose `__init__` needs no other argument.

        Raises:
            InvalidArgumentError: the class's `__init__` needs other arguments, which it must return (the save
                refuses the metric then, before writing anything).
        """
        cls = type(self)
        try:
            parameters = inspect.signature(cls).parameters
        except (TypeError, ValueError):  # no readable signature: the name alone
            parameters = {}  # type: ignore[assignment]
        takes = {
            name
            for name, p in parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.kind is p.VAR_KEYWORD
        }
        needed = [
            name
            for name, p in parameters.items()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
        ]
        if needed:
            raise InvalidArgumentError(
                f"Metric {getattr(self, 'name', cls.__name__)!r} ({cls.__name__}) could not be saved: a save names a "
                f"metric by its get_config(), and {cls.__name__}.__init__ needs {needed}, which the default config "
                "does not hold. Define get_config(self) to return {'class_name': "
                f"{cls.__name__!r}, 'config': {{...}}}} with them (or a name, where the class alone rebuilds it)."
            )
        takes_name = "name" in takes or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        return {"class_name": cls.__name__, "config": {"name": self.name} if takes_name else {}}

    def renamed(self, name: str) -> Metric:
        """This metric under another key (Keras' "precision_1" for a second metric named "precision")."""
        twin = copy.copy(self)
        object.__setattr__(twin, "name", name)
        return twin


@dataclass(frozen=True)
class WeightedMetric(Metric):
    """A metric of compile's `weighted_metrics`: `metric` with each example (or, given per position, each position of an
    output with steps) weighted by its sample weight (fit's `sample_weight`, `class_weight`, or validation data's third
    element), as Keras weighs them; with no weights, every example weighs 1. `name` is its key: the metric's name, or
    "weighted_<name>" where `metrics` already logs that name (Keras 3's rule)."""

    metric: Metric
    name: str

    @property
    def direction(self) -> str | None:
        return self.metric.direction

    def size(self, output_shape: Shape, weighted: bool = True) -> int:
        return self.metric.size(output_shape, weighted=True)

    def zeros(self, output_shape: Shape, weighted: bool = True) -> Sums:
        return np.zeros(self.size(output_shape))

    def batch_sum(
        self, outputs: np.ndarray, labels: np.ndarray, loss: Loss, sample_weight: np.ndarray | None = None
    ) -> Sums:
        weights = np.ones(len(outputs), np.float32) if sample_weight is None else sample_weight
        return np.atleast_1d(self.metric.batch_sum(outputs, labels, loss, weights))

    def finish(self, sums: Sums, examples: float) -> float:
        return self.metric.finish(sums, examples)

    def get_config(self) -> str | dict[str, Any]:
        return self.metric.get_config()


def weighted_slots(weighted: tuple[Metric, ...], taken: list[str]) -> tuple[WeightedMetric, ...]:
    """`weighted_metrics` keyed as Keras 3 keys them: by name, or "weighted_<name>" where `taken` (the names of
    `metrics`, or ones before) already holds the name."""
    slots: list[WeightedMetric] = []
    names = list(taken)
    for metric in dict.fromkeys(weighted):
        name = metric.name if metric.name not in names else f"weighted_{metric.name}"
        names.append(name)
        slots.append(WeightedMetric(metric, name))
    return tuple(slots)


def unique_names(metrics: list[Metric]) -> tuple[Metric, ...]:
    """The metrics with equal ones given once, and a name taken by an earlier, different metric suffixed as Keras
    does ("precision", "precision_1")."""
    result: list[Metric] = []
    counts: dict[str, int] = {}
    for metric in dict.fromkeys(metrics):
        if metric.name in counts:
            counts[metric.name] += 1
            metric = metric.renamed(f"{metric.name}_{counts[metric.name] - 1}")
        counts.setdefault(metric.name, 1)
        result.append(metric)
    return tuple(result)


def model_outputs(outputs: np.ndarray, loss: Loss) -> np.ndarray:
    """A batch's outputs as the Keras model outputs them, which Keras' metrics read as y_pred: under softmax
    cross-entropy that does not say `from_logits=True` (the model ends in a softmax, which the graphs leave to the
    loss; or KotlinDL's loss, whose metrics read the softmax), the softmax of the engine's outputs (`predict_softly`'s
    values); else the outputs as they are: the logits of a loss with `from_logits=True` (Keras' model ends in them,
    and its metrics read them: CosineSimilarity, the errors, AUC(from_logits=True), Precision(thresholds=0)), a
    regression's values, a sigmoid's probabilities."""
    return loss.probabilities(outputs) if reads_softmax(loss) else outputs


def reads_softmax(loss: Loss) -> bool:
    """Whether the metrics under `loss` read the softmax of the engine's outputs (`model_outputs`)."""
    return loss.probability_op == "Softmax" and not getattr(loss, "from_logits", False)


def keras_view(outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
    """A batch as Keras' metrics read it: (y_pred, y_true), both shaped like the output.

    y_pred is what the Keras model outputs (`model_outputs`). Class indices become one-hot targets (Keras'
    confusion metrics take targets shaped like the output), one per example or per position.
    """
    y_pred = model_outputs(outputs, loss)
    if loss.classification:
        y_true = np.eye(outputs.shape[-1], dtype=np.float32)[labels.astype(np.int64)]
    else:
        y_true = labels.reshape(outputs.shape)
    return y_pred, y_true


def weighted_sums(values: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
    """[sum of w v, sum of w] over a batch, as Keras' weighted `Mean` reduces them (`reduce_to_samplewise_values`):
    `values` [batch, *positions, ...] (an example's values, or each position's), `sample_weight` one weight per
    example [batch] or per position [batch, *positions]. Each value beyond the weights' axes is averaged first,
    then each example adds the mean over its positions of w v, and of w: the ratio of the sums is the weighted
    mean over every position (each position's values weigh its weight). An example of one value (a metric that
    reduces its positions itself) weighs the mean of its positions' weights."""
    weights = np.asarray(sample_weight, np.float64).reshape(len(values), -1)
    flat = np.asarray(values, np.float64).reshape(len(values), -1)
    if flat.shape[1] % weights.shape[1]:  # one value per example, weights per position: their mean weighs it
        weights = weights.mean(axis=1, keepdims=True)
    means = flat.reshape(*weights.shape, -1).mean(axis=2)
    return np.array([float((means * weights).mean(axis=1).sum()), float(weights.mean(axis=1).sum())])


def divide_no_nan(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (Keras' ops.divide_no_nan)."""
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)
