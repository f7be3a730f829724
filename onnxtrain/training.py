"""The training loop around an engine: `Trainer` opens the engine `compile` names, and fits, evaluates and
predicts over numpy batches with it.

Here: the trainer's setup, fit's checks of its arguments and its loop over epochs. Its other parts: the data it
reads (`_trainer_data`), one epoch's steps over batches, kept to the engine call and a small numpy reduction per
batch (`_epoch_loop`), evaluate and the predictions (`_trainer_evaluation`), the check that the layers are as
compiled (`_compiled_layers`); what it is given: `Compiled` (`_compiled`) and `TrainedModel` (`_trained_model`).

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

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain import engines
from onnxtrain._batch_stream import BatchStream
from onnxtrain._batches import (
    Batches,
    batch_count,
    check_steps_per_epoch,
    epoch_order,
    limit_batches,
    refuse_streams_in_world,
    with_class_weights,
)
from onnxtrain._checks import check_positive_int, check_validation_split
from onnxtrain._compiled import Compiled
from onnxtrain._compiled_layers import CompiledLayers
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
from onnxtrain._epoch_loop import EpochLoop
from onnxtrain._evaluation import (
    BatchFigures,
    check_validation_freq,
    evaluate_batches,
    log_key,
    validates,
)
from onnxtrain._float_env import FlushToZero
from onnxtrain._prediction import Predictor
from onnxtrain._runtime import Device, resolve_device
from onnxtrain._sample_weights import WeightedEngine
from onnxtrain._trained_model import TrainedModel
from onnxtrain._trainer_data import TrainerData
from onnxtrain._trainer_evaluation import TrainerEvaluation
from onnxtrain.arrays import input_specs
from onnxtrain.callbacks import CallbackList
from onnxtrain.callbacks._base import sorted_logs
from onnxtrain.callbacks._callback import check_fit_start, check_log_keys
from onnxtrain.callbacks._learning_rate import optimizer_schedule
from onnxtrain.distributed._communicator import Communicator
from onnxtrain.distributed._world import world
from onnxtrain.engine import Engine, EngineRequest
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, listing
from onnxtrain.history import History
from onnxtrain.layers import Input
from onnxtrain.multi_output import OutputLosses
from onnxtrain.progress import Progress, prints_here

__all__ = ["Compiled", "TrainedModel", "Trainer"]

logger = logging.getLogger("onnxtrain")


class Trainer(TrainerData, EpochLoop, TrainerEvaluation):
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
        self._compiled_layers = CompiledLayers(model.layers)
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
            # Keras trains such a model without a word. The fix differs: unfreeze a layer, or add one with weights.
            graph = self.model.graph
            weightless = [str(layer.name) for layer in graph.layers if not isinstance(layer, Input)]
            warnings.warn(
                "fit: the model has no trainable parameters (its layers' weights are all frozen or non-trainable), "
                "so its weights will not change; only layer state such as BatchNormalization's moving statistics "
                "may. Set trainable=True on the layers to train."
                if graph.params_by_name()
                else f"fit: the model has no trainable parameters: no layer has weights ({listing(weightless, 5)}), "
                "so training changes nothing. Add a layer with weights (e.g. Dense) to train.",
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
            train,
            batch_size,
            validation=val,
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
        train_end_logs: dict[str, float] = {}  # no epoch ran: Keras' on_train_end gets empty logs
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
                    val_logs = {"val_loss": result.loss, **{f"val_{log_key(m)}": v for m, v in result.metrics.items()}}
                    logs.update(sorted_logs(val_logs))
                # First, so that what callbacks print follows the epoch's line. Keras' bar (verbose=1) lists the
                # figures as it first saw them: the batches' (sorted), then the val_ ones (sorted); its one line
                # (verbose=2) sorts them all.
                progress.epoch_end(epoch, logs if verbose == 1 else sorted_logs(logs))
                train_end_logs = dict(logs)  # Keras' on_train_end logs: the last epoch's, before callbacks add keys
                callback_list.on_epoch_end(epoch, logs)
                history.append(epoch, logs)  # last, as Keras' History: with what callbacks added (learning_rate)
                if communicator is not None:
                    self.model.stop_training = any_process(communicator, self.model.stop_training)
                if self.model.stop_training:
                    break
        finally:
            progress.close()
        callback_list.on_train_end(train_end_logs)
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

    # --- the layers as compiled, and the trainer's lifetime -------------------------------------------------
    def check_layers_as_compiled(self, action: str) -> None:
        """Refuse to run `action` on layers whose settings changed after compile (`CompiledLayers.check`).

        Raises:
            ModelStateError: naming the layers and what changed, and that compile() applies it.
        """
        self._compiled_layers.check(action)

    def weights_changed(self) -> None:
        self._predictor.invalidate()

    def close(self) -> None:
        self._predictor.invalidate()
        self.engine.close()
