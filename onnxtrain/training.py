"""The training loop around an engine: fit, evaluate and predict over numpy batches.

Per-batch work is kept to the engine call plus one small numpy reduction for the metrics; everything else
(validation of data and labels, shuffling) happens once per call or once per epoch.

In a data-parallel fit (`onnxtrain.distributed.init()` before compile), every process takes process 0's counters
(epoch, step, learning rate), shuffles with the same (seed, epoch), takes its rows of each global batch
(`local_rows`) and gets the step's mean loss over all of them from the engine; the metrics (each batch's running
figures where anything reads them, and the epoch's) and the validation are all-reduced, and only process 0 prints
and runs the callbacks that write files.

Modules of their own: the batches the loop reads (`_batches`), the metric figures and the evaluation loop
(`_evaluation`), predictions (`_prediction`), what a data-parallel fit adds (`_data_parallel_fit`) and Keras'
`sample_weight` / `class_weight` (`_sample_weights`: a fit or evaluation given weights runs the engine's weighted
steps; one without runs exactly the unweighted graphs). Keras' `train_on_batch` and `test_on_batch` run one
engine step of a trainer outside this loop (`_batch_steps`).
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from onnxtrain import engines
from onnxtrain._batch_stream import BatchStream
from onnxtrain._batches import (
    Batches,
    batch_arrays,
    batch_count,
    check_steps_per_epoch,
    empty_rows,
    epoch_order,
    examples,
    gather,
    limit_batches,
    read_batches,
    read_data,
    refuse_streams_in_world,
    with_class_weights,
)
from onnxtrain._checks import check_positive_int, check_validation_split
from onnxtrain._data_parallel_fit import (
    TrainingCounters,
    any_process,
    check_compiled_alike,
    check_world,
    compile_settings_of,
    not_writing,
    process_zero_counters,
    shared_seed,
)
from onnxtrain._evaluation import (
    BatchFigures,
    FigureKey,
    FigureSums,
    all_reduce_figures,
    check_validation_freq,
    evaluate_batches,
    log_key,
    validates,
)
from onnxtrain._finite_weights import describe_non_finite, non_finite_weights
from onnxtrain._float_env import FlushToZero
from onnxtrain._prediction import Predictor
from onnxtrain._runtime import Device, resolve_device
from onnxtrain._sample_weights import WeightedEngine, weighted_engine
from onnxtrain.arrays import input_specs
from onnxtrain.callbacks import CallbackList, CallbackModel
from onnxtrain.callbacks._callback import check_fit_start, check_log_keys
from onnxtrain.callbacks._learning_rate import optimizer_schedule
from onnxtrain.distributed._communicator import Communicator, local_rows
from onnxtrain.distributed._world import world
from onnxtrain.engine import Engine, EngineRequest
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, NonFiniteLossError
from onnxtrain.functional import Functional, every_layer
from onnxtrain.history import EvaluationResult, History
from onnxtrain.layers import Layer, Shape
from onnxtrain.losses import Loss
from onnxtrain.metrics import Metric
from onnxtrain.multi_output import OutputLosses
from onnxtrain.optimizers import Optimizer
from onnxtrain.optimizers.schedules import rate_at
from onnxtrain.progress import Progress, prints_here

logger = logging.getLogger("onnxtrain")


@dataclass(frozen=True)
class Compiled:
    """The settings `compile` fixed."""

    optimizer: Optimizer
    loss: Loss
    metrics: tuple[Metric, ...]
    device: str = "cpu"
    opset: int = 17
    ir_version: int = 8
    engine: str = "auto"
    weighted_metrics: tuple[Metric, ...] = ()  # `WeightedMetric`s: compile's weighted_metrics, keyed as Keras

    def get_config(self) -> dict[str, Any]:
        config = {
            "optimizer": self.optimizer.get_config(),
            "loss": self.loss.get_config(),
            # a name, or Keras' {"class_name", "config"} for a metric with arguments (Precision(top_k=2))
            "metrics": [m.get_config() for m in self.metrics],
            "device": self.device,
            "opset": self.opset,
            "ir_version": self.ir_version,
            "engine": self.engine,
        }
        if self.weighted_metrics:
            config["weighted_metrics"] = [m.get_config() for m in self.weighted_metrics]
        return config


class TrainedModel(CallbackModel, Protocol):
    """What the trainer reads and writes of the model it trains (a `Sequential`), besides what callbacks use."""

    @property
    def layers(self) -> Sequence[Layer]: ...

    @property
    def graph(self) -> Functional: ...

    @property
    def seed(self) -> int: ...

    @property
    def input_shape(self) -> Shape: ...

    @property
    def output_shape(self) -> Shape: ...

    # fit adopts the training data's class names and input scale (`Trainer._adopt`)
    class_names: tuple[str, ...] | None
    input_scale: float

    def sync_weights(self) -> None: ...

    def inference_model(self, opset: int | None = None, ir_version: int | None = None) -> Any: ...


class Trainer:
    """Owns the engine of a compiled model and runs fit/evaluate/predict with it."""

    def __init__(
        self,
        model: TrainedModel,
        compiled: Compiled,
        engine: Engine,
        device: Device,
        threads: int | None = None,
        communicator: Communicator | None = None,
    ):
        self.model = model
        self.compiled = compiled
        self.engine = engine
        self.device = device
        self.epochs_trained = 0
        # The optimizer's updates so far (Keras' `optimizer.iterations`, which per-step schedules read): from the
        # engine's own count where it keeps one (the portable engine's, restored from a checkpoint), then counted
        # here, across fit calls, like the epochs.
        self.steps_trained = int(getattr(engine, "step", 0))
        self.threads = threads  # intra-op threads of every session, predict's included (None: ORT's default)
        self._every_layer = every_layer(model.layers)  # fixed once compiled: add() is refused then (nested: theirs)
        self._trainable = tuple(layer.trainable for layer in self._every_layer)  # what the engine was built to train
        self._assigned = [len(layer.settings_assigned()) for layer in self._every_layer]
        self._flush = FlushToZero()
        self._predictor = Predictor(model, device, threads, self._flush, compiled.loss)
        # (graph input name, per-example shape) of each model input, in order
        self._inputs = input_specs(model.graph)  # name, shape, dtype and token ids of each model input, in order
        # A model of several outputs: each output's loss, weight and metrics (None for one output)
        self._outputs = compiled.loss if isinstance(compiled.loss, OutputLosses) else None
        self._figures = BatchFigures(
            compiled.metrics, compiled.loss, self._outputs, tuple(model.output_shape), compiled.weighted_metrics
        )
        self.communicator = communicator  # the world the engine all-reduces over (None: this process alone)
        self._agree_each_batch = False  # fit sets it: a data-parallel fit with per-batch callbacks
        self._batch_logs_everywhere = False  # fit sets it: a data-parallel fit in which a process reads batch logs
        self._weighted_engine: WeightedEngine | None = None  # fit sets it: the engine, where the fit has weights

    @classmethod
    def create(
        cls,
        model: TrainedModel,
        compiled: Compiled,
        artifacts_dir: str | Path | None,
        threads: int | None,
        resume: bytes | None = None,
    ) -> Trainer:
        """Open the engine `compiled` names (`onnxtrain.engines`), writing its artifacts to `artifacts_dir` when
        given, and continuing from the checkpoint bytes `resume` when given (what `load_model` passes).

        A failure leaves no empty folder of `artifacts_dir` that did not exist before: the artifact writers remove
        what they created (`saving.created_directories`). After `onnxtrain.distributed.init()` the engine trains
        data-parallel over that world, from process 0's weights and optimizer state.
        """
        device = resolve_device(compiled.device)
        communicator = world()
        name = engines.resolve(compiled.engine)
        if communicator is not None:  # before the engine's first broadcast, which different models would garble
            graph = model.graph
            settings = compile_settings_of(
                name,
                compiled.optimizer,
                compiled.loss,
                compiled.metrics + compiled.weighted_metrics,
                graph.params_by_name(),
                graph.trainable_params_by_name(),
            )
            check_compiled_alike(communicator, settings)
        request = EngineRequest(
            layers=model.graph,
            loss=compiled.loss,
            optimizer=compiled.optimizer,
            device=device,
            threads=threads,
            resume=resume,
            artifacts_dir=Path(artifacts_dir) if artifacts_dir is not None else None,
            opset=compiled.opset,
            ir_version=compiled.ir_version,
            communicator=communicator,
        )
        engine = engines.get(name)(request)
        return cls(model, replace(compiled, engine=name), engine, device, threads=threads, communicator=communicator)

    # --- data ---------------------------------------------------------------------------------------------
    def prepare(self, data: Any, argument: str, input_scale: float | None = None, sample_weight: Any = None) -> Batches:
        """`data` as the model reads it (`read_batches`), with its per-example weights where `sample_weight` or
        (validation data) an (x, y, sample_weight) tuple gives them. Integers without a scale of their own take
        `input_scale` (default: the model's), for a Dataset as for an (x, y) pair, so both give the same numbers."""
        scale = self.model.input_scale if input_scale is None else input_scale
        several_outputs = self._outputs is not None
        loss, output_shape = self.compiled.loss, self.model.output_shape
        triples = argument == "validation"  # Keras' validation_data=(x, y, sample_weight)
        return read_batches(
            data, argument, self._inputs, several_outputs, loss, output_shape, scale, sample_weight, triples
        )

    def prepare_data(
        self, data: Any, argument: str, input_scale: float | None = None, sample_weight: Any = None
    ) -> Batches | BatchStream:
        """`prepare` for fit and evaluate, which take a generator or a PyDataset too: for one, the BatchStream that
        reads each of its batches as `prepare` reads arrays (`read_data`)."""
        scale = self.model.input_scale if input_scale is None else input_scale
        loss, output_shape = self.compiled.loss, self.model.output_shape
        triples = argument == "validation"  # Keras' validation_data=(x, y, sample_weight)
        return read_data(
            data, argument, self._inputs, self._outputs is not None, loss, output_shape, scale, sample_weight, triples
        )

    def _weighted(self, *data: Batches | BatchStream | None) -> WeightedEngine | None:
        """The engine as one that takes sample weights where any of `data` has them (else None); refused, before
        any step, by an engine that does not take them."""
        if all(batches is None or batches.w is None for batches in data):
            return None
        return weighted_engine(self.engine, self.compiled.engine)

    def _scale_after(self, train: Batches | BatchStream) -> float:
        """The input scale the model will read inputs with once `fit` adopts `train` (see `_adopt`)."""
        if train.input_scale is not None and self.epochs_trained == 0:
            return train.input_scale
        return self.model.input_scale

    def _adopt(self, train: Batches | BatchStream) -> None:
        """Keep what the training data says about itself, for predict and save: its class names where the model
        has none, and its input scale before the first epoch. Only fit's training data, once every argument of
        the call has passed its checks: validation or evaluation data must not change how a model reads inputs.
        """
        if self.model.class_names is None and train.class_names:
            self.model.class_names = train.class_names
        self.model.input_scale = self._scale_after(train)

    # --- training -----------------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        epochs: int,
        batch_size: int,
        shuffle: bool,
        seed: int | None,
        verbose: int,
        validation: Any,
        validation_split: float,
        validation_batch_size: int | None,
        callbacks: Sequence[Any],
        sample_weight: Any = None,
        class_weight: Any = None,
        initial_epoch: int | None = None,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: Any = 1,
    ) -> History:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise InvalidArgumentError(f"seed expects a non-negative int or None. Received: seed={seed!r}")
        self.check_layers_as_compiled("fit")
        if self.communicator is not None and world() is self.communicator:  # (check_world names another world)
            self._take_process_zero_counters(self.communicator)
        if initial_epoch is not None:  # Keras' epochs are then the last epoch's number
            epochs = self._epochs_after(initial_epoch, epochs)
        train = self.prepare_data(data, "dataset", sample_weight=sample_weight)
        if not self.model.graph.trainable_params_by_name() and prints_here():
            warnings.warn(
                "fit: the model has no trainable parameters (every layer is frozen, or none has weights), so its "
                "weights will not change; only layer state such as BatchNormalization's moving statistics may. "
                "Set trainable=True on the layers to train.",
                UserWarning,
                stacklevel=3,  # the caller of fit: Model.fit -> Trainer.fit -> here
            )
        validation_split = check_validation_split(validation_split)
        if validation is not None and validation_split:
            raise InvalidArgumentError("fit takes validation=... or validation_split=..., not both.")
        # Read as the model will read inputs once this fit adopts the training data's scale.
        val = self.prepare_data(validation, "validation", self._scale_after(train)) if validation is not None else None
        if validation_split:
            if isinstance(train, BatchStream):  # as Keras: "only supported for Tensors or NumPy arrays"
                raise InvalidArgumentError(
                    f"fit(validation_split=...) splits arrays; it cannot split a {train.kind}. Pass "
                    "validation_data=... instead."
                )
            cut = len(train) - round(len(train) * validation_split)
            if cut <= 0 or cut >= len(train):
                raise InvalidArgumentError(
                    f"validation_split={validation_split} leaves no training or no validation examples out of "
                    f"{len(train)}."
                )
            w = train.w
            val = Batches(train.x[cut:], train.y[cut:], w=None if w is None else w[cut:])
            train = replace(train, x=train.x[:cut], y=train.y[:cut], w=None if w is None else w[:cut])
        # from the training rows' labels, once split off (Keras: not validation's); a stream's batch by batch
        train = with_class_weights(train, class_weight, self.compiled.loss, self.model.output_shape)
        self._weighted_engine = self._weighted(train, val)
        if not isinstance(shuffle, bool | np.bool_):
            raise InvalidTypeError(f"shuffle expects a bool. Received: shuffle={shuffle!r}")
        val_batch = check_positive_int(
            "validation_batch_size", batch_size if validation_batch_size is None else validation_batch_size
        )
        if val is not None:
            val = limit_batches(val, validation_steps, val_batch, "fit(validation_steps=...)")
        validation_freq = check_validation_freq(validation_freq)
        refuse_streams_in_world(self.communicator, train, val)

        communicator = check_world(
            self.communicator,
            examples(train),
            batch_size,
            validation=None if val is None else examples(val),
            validation_batch_size=val_batch,
            epochs=epochs,
            shuffle=bool(shuffle),
            learning_rate=self.engine.learning_rate if self.communicator is not None else 0.0,
        )
        steps = batch_count(train, batch_size)
        if isinstance(train, BatchStream):  # and its batch order, where it has one to shuffle (a PyDataset's)
            steps = train.start_fit(steps_per_epoch, bool(shuffle), self.model.seed if seed is None else seed)
        elif steps_per_epoch is not None:
            steps = check_steps_per_epoch(
                steps_per_epoch, math.ceil(len(train) / batch_size), len(train), batch_size, bool(shuffle)
            )
        history = History(params={"verbose": verbose, "epochs": epochs, "steps": steps})  # Keras' History.params
        # A figure a callback watches that no epoch will log is refused now, before any step changes the weights.
        logged = ["loss", *(log_key(key) for key in self._figures.keys())]
        check_log_keys(callbacks, [*logged, *(f"val_{key}" for key in logged if val is not None)], val is not None)
        # ... and so is a monitor whose direction nothing says (mode "auto"), or a checkpoint it cannot write
        directions = self._figures.directions()
        check_fit_start(callbacks, {**directions, **{f"val_{key}": way for key, way in directions.items()}})
        if communicator is not None and communicator.rank != 0:  # process 0 prints and writes the files
            verbose, callbacks = 0, not_writing(callbacks)
        callback_list = CallbackList(
            callbacks, self.model, params=history.params, optimizer_steps=lambda: self.steps_trained
        )
        # The optimizer's learning-rate schedule, set before each step (refused beside a callback that sets the rate)
        self._schedule = optimizer_schedule(self.compiled.optimizer, callback_list.callbacks)
        self.model.stop_training = False
        progress = Progress(verbose, steps=steps, epochs=epochs)
        # Every process stops at the same batch: per-batch stops (a callback's) are agreed on after each batch. The
        # running figures of a batch are all-reduced wherever any process reads them (process 0's progress bar, a
        # callback), so that every process sees those of one process on the global batches.
        self._agree_each_batch = communicator is not None and any_process(communicator, callback_list.wants_batches)
        self._batch_logs_everywhere = communicator is not None and any_process(
            communicator, callback_list.wants_batches or progress.wants_batches
        )
        self._adopt(train)
        base_seed = self.model.seed if seed is None else seed
        if communicator is not None:  # one shuffle for all processes: process 0's
            base_seed = shared_seed(communicator, base_seed)
        callback_list.on_train_begin()
        try:
            for _ in range(epochs):
                epoch = self.epochs_trained + 1
                if isinstance(train, BatchStream) and not train.has_batches(epoch):  # a generator ran out: warned
                    break
                callback_list.on_epoch_begin(epoch)
                progress.epoch_begin(epoch)
                order = epoch_order(base_seed, epoch, len(train)) if shuffle and isinstance(train, Batches) else None
                # This thread stays in ORT's float mode for the epoch: the engine's switch around each step nests
                # as a no-op, and only per-batch callbacks (user code) get the caller's mode back (_float_env.py).
                with self._flush.active():
                    logs = self._train_epoch(train, batch_size, steps, order, epoch, progress, callback_list)
                self.epochs_trained = epoch
                if val is not None and validates(epoch, validation_freq):
                    result = evaluate_batches(
                        self.engine,
                        val,
                        val_batch,
                        self._figures,
                        self._flush,
                        communicator=communicator,
                        weighted=self._weighted_engine,
                    )
                    logs["val_loss"] = result.loss
                    logs.update({f"val_{log_key(m)}": v for m, v in result.metrics.items()})
                progress.epoch_end(epoch, logs)  # first, so that what callbacks print follows the epoch's line
                callback_list.on_epoch_end(epoch, logs)
                history.append(epoch, logs)  # last, as Keras' History: with what callbacks added (learning_rate)
                if communicator is not None:
                    self.model.stop_training = any_process(communicator, self.model.stop_training)
                if self.model.stop_training:
                    break
        finally:
            progress.close()
        callback_list.on_train_end(history.last())
        return history

    def _epochs_after(self, initial_epoch: Any, epochs: int) -> int:
        """How many epochs `fit(initial_epoch=..., epochs=...)` trains: Keras' `epochs - initial_epoch`, where
        `initial_epoch` must be the epochs the model has trained (epochs count on across fit calls here).

        Raises:
            InvalidArgumentError: another `initial_epoch`, or `epochs` not beyond it.
        """
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, int | np.integer) or initial_epoch < 0:
            raise InvalidArgumentError(
                f"fit(initial_epoch=...) expects an int >= 0. Received: initial_epoch={initial_epoch!r}"
            )
        done = self.epochs_trained
        if initial_epoch != done:
            raise InvalidArgumentError(
                f"fit(initial_epoch={initial_epoch}): the model has trained {done} epoch(s), and onnxtrain counts "
                f"epochs on across fit calls and in a loaded save, so its next epoch is {done + 1}. Pass "
                f"initial_epoch={done} (or leave it out: fit(epochs=N) trains N more epochs). Nothing was trained."
            )
        if epochs <= initial_epoch:
            raise InvalidArgumentError(
                f"fit(initial_epoch={initial_epoch}, epochs={epochs}) trains no epoch: with initial_epoch, epochs is "
                f"the number of the last epoch, as in Keras. Pass epochs > {initial_epoch} (epochs="
                f"{initial_epoch + 1} trains one more). Nothing was trained."
            )
        return int(epochs - initial_epoch)

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
                    logs = {"loss": loss, **self._running_metric_logs(metric_sums, local_seen)}
                    with self._flush.suspended():  # fit may hold the float mode for the epoch; callbacks are user code
                        callbacks.on_batch_end(step + 1, logs)
                    if communicator is not None:
                        self.model.stop_training = any_process(communicator, self.model.stop_training)
                    if self.model.stop_training:
                        return logs
                    raise NonFiniteLossError(self._non_finite_loss(loss, epoch, step + 1, steps))
                self.steps_trained += 1  # a finite loss: the engine updated the weights
                loss_sum += loss * n
                seen += n
                local_seen += len(xb)
                for metric, value in self._figures.batch_sums(outputs, yb, wb).items():
                    metric_sums[metric] += value
                # (every process alike in a data-parallel fit, where the local wishes imply the agreed flag)
                if progress.wants_batches or callbacks.wants_batches or self._batch_logs_everywhere:
                    logs = {
                        "loss": loss_sum / seen,
                        **self._running_metric_logs(metric_sums, local_seen),
                    }
                    progress.batch_end(step + 1, logs)
                    with self._flush.suspended():
                        callbacks.on_batch_end(step + 1, logs)
                    if self._agree_each_batch and communicator is not None:
                        self.model.stop_training = any_process(communicator, self.model.stop_training)
                    if self.model.stop_training:
                        break
        except KeyboardInterrupt:
            self.engine.reset_gradients()  # a step cut short must not leak its gradients into the next one
            self._predictor.invalidate()  # the interrupted step may have updated the weights
            raise
        examples: float = local_seen
        if communicator is not None:  # the metrics over every process's examples
            metric_sums, (examples,) = all_reduce_figures(communicator, metric_sums, [local_seen])
        return {"loss": loss_sum / seen, **self._metric_logs(metric_sums, examples)}

    def _non_finite_loss(self, loss: float, epoch: int, batch: int, steps: int | None) -> str:
        """NonFiniteLossError's message: where the loss became non-finite and, from one look at the weights, what
        they are now: those of the last finite step, or (an update of finite gradients that overflowed, say)
        non-finite, which no later step or save can use."""
        where = f"The loss became {loss} at epoch {epoch}, batch {batch}/{steps or '?'}; training stopped"
        fix = "Lower the learning rate, check the inputs for extreme values, or clip gradients (Adam(clip_norm=1.0))."
        broken = non_finite_weights(self.engine.get_weights())
        if not broken:
            return f"{where} and the weights of the last finite step were kept (that batch's update was skipped). {fix}"
        return (
            f"{where}, and the model's weights are no longer usable: {describe_non_finite(broken)} hold NaN or inf, "
            "made by the update before that batch (its loss was still finite). Predictions and evaluate would use "
            "them, and save refuses them. Start again from a saved model (load_model) or from finite weights "
            f"(set_weights, load_weights), then train again. {fix}"
        )

    def _metric_logs(self, sums: FigureSums, examples: float) -> dict[str, float]:
        return {log_key(m): value for m, value in self._figures.means(sums, examples).items()}

    def _running_metric_logs(self, sums: FigureSums, local_examples: int) -> dict[str, float]:
        """The epoch's running metrics so far; in a data-parallel fit over every process's rows, as one process on
        the global batches gives them (one all-reduce of the sums, which every process makes at the same batch)."""
        if self.communicator is None or not sums:
            return self._metric_logs(sums, local_examples)
        totals, (examples,) = all_reduce_figures(self.communicator, sums, [local_examples])
        return self._metric_logs(totals, examples)

    def _take_process_zero_counters(self, communicator: Communicator) -> None:
        """Train on from process 0's epoch, step, learning rate and input scale (`process_zero_counters`), and its
        weights: set_weights or load_weights on process 0 alone after compile (Horovod's habit) would otherwise
        leave the processes stepping different weights with the same gradients."""
        weights = {name: np.ascontiguousarray(value) for name, value in self.engine.get_weights().items()}
        for value in weights.values():
            communicator.broadcast(value)
        self.engine.set_weights(weights)
        self.weights_changed()
        mine = TrainingCounters(
            self.epochs_trained, self.steps_trained, self.engine.learning_rate, self.model.input_scale
        )
        counters = process_zero_counters(communicator, mine)
        self.epochs_trained, self.steps_trained = counters.epochs, counters.steps
        if counters.learning_rate != mine.learning_rate:
            self.engine.learning_rate = counters.learning_rate
        self.model.input_scale = counters.input_scale

    # --- evaluation and prediction ------------------------------------------------------------------------
    def evaluate(
        self, data: Any, batch_size: int, verbose: int = 0, sample_weight: Any = None, steps: int | None = None
    ) -> EvaluationResult:
        self.check_layers_as_compiled("evaluate")
        prepared = self.prepare_data(data, "dataset", sample_weight=sample_weight)
        prepared = limit_batches(prepared, steps, batch_size, "evaluate(steps=...)")
        weighted = self._weighted(prepared)
        progress = Progress(verbose, steps=batch_count(prepared, batch_size), epochs=1, label="Evaluate")
        progress.epoch_begin(1)
        try:
            result = evaluate_batches(
                self.engine, prepared, batch_size, self._figures, self._flush, progress, weighted=weighted
            )
            progress.epoch_end(1, {"loss": result.loss, **{log_key(m): v for m, v in result.metrics.items()}})
        finally:
            progress.close()
        return result

    def predict_outputs(self, x: Any, batch_size: int) -> tuple[np.ndarray, bool]:
        """Model outputs (`logits`) for `x` through an inference session of the current weights (a model of
        several outputs: `predict_all_outputs`)."""
        outputs, single = self.predict_all_outputs(x, batch_size)
        return outputs[0], single

    def predict_all_outputs(self, x: Any, batch_size: int, steps: int | None = None) -> tuple[list[np.ndarray], bool]:
        """Every model output for `x` (at most `steps` batches), in the model's output order, through an inference
        session."""
        self.check_layers_as_compiled("predict")
        return self._predictor.predict(x, batch_size, steps)

    def predict_named_outputs(self, x: Any, batch_size: int) -> tuple[dict[str, np.ndarray], bool]:
        """Every output of the inference model for `x` by name (`Predictor.predict_named`)."""
        self.check_layers_as_compiled("predict")
        return self._predictor.predict_named(x, batch_size)

    def figure_keys(self) -> list[FigureKey]:
        """What the logs hold besides the loss, in their order (`log_key` names each)."""
        return self._figures.keys()

    def check_layers_as_compiled(self, action: str) -> None:
        """Refuse to run `action` on layers whose settings changed after compile (`layer.trainable = False`,
        `dropout.rate = 0.3`, `dense.activation = "tanh"`): the compiled engine and the predictions' session still
        compute the old ones, while save and export would write the new.

        Raises:
            ModelStateError: naming the layers and what changed, and that compile() applies it.
        """
        layers = self._every_layer
        trainable = [layer.name for layer, was in zip(layers, self._trainable, strict=True) if layer.trainable != was]
        if trainable:  # Keras would train on as compiled, which param_counts() already contradicts
            raise ModelStateError(
                f"The trainable flag of layer(s) {trainable} changed after compile() (layer.trainable, or "
                "model.trainable of this model or of one nested in it); the compiled engine still trains as before. "
                "Call compile() again to apply it (the weights are kept, the optimizer state starts anew)."
            )
        changed = []
        for layer, assigned in zip(self._every_layer, self._assigned, strict=True):
            since = [a for a in layer.settings_assigned()[assigned:] if a != "trainable"]
            if since:  # (trainable: by its value, above)
                changed.append(f"{layer.name} ({', '.join(dict.fromkeys(since))})")
        if changed:
            raise ModelStateError(
                f"{action}: the settings of layer(s) {', '.join(changed)} were assigned after compile(); the compiled "
                "model still computes the old ones. Call compile() again to apply them (the weights are kept, the "
                "optimizer state starts anew)."
            )

    def _session(self) -> Any:
        """The inference session predictions run in (its options: tests, tools/bench.py)."""
        return self._predictor.session()

    def weights_changed(self) -> None:
        self._predictor.invalidate()

    def close(self) -> None:
        self._predictor.invalidate()
        self.engine.close()
