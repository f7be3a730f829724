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
        made them, `sample_weight` one weight per example (a metric of `weighted_metrics`; None: unweighted)."""
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
    """A metric of compile's `weighted_metrics`: `metric` with each example weighted by its sample weight (fit's
    `sample_weight`, `class_weight`, or validation data's third element), as Keras weighs them; with no weights,
    every example weighs 1. `name` is its key: the metric's name, or "weighted_<name>" where `metrics` already
    logs that name (Keras 3's rule)."""

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


def keras_view(outputs: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
    """A batch as Keras' metrics read it: (y_pred, y_true), both shaped like the output.

    y_pred is what the Keras model outputs: under softmax cross-entropy, whose graphs leave a last softmax out, the
    softmax of the engine's outputs (`predict_softly`'s values); else the outputs as they are (logits under binary
    cross-entropy from logits, as in Keras: AUC(from_logits=True), Precision(thresholds=0)). Class indices become
    one-hot targets (Keras' confusion metrics take targets shaped like the output).
    """
    y_pred = loss.probabilities(outputs) if loss.probability_op == "Softmax" else outputs
    if loss.classification:
        y_true = np.eye(outputs.shape[-1], dtype=np.float32)[labels.astype(np.int64)]
    else:
        y_true = labels.reshape(outputs.shape)
    return y_pred, y_true


def divide_no_nan(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (Keras' ops.divide_no_nan)."""
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)
