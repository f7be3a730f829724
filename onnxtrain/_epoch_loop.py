"""The epoch loop of `Trainer.fit`: one epoch's engine steps over its batches (`_train_epoch`), the running and
the epoch's figures it logs, and the message of a loss that became non-finite.

Per-batch work is kept to the engine call plus one small numpy reduction for the metrics; everything else
(validation of data and labels, shuffling) happens once per call or once per epoch, in `training.Trainer.fit`.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, cast

import numpy as np

from onnxtrain._batch_stream import BatchStream
from onnxtrain._batches import Batches, batch_arrays, empty_rows, gather
from onnxtrain._data_parallel_fit import agree_on_step, any_process
from onnxtrain._evaluation import BatchFigures, FigureSums, all_reduce_figures, log_key
from onnxtrain._finite_weights import describe_non_finite, non_finite_weights
from onnxtrain._padding_examples import padding_note
from onnxtrain.callbacks import CallbackList
from onnxtrain.callbacks._base import sorted_logs
from onnxtrain.distributed._communicator import Communicator, local_rows
from onnxtrain.errors import NonFiniteLossError
from onnxtrain.optimizers.schedules import rate_at
from onnxtrain.progress import Progress

if TYPE_CHECKING:
    from onnxtrain._float_env import FlushToZero
    from onnxtrain._prediction import Predictor
    from onnxtrain._sample_weights import WeightedEngine
    from onnxtrain._trained_model import TrainedModel
    from onnxtrain.engine import Engine
    from onnxtrain.optimizers import LearningRateSchedule


class EpochLoop:
    """The epoch loop of `fit` (see the module docstring); a `Trainer` is one."""

    if TYPE_CHECKING:  # what `Trainer` holds, and what its fit sets before the first epoch
        model: TrainedModel
        engine: Engine
        communicator: Communicator | None
        steps_trained: int
        _flush: FlushToZero
        _predictor: Predictor
        _figures: BatchFigures
        _schedule: LearningRateSchedule | None
        _weighted_engine: WeightedEngine | None
        _agree_each_batch: bool
        _batch_logs_everywhere: bool

    def _train_epoch(
        self,
        train: Batches | BatchStream,
        batch_size: int,
        steps: int | None,
        order: np.ndarray | None,
        epoch: int,
        progress: Progress,
        callbacks: CallbackList,
    ) -> dict[str, float]:
        """Train the first `steps` batches of `train` in `order` (None: as they are); of a BatchStream (a generator,
        a PyDataset), the batches it gives for `epoch` (`steps` of them, or, where None, until a generator ends)."""
        loss_sum, seen = 0.0, 0
        local_seen = 0  # the examples of this process, over which the metric sums run (`seen` counts every process's)
        metric_sums = self._figures.zeros()
        communicator = self.communicator
        # Shuffled batches are gathered into reused buffers (one per input, and the labels'): a fresh 300 KB array
        # per batch would cost an mmap/munmap pair and page faults every step.
        stream = train.batches(epoch) if isinstance(train, BatchStream) else None
        arrays = cast(Batches, train)  # (a stream's batches come from `stream`, read as arrays are)
        buffer_rows = min(batch_size, len(arrays)) if order is not None else 0  # none beyond the data
        if communicator is not None:
            buffer_rows = math.ceil(buffer_rows / communicator.size)
        x_buffer = empty_rows(arrays.x, buffer_rows) if order is not None else None
        y_buffer = empty_rows(arrays.y, buffer_rows) if order is not None else None
        weights = arrays.w
        w_buffer = empty_rows(weights, buffer_rows) if order is not None and weights is not None else None
        wb = None
        # A callback that set the rate in some processes only (at an epoch's end or start) is refused before a step
        # uses it; where a process has a batch-begin hook, so is one set there, before each step.
        rates_each_step = communicator is not None and agree_on_step(
            communicator, self.engine.learning_rate, f"when epoch {epoch} started", callbacks.wants_batch_begin
        )
        try:
            # a stream's own end ends the epoch (its last next() runs a PyDataset's on_epoch_end); arrays count
            for step in itertools.count() if stream is not None else range(steps or 0):
                if stream is not None:  # the next batch of a generator or PyDataset, read and checked (user code)
                    batch = next(stream, None)
                    if batch is None:
                        break
                    xb, yb, wb, n, first_row = batch.x, batch.y, batch.w, len(batch), 0
                else:
                    rows = slice(step * batch_size, (step + 1) * batch_size)
                    n = min(rows.stop, len(arrays)) - rows.start  # the global batch's
                    if communicator is not None:  # this process's rows of it
                        rows = local_rows(rows.start, rows.start + n, communicator.rank, communicator.size)
                    if order is None:
                        xb, yb = arrays.x[rows], arrays.y[rows]
                        wb = None if weights is None else weights[rows]
                    else:
                        assert x_buffer is not None and y_buffer is not None  # allocated above whenever order is set
                        index = order[rows]
                        xb, yb = gather(arrays.x, index, x_buffer), gather(arrays.y, index, y_buffer)
                        wb = None if w_buffer is None else gather(weights, index, w_buffer)
                    # where this process's rows start in the global batch (data-parallel): Dropout's masks go by it
                    first_row = 0 if communicator is None else rows.start - step * batch_size
                if self._schedule is not None:  # Keras: schedule(optimizer.iterations), the updates so far
                    self.engine.learning_rate = rate_at(self._schedule, self.steps_trained)
                if callbacks.wants_batch_begin:
                    with self._flush.suspended():  # callbacks are user code: the caller's float mode (_float_env.py)
                        callbacks.on_batch_begin(step + 1)
                if rates_each_step:
                    assert communicator is not None
                    agree_on_step(communicator, self.engine.learning_rate, f"before batch {step + 1} of epoch {epoch}")
                if wb is not None:
                    assert self._weighted_engine is not None  # fit checked that the engine takes weights
                    loss, outputs = self._weighted_engine.train_step(batch_arrays(xb), yb, first_row, wb)
                elif communicator is None:
                    loss, outputs = self.engine.train_step(batch_arrays(xb), yb)
                else:
                    loss, outputs = self.engine.train_step(batch_arrays(xb), yb, first_row=first_row)
                self._predictor.invalidate()
                if not math.isfinite(loss):  # distributed: the loss of all processes, so all of them are here
                    # A callback that stops training here (TerminateOnNaN) makes this a graceful stop; its logs
                    # (the epoch's in the History then) hold the figures of every process's rows.
                    logs = self._logs(loss, self._running_metric_logs(metric_sums, local_seen))
                    with self._flush.suspended():  # fit may hold the float mode for the epoch; callbacks are user code
                        callbacks.on_batch_end(step + 1, logs)
                    if communicator is not None:
                        self.model.stop_training = any_process(communicator, self.model.stop_training)
                    if self.model.stop_training:
                        return logs
                    # the batch's rows in the data, which the message names where they are padding only
                    in_data = None if stream is not None else (np.arange(len(arrays)) if order is None else order)[rows]
                    note = padding_note(self.model.graph, batch_arrays(xb), in_data)
                    raise NonFiniteLossError(self._non_finite_loss(loss, epoch, step + 1, steps, note))
                self.steps_trained += 1  # a finite loss: the engine updated the weights
                loss_sum += loss * n
                seen += n
                local_seen += len(xb)
                for metric, value in self._figures.batch_sums(outputs, yb, wb).items():
                    metric_sums[metric] += value
                # (every process alike in a data-parallel fit, where the local wishes imply the agreed flag)
                if progress.wants_batches or callbacks.wants_batches or self._batch_logs_everywhere:
                    logs = self._logs(loss_sum / seen, self._running_metric_logs(metric_sums, local_seen))
                    progress.batch_end(step + 1, logs)
                    with self._flush.suspended():
                        callbacks.on_batch_end(step + 1, logs)
                    if self._agree_each_batch and communicator is not None:  # a stop, and the rate for the next step
                        self.model.stop_training = agree_on_step(
                            communicator,
                            self.engine.learning_rate,
                            f"after batch {step + 1} of epoch {epoch}",
                            self.model.stop_training,
                        )
                    if self.model.stop_training:
                        break
        except KeyboardInterrupt:
            self.engine.reset_gradients()  # a step cut short must not leak its gradients into the next one
            self._predictor.invalidate()  # the interrupted step may have updated the weights
            raise
        examples: float = local_seen
        if communicator is not None:  # the metrics over every process's examples
            metric_sums, (examples,) = all_reduce_figures(communicator, metric_sums, [local_seen])
        return self._logs(loss_sum / seen, self._metric_logs(metric_sums, examples))

    def _non_finite_loss(self, loss: float, epoch: int, batch: int, steps: int | None, note: str = "") -> str:
        """NonFiniteLossError's message: where the loss became non-finite and, from one look at the weights, what
        they are now: those of the last finite step, or (an update of finite gradients that overflowed, say)
        non-finite, which no later step or save can use; then `note` (examples of the batch that are padding only,
        `padding_note`) before the usual fixes."""
        where = f"The loss became {loss} at epoch {epoch}, batch {batch}/{steps or '?'}; training stopped"
        fix = "Lower the learning rate, check the inputs for extreme values, or clip gradients (Adam(clip_norm=1.0))."
        broken = non_finite_weights(self.engine.get_weights())
        if not broken:
            kept = "and the weights of the last finite step were kept (that batch's update was skipped)."
            return f"{where} {kept}{note} {fix}"
        return (
            f"{where}, and the model's weights are no longer usable: {describe_non_finite(broken)} hold NaN or inf, "
            "made by the update before that batch (its loss was still finite). Predictions and evaluate would use "
            "them, and save refuses them. Start again from a saved model (load_model) or from finite weights "
            f"(set_weights, load_weights), then train again.{note} {fix}"
        )

    def _metric_logs(self, sums: FigureSums, examples: float) -> dict[str, float]:
        return {log_key(m): value for m, value in self._figures.means(sums, examples).items()}

    def _logs(self, loss: float, metric_logs: dict[str, float]) -> dict[str, float]:
        """A batch's or an epoch's logs: "loss" and the metrics, sorted by key as Keras 3 gives them to the
        callbacks and the progress bar (`callbacks._base.sorted_logs`)."""
        return sorted_logs({"loss": loss, **metric_logs})

    def _running_metric_logs(self, sums: FigureSums, local_examples: int) -> dict[str, float]:
        """The epoch's running metrics so far; in a data-parallel fit over every process's rows, as one process on
        the global batches gives them (one all-reduce of the sums, which every process makes at the same batch)."""
        if self.communicator is None or not sums:
            return self._metric_logs(sums, local_examples)
        totals, (examples,) = all_reduce_figures(self.communicator, sums, [local_examples])
        return self._metric_logs(totals, examples)
