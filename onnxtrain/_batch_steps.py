"""Keras' one-batch methods of a model: `train_on_batch` (one update on exactly that batch), `test_on_batch` (its
loss and metrics, changing nothing) and `predict_on_batch`, each returning the figures of that batch alone.

They run the engine's own train and eval steps, as `fit` and `evaluate` do for each of their batches
(`training.Trainer`), with the same checks of the data, sample and class weights and learning-rate schedule; fit
itself does not go through here, so its loop stays as it is.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._batches import batch_arrays
from onnxtrain._call_arguments import dataset_arg
from onnxtrain._checks import check_bool
from onnxtrain._evaluation import evaluate_batches
from onnxtrain._layer_claims import shares_layers
from onnxtrain._padding_examples import padding_note
from onnxtrain._sample_weights import class_sample_weights, combined_weights
from onnxtrain.callbacks._base import sorted_logs
from onnxtrain.callbacks._learning_rate import optimizer_schedule
from onnxtrain.errors import NonFiniteLossError, UnsupportedError
from onnxtrain.optimizers.schedules import rate_at

if TYPE_CHECKING:
    from onnxtrain.training import Trainer

ONE_BATCH = 2**31 - 1  # predict's batch_size that takes every example in one batch


class BatchSteps:
    """Keras' `train_on_batch`, `test_on_batch` and `predict_on_batch` (see the module docstring); a `Model` is
    one."""

    if TYPE_CHECKING:  # what `Model` does

        def _check_not_fitting(self, action: str) -> None: ...

        def _build_for(self, action: str, x: Any) -> None: ...

        def _compiled_trainer(self, action: str) -> Trainer: ...

        def sync_weights(self) -> None: ...

        def predict(
            self, x: Any = ..., batch_size: int = ..., verbose: int | str = ..., *, dataset: Any = ..., **unknown: Any
        ) -> Any: ...

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """Keras' `train_on_batch`: one optimizer update on exactly the examples given (x and y, or a Dataset or an
        (x, y) pair as x), weighed by `sample_weight` and `class_weight` as `fit` weighs them; a learning-rate
        schedule gives the rate of the update's step. The epoch count does not change.

        Returns:
            The batch's loss (computed before the update, as fit's), or, where the model logs metrics (or
            several outputs' losses), [loss, *those] in `metrics_names` order; with `return_dict=True` a dict by
            those names, sorted by name as Keras 3's ({"accuracy": ..., "loss": ...}). The metrics are the batch's
            alone (tf.keras' `reset_metrics=True`).

        Raises:
            ModelStateError: not compiled, or called from a callback while fit runs.
            NonFiniteLossError: the batch's loss is NaN or inf (no update was made).
            InvalidArgumentError: a Dataset given with a y beside it (a Dataset carries its labels).
            UnsupportedError: in a data-parallel world (use fit, or compile the model in `distributed.alone()`).
        """
        self._check_not_fitting("train_on_batch")
        self._build_for("train_on_batch", x)
        trainer = self._compiled_trainer("train_on_batch")
        as_dict = check_bool("train_on_batch", "return_dict", return_dict)
        logs = train_batch(trainer, dataset_arg(x, y, "x", "train_on_batch"), sample_weight, class_weight)
        if shares_layers(self):  # the layers hold the trained weights, for the model they are shared with (nested)
            self.sync_weights()
        return keras_figures(logs, as_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """Keras' `test_on_batch`: the loss (and metrics) of the examples given, as `evaluate` computes them,
        changing nothing. Returns what `train_on_batch` returns."""
        self._build_for("test_on_batch", x)
        trainer = self._compiled_trainer("test_on_batch")
        as_dict = check_bool("test_on_batch", "return_dict", return_dict)
        return keras_figures(test_batch(trainer, dataset_arg(x, y, "x", "test_on_batch"), sample_weight), as_dict)

    def predict_on_batch(self, x: Any = None, *, dataset: Any = None) -> Any:
        """Keras' `predict_on_batch`: `predict(x)` run as one batch (class indices for classification, raw values
        otherwise; `predict_softly` and `predict_outputs` give probabilities and raw outputs). KotlinDL's `dataset=`
        is taken for `x`, as `predict` takes it."""
        return self.predict(x, batch_size=ONE_BATCH, dataset=dataset)


def train_batch(trainer: Trainer, data: Any, sample_weight: Any, class_weight: Any) -> dict[str, float]:
    """One engine train step on all of `data` (what `train_on_batch` runs); returns the batch's logs."""
    trainer.check_layers_as_compiled("train_on_batch")
    if trainer.communicator is not None:
        world = trainer.communicator
        raise UnsupportedError(
            "train_on_batch trains one process's batch, which would leave the processes of a data-parallel world "
            f"stepping apart. Received: train_on_batch in process {world.rank} of {world.size} "
            "(onnxtrain.distributed.init() before compile). Use fit, which splits each global batch between them, "
            "or compile the model inside `with onnxtrain.distributed.alone():` to train it alone."
        )
    trainer.refuse_augmenting_scaled_pixels("train_on_batch")
    batch = trainer.prepare(data, "x", sample_weight=sample_weight)
    if class_weight is not None:
        by_class = class_sample_weights(class_weight, batch.y, trainer.compiled.loss, trainer.model.output_shape)
        batch = replace(batch, w=combined_weights(batch.w, by_class))
    weighted = trainer._weighted(batch)
    schedule = optimizer_schedule(trainer.compiled.optimizer, [])
    if schedule is not None:  # Keras: schedule(optimizer.iterations), the updates so far
        trainer.engine.learning_rate = rate_at(schedule, trainer.steps_trained)
    with trainer._flush.active():
        if weighted is not None:
            loss, outputs = weighted.train_step(batch_arrays(batch.x), batch.y, 0, batch.w)
        else:
            loss, outputs = trainer.engine.train_step(batch_arrays(batch.x), batch.y)
    trainer.weights_changed()
    if not math.isfinite(loss):
        note = padding_note(trainer.model.graph, batch_arrays(batch.x), np.arange(len(batch)))
        raise NonFiniteLossError(
            f"train_on_batch: the batch's loss is {loss}, so no update was made.{note} Lower the learning rate, check "
            "the inputs for extreme values, or clip gradients (Adam(clip_norm=1.0))."
        )
    trainer.steps_trained += 1
    sums = trainer._figures.batch_sums(outputs, batch.y, batch.w)
    return {"loss": loss, **trainer._metric_logs(sums, len(batch))}


def test_batch(trainer: Trainer, data: Any, sample_weight: Any) -> dict[str, float]:
    """One engine eval step on all of `data` (what `test_on_batch` runs); returns its logs."""
    trainer.check_layers_as_compiled("test_on_batch")
    batch = trainer.prepare(data, "x", sample_weight=sample_weight)
    weighted = trainer._weighted(batch)
    result = evaluate_batches(
        trainer.engine, batch, max(len(batch), 1), trainer._figures, trainer._flush, weighted=weighted
    )
    return result.to_dict()


def keras_figures(logs: dict[str, float], as_dict: bool) -> float | list[float] | dict[str, float]:
    """Keras' return of a one-batch method: the dict sorted by key (as Keras 3 sorts its logs), the loss alone, or
    [loss, *the others] in `metrics_names` order (`logs`' own)."""
    if as_dict:
        return sorted_logs(logs)
    values = [float(value) for value in logs.values()]
    return values[0] if len(values) == 1 else values
