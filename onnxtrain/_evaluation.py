"""The figures of a model over batches: what each batch adds to the metric sums of an epoch or an evaluation
(`BatchFigures`), their names in the logs (`log_key`), the loop of `evaluate` and fit's validation
(`evaluate_batches`, over arrays or the batches of a generator or PyDataset), and which epochs validate (Keras'
`validation_freq`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from onnxtrain._batch_stream import BatchStream
from onnxtrain._batches import Batches, batch_arrays
from onnxtrain._float_env import FlushToZero
from onnxtrain._metric_base import Metric, Sums
from onnxtrain._sample_weights import WeightedEngine
from onnxtrain.distributed._communicator import Communicator, local_rows
from onnxtrain.engine import Engine
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.history import EvaluationResult, MetricValues
from onnxtrain.losses import Loss
from onnxtrain.metrics import Metrics
from onnxtrain.multi_output import OutputLosses
from onnxtrain.progress import Progress

FigureKey = Metric | str
FigureSums = dict[FigureKey, Sums]


@dataclass(frozen=True)
class BatchFigures:
    """The figures summed over a batch's examples besides the loss: the compiled `metrics` and
    `weighted_metrics`, or, for a model of several outputs, each output's loss and metrics (`outputs`).

    Each figure keeps sums (a float, or a vector for a metric such as AUC: `Metric.size`), which add over batches
    and processes; `means` turns an epoch's sums into the values the logs show.

    Args:
        metrics: the metrics `compile` asked for.
        loss: the compiled loss (how a metric reads labels and outputs).
        outputs: each output's loss, weight and metrics (None for a model of one output).
        output_shape: the shape of the model's output (one output), which sizes a metric's sums.
        weighted_metrics: compile's `weighted_metrics` (one output), which weigh each example by its sample weight.
    """

    metrics: tuple[Metric, ...]
    loss: Loss
    outputs: OutputLosses | None = None
    output_shape: tuple[int, ...] = ()
    weighted_metrics: tuple[Metric, ...] = ()

    def keys(self) -> list[FigureKey]:
        """What `batch_sums` returns sums of, in order."""
        if self.outputs is not None:
            return list(self.outputs.keys())
        return [*self.metrics, *self.weighted_metrics]

    def zeros(self) -> FigureSums:
        """The sums before the first batch: a fresh 0.0 or zero vector per figure."""
        if self.outputs is not None:
            zeros: FigureSums = {key: value for key, value in self.outputs.zeros().items()}
            return zeros
        return {metric: metric.zeros(self.output_shape) for metric in (*self.metrics, *self.weighted_metrics)}

    def batch_sums(
        self, outputs: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> FigureSums:
        """Each figure summed over a batch's examples; `sample_weight` (the batch's, [batch] or per position
        [batch, *positions], or None) weighs the `weighted_metrics` only."""
        if self.outputs is not None:
            per_output: FigureSums = {
                key: value for key, value in self.outputs.batch_sums(outputs, labels, sample_weight).items()
            }
            return per_output
        sums: FigureSums = {metric: metric.batch_sum(outputs, labels, self.loss) for metric in self.metrics}
        for metric in self.weighted_metrics:
            sums[metric] = metric.batch_sum(outputs, labels, self.loss, sample_weight)
        return sums

    def means(self, sums: FigureSums, examples: float) -> dict[FigureKey, float]:
        """The figures from their sums over `examples` examples: a loss's mean, each metric's `finish` (the mean,
        RMSE's root of it, AUC's area from its counts)."""
        finishers = self.finishers
        count = max(examples, 1)
        return {
            key: finishers[key].finish(s, examples) if key in finishers else float(s) / count for key, s in sums.items()
        }

    def directions(self) -> dict[str, str]:
        """Which way each figure of the logs improves, by log key ("up" or "down", Keras' `_direction`): the
        losses down, each metric as it says (`Metric.direction`); a metric that does not say is left out."""
        directions = {"loss": "down"}
        if self.outputs is not None:
            directions.update({key: "down" for key in self.outputs.keys() if key not in self.finishers})
        for key, metric in self.finishers.items():
            if metric.direction is not None:
                directions[log_key(key)] = metric.direction
        return directions

    @cached_property
    def finishers(self) -> dict[FigureKey, Metric]:
        """The metric behind each key that is one (made once: `means` runs per batch where batch logs are read)."""
        if self.outputs is None:
            return {metric: metric for metric in (*self.metrics, *self.weighted_metrics)}
        return dict(self.outputs.metric_keys().items())


def all_reduce_figures(
    communicator: Communicator, sums: FigureSums, counts: list[float]
) -> tuple[FigureSums, list[float]]:
    """`sums` and `counts` summed over every process: one float64 buffer, each figure's vector flattened into it."""
    parts = [np.atleast_1d(np.asarray(value, np.float64)) for value in sums.values()]
    buffer = np.concatenate([*parts, np.asarray(counts, np.float64)])
    communicator.all_reduce_sum(buffer)
    reduced: FigureSums = {}
    start = 0
    for (key, value), part in zip(sums.items(), parts, strict=True):
        chunk = buffer[start : start + part.size]
        start += part.size
        reduced[key] = chunk.copy() if isinstance(value, np.ndarray) else float(chunk[0])
    return reduced, [float(v) for v in buffer[start:]]


def log_key(metric: Metrics | Metric | str) -> str:
    """A figure's name in the logs: a metric's name as compile was given it (Keras 3's key: "acc" for "acc"), or
    the name a model of several outputs gives it ("<output>_<metric name>")."""
    return metric.value if isinstance(metric, Metrics | Metric) else metric


def evaluate_batches(
    engine: Engine,
    data: Batches | BatchStream,
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
    w_i l_i over the examples, as Keras'; the metrics stay unweighted, as Keras' `metrics`, and the
    `weighted_metrics` weigh each example by its weight (each position, where the weights are per position). A
    `BatchStream` (evaluated alone: fit refuses one in a data-parallel world) gives its batches as they come,
    `batch_size` aside: its next pass (`evaluate_stream`)."""
    if isinstance(data, BatchStream):
        return evaluate_stream(engine, data, figures, flush, progress, weighted)
    loss_sum = 0.0
    metric_sums = figures.zeros()
    n = len(data)
    if communicator is not None:
        share = local_rows(0, n, communicator.rank, communicator.size)
        data = Batches(data.x[share], data.y[share], w=None if data.w is None else data.w[share])
    weights = data.w
    assert weights is None or weighted is not None, "weighted data needs the engine as a WeightedEngine"
    with flush.active():  # no user code in this loop: one float-mode switch for all of it
        for start in range(0, len(data), batch_size):
            xb, yb = data.x[start : start + batch_size], data.y[start : start + batch_size]
            wb = None
            if weights is None:
                loss, outputs = engine.eval_step(batch_arrays(xb), yb)
            else:
                assert weighted is not None
                wb = weights[start : start + batch_size]
                loss, outputs = weighted.eval_step(batch_arrays(xb), yb, sample_weight=wb)
            loss_sum += loss * len(xb)
            for metric, value in figures.batch_sums(outputs, yb, wb).items():
                metric_sums[metric] += value
            if progress is not None and progress.wants_batches:
                seen = start + len(xb)
                progress.batch_end(start // batch_size + 1, {"loss": loss_sum / seen})
    examples: float = len(data)
    if communicator is not None:  # the sums and the count over every process's share
        metric_sums, (loss_sum, examples) = all_reduce_figures(communicator, metric_sums, [loss_sum, examples])
    return EvaluationResult(loss_sum / examples, MetricValues(figures.means(metric_sums, examples)))


def evaluate_stream(
    engine: Engine,
    data: BatchStream,
    figures: BatchFigures,
    flush: FlushToZero,
    progress: Progress | None = None,
    weighted: WeightedEngine | None = None,
) -> EvaluationResult:
    """`evaluate_batches` over the next pass of `data`'s batches (each read and checked as it comes: the reading
    is user code, run in the caller's float mode), weighing each batch's mean by its examples as arrays are."""
    loss_sum, seen = 0.0, 0
    metric_sums = figures.zeros()
    assert data.w is None or weighted is not None, "weighted data needs the engine as a WeightedEngine"
    for step, batch in enumerate(data.batches(), start=1):
        with flush.active():
            if batch.w is None:
                loss, outputs = engine.eval_step(batch_arrays(batch.x), batch.y)
            else:
                assert weighted is not None
                loss, outputs = weighted.eval_step(batch_arrays(batch.x), batch.y, sample_weight=batch.w)
        loss_sum += loss * len(batch)
        seen += len(batch)
        for metric, value in figures.batch_sums(outputs, batch.y, batch.w).items():
            metric_sums[metric] += value
        if progress is not None and progress.wants_batches:
            progress.batch_end(step, {"loss": loss_sum / seen})
    if not seen:  # (a stream's first pass has its first batch: only a later one can come up empty)
        raise InvalidArgumentError(f"{data.argument} expects batches to evaluate. Received: none")
    return EvaluationResult(loss_sum / seen, MetricValues(figures.means(metric_sums, seen)))


ValidationFreq = int | tuple[int, ...]


def check_validation_freq(value: Any) -> ValidationFreq:
    """Keras' `validation_freq`: validate every `value`-th epoch (an int), or after the epochs listed.

    Raises:
        InvalidArgumentError: neither a positive int nor a list of positive ints.
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1:
        return int(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes) and value:
        if all(isinstance(e, int | np.integer) and not isinstance(e, bool) and e >= 1 for e in value):
            return tuple(int(e) for e in value)
    raise InvalidArgumentError(
        "fit(validation_freq=...) expects a positive int (validate every that many epochs: 2 validates after "
        "epochs 2, 4, ...) or a list of epoch numbers, counted from 1 (validate after those: [1, 5, 10]). "
        f"Received: validation_freq={value!r}"
    )


def validates(epoch: int, validation_freq: ValidationFreq) -> bool:
    """Whether fit validates after `epoch` (counted from 1 over the model's epochs, as with Keras'
    `initial_epoch`), as Keras' `_should_eval`."""
    if isinstance(validation_freq, int):
        return epoch % validation_freq == 0
    return epoch in validation_freq
