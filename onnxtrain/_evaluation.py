"""The figures of a model over batches: what each batch adds to the metric sums of an epoch or an evaluation
(`BatchFigures`), their names in the logs (`log_key`), and the loop of `evaluate` and fit's validation
(`evaluate_batches`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxtrain._batches import Batches, batch_arrays
from onnxtrain._float_env import FlushToZero
from onnxtrain._sample_weights import WeightedEngine
from onnxtrain.distributed._communicator import Communicator, local_rows
from onnxtrain.distributed._reduce import all_reduce_sums
from onnxtrain.engine import Engine
from onnxtrain.history import EvaluationResult, MetricValues
from onnxtrain.losses import Loss
from onnxtrain.metrics import Metrics, NamedMetric
from onnxtrain.multi_output import OutputLosses
from onnxtrain.progress import Progress


@dataclass(frozen=True)
class BatchFigures:
    """The figures summed over a batch's examples besides the loss: the compiled `metrics`, or, for a model of
    several outputs, each output's loss and metrics (`outputs`).

    Args:
        metrics: the metrics `compile` asked for.
        loss: the compiled loss (how `Metrics.batch_sum` reads labels and outputs).
        outputs: each output's loss, weight and metrics (None for a model of one output).
    """

    metrics: tuple[NamedMetric, ...]
    loss: Loss
    outputs: OutputLosses | None = None

    def keys(self) -> list[NamedMetric | str]:
        """What `batch_sums` returns sums of, in order."""
        return list(self.metrics) if self.outputs is None else list(self.outputs.keys())

    def batch_sums(self, outputs: np.ndarray, labels: np.ndarray) -> dict[NamedMetric | str, float]:
        """Each figure summed over a batch's examples."""
        if self.outputs is not None:
            sums: dict[NamedMetric | str, float] = {k: v for k, v in self.outputs.batch_sums(outputs, labels).items()}
            return sums
        return {metric: metric.batch_sum(outputs, labels, self.loss) for metric in self.metrics}

    def means(self, sums: dict[NamedMetric | str, float], examples: float) -> dict[NamedMetric | str, float]:
        """The figures from their sums over `examples` examples: the means, finished by each metric (RMSE's root)."""
        finishers = self.finishers()
        count = max(examples, 1)
        return {key: finishers[key].finish(s / count) if key in finishers else s / count for key, s in sums.items()}

    def finishers(self) -> dict[NamedMetric | str, NamedMetric]:
        """The metric behind each key that is one."""
        if self.outputs is None:
            return {metric: metric for metric in self.metrics}
        return dict(self.outputs.metric_keys().items())


def log_key(metric: Metrics | NamedMetric | str) -> str:
    """A figure's name in the logs: a metric's name as compile was given it (Keras 3's key: "acc" for "acc"), or
    the name a model of several outputs gives it ("<output>_<metric name>")."""
    return metric.value if isinstance(metric, Metrics | NamedMetric) else metric


def evaluate_batches(
    engine: Engine,
    data: Batches,
    batch_size: int,
    figures: BatchFigures,
    flush: FlushToZero,
    progress: Progress | None = None,
    communicator: Communicator | None = None,
    weighted: WeightedEngine | None = None,
) -> EvaluationResult:
    """Loss and figures over `data`, `batch_size` rows per eval step of `engine`; with a `communicator` (fit's
    validation), each process evaluates its share of the rows and the sums are all-reduced. Data with sample
    weights (`data.w`) runs the weighted eval steps of `weighted` (the same engine): the loss is then the mean of
    w_i l_i over the examples, as Keras'; the metrics stay unweighted, as Keras' `metrics`."""
    loss_sum = 0.0
    metric_sums = dict.fromkeys(figures.keys(), 0.0)
    n = len(data)
    if communicator is not None:
        share = local_rows(0, n, communicator.rank, communicator.size)
        data = Batches(data.x[share], data.y[share], w=None if data.w is None else data.w[share])
    weights = data.w
    assert weights is None or weighted is not None, "weighted data needs the engine as a WeightedEngine"
    with flush.active():  # no user code in this loop: one float-mode switch for all of it
        for start in range(0, len(data), batch_size):
            xb, yb = data.x[start : start + batch_size], data.y[start : start + batch_size]
            if weights is None:
                loss, outputs = engine.eval_step(batch_arrays(xb), yb)
            else:
                assert weighted is not None
                wb = weights[start : start + batch_size]
                loss, outputs = weighted.eval_step(batch_arrays(xb), yb, sample_weight=wb)
            loss_sum += loss * len(xb)
            for metric, value in figures.batch_sums(outputs, yb).items():
                metric_sums[metric] += value
            if progress is not None and progress.wants_batches:
                seen = start + len(xb)
                progress.batch_end(start // batch_size + 1, {"loss": loss_sum / seen})
    examples: float = len(data)
    if communicator is not None:  # the sums and the count over every process's share
        loss_sum, examples, *sums = all_reduce_sums(communicator, [loss_sum, examples, *metric_sums.values()])
        metric_sums = dict(zip(metric_sums, sums, strict=True))
    return EvaluationResult(loss_sum / examples, MetricValues(figures.means(metric_sums, examples)))
