"""Keras' `fit` and `evaluate` of a compiled model: their arguments taken as Keras takes them (`x=`, `validation_data=`,
x and y, `verbose="auto"`), checked, and handed to the model's `training.Trainer`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from onnxtrain._call_arguments import alias, dataset_arg, refuse_unknown
from onnxtrain._checks import check_bool, check_positive_int
from onnxtrain._deferred_build import fit_inputs
from onnxtrain._layer_claims import shares_layers
from onnxtrain.callbacks._base import sorted_logs
from onnxtrain.history import EvaluationResult, History
from onnxtrain.progress import check_verbose

if TYPE_CHECKING:
    from onnxtrain.training import Trainer


class ModelFit:
    """Keras' `fit` and `evaluate` (see the module docstring); a `Model` is one."""

    if TYPE_CHECKING:  # what `Model` holds and does
        _fitting: bool

        def _check_not_fitting(self, action: str) -> None: ...

        def _build_for(self, action: str, x: Any) -> None: ...

        def _compiled_trainer(self, action: str) -> Trainer: ...

        def sync_weights(self) -> None: ...

    def fit(
        self,
        dataset: Any = None,
        y: Any = None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        verbose: int | str = 1,
        validation: Any = None,
        validation_split: float = 0.0,
        validation_batch_size: int | None = None,
        callbacks: Sequence[Any] = (),
        x: Any = None,
        validation_data: Any = None,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        initial_epoch: int | None = None,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: int | Sequence[int] = 1,
        **unknown: Any,
    ) -> History:
        """Train for `epochs` over `dataset` (a Dataset, an (x, y) tuple, x with y=..., or, as Keras takes them, a
        Python generator or a `keras.utils.PyDataset` of batches: see below).

        Each epoch is shuffled from (`seed` or the model's seed, epoch number), so equal seeds give identical runs;
        the last partial batch is included. `validation_split` holds out the *last* fraction of the data (before
        shuffling, as in Keras). Returns a History with per-epoch `loss`, the metrics, and `val_*` when validating.
        Keras' spellings work too: `fit(x=..., y=..., validation_data=(x_val, y_val))`; `verbose` is 0, 1, 2 or
        Keras' "auto" (1), see `onnxtrain.progress`.

        Keras' `sample_weight` (one weight >= 0 per example; for several outputs one array for all, or a list /
        dict with one per output), `class_weight` ({class index: weight}, one output) and validation data as
        (x, y, sample_weight) weigh each example's loss: sum(w_i l_i) / batch, as Keras 3 (weight penalties and
        `metrics` unweighted). Given both, they multiply. Portable engine only.

        Keras' `initial_epoch` and `steps_per_epoch`: epochs count on across fit calls here (a fit after 3 epochs
        trains epoch 4 on), so `initial_epoch` may only be the epochs the model has trained (`fit(initial_epoch=3,
        epochs=5)` after 3 epochs trains epochs 4 and 5: as in Keras, `epochs` is then the last epoch, not a
        count); any other value is refused. `steps_per_epoch=n` trains n batches each epoch, the first n of its
        shuffled order (Keras goes on through the data across epochs instead); at most the batches the data has.

        A generator (any iterator) or a PyDataset (anything with `__len__` and `__getitem__(i)`, the i-th batch, and
        optionally `on_epoch_begin()` / `on_epoch_end()`) gives batches (x, y) or (x, y, sample_weight), each read
        and checked as arrays are (the messages name the batch), the first before any step; y and sample_weight
        are then not taken. A generator is read once, across epochs: `steps_per_epoch` batches an epoch (without
        it, the first epoch reads it to its end); where it runs out, fit warns as Keras ("Your input ran out of
        data") and stops after that epoch. `shuffle` does not apply to it (Keras ignores it too). A PyDataset gives
        `len()` batches an epoch (or the next `steps_per_epoch`, going on through them across epochs), in a batch
        order shuffled per epoch by `shuffle` (from `seed` and the epoch), and has `on_epoch_end` called after
        each. `validation_data` may be one too; `validation_steps` validates on that many batches (arrays: the
        first; a generator or PyDataset: its next), and `validation_freq` validates every that many epochs (an
        int) or after the epochs listed, as Keras'.

        Raises:
            InvalidTypeError: a keyword fit does not take, naming the ones it does.
        """
        refuse_unknown("fit", unknown, ModelFit.fit)
        self._check_not_fitting("fit")
        dataset = alias("dataset", dataset, "x", x)
        self._build_for("fit", fit_inputs(dataset, y))
        trainer = self._compiled_trainer("fit")
        validation = alias("validation", validation, "validation_data", validation_data)
        self._fitting = True
        try:
            history = trainer.fit(
                dataset_arg(dataset, y, "dataset", "fit"),
                epochs=check_positive_int("epochs", epochs),
                batch_size=check_positive_int("batch_size", batch_size),
                shuffle=shuffle,
                seed=seed,
                verbose=check_verbose(verbose),
                validation=validation,
                validation_split=validation_split,
                validation_batch_size=validation_batch_size,
                callbacks=callbacks,
                sample_weight=sample_weight,
                class_weight=class_weight,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps,
                validation_freq=validation_freq,
            )
        finally:
            self._fitting = False
        if shares_layers(self):  # the layers hold the trained weights, for the model they are shared with (nested)
            self.sync_weights()
        return history

    @overload
    def evaluate(
        self,
        dataset: Any = None,
        y: Any = None,
        *,
        batch_size: int = 32,
        verbose: int | str = 0,
        x: Any = None,
        return_dict: Literal[False] = False,
        sample_weight: Any = None,
        steps: int | None = None,
        **unknown: Any,
    ) -> EvaluationResult: ...

    @overload
    def evaluate(
        self,
        dataset: Any = None,
        y: Any = None,
        *,
        batch_size: int = 32,
        verbose: int | str = 0,
        x: Any = None,
        return_dict: Literal[True],
        sample_weight: Any = None,
        steps: int | None = None,
        **unknown: Any,
    ) -> dict[str, float]: ...

    def evaluate(
        self,
        dataset: Any = None,
        y: Any = None,
        *,
        batch_size: int = 32,
        verbose: int | str = 0,
        x: Any = None,
        return_dict: bool = False,
        sample_weight: Any = None,
        steps: int | None = None,
        **unknown: Any,
    ) -> EvaluationResult | dict[str, float]:
        """Mean loss and metrics over `dataset` (or Keras' `x=..., y=...`, or a generator or PyDataset of batches,
        as `fit` takes them), in batches of `batch_size`.

        Args:
            verbose: 0 (silent), 1 (a progress bar on a terminal), 2 (one line) or Keras' "auto" (1).
            return_dict: as in Keras, a dict of the figures, {"accuracy": ..., "loss": ...}, keyed as `fit`'s
                logs and sorted by key as Keras 3's, instead of the EvaluationResult (which unpacks as Keras' list,
                the loss first).
            sample_weight: each example's weight (as `fit` takes it): the loss is sum(w_i l_i) / examples, as
                Keras'; the metrics stay unweighted.
            steps: Keras' `steps`: evaluate that many batches (of arrays the first; of a generator or PyDataset the
                first that many it gives); None: all.
        """
        refuse_unknown("evaluate", unknown, ModelFit.evaluate)
        dataset = alias("dataset", dataset, "x", x)
        self._build_for("evaluate", fit_inputs(dataset, y))
        trainer = self._compiled_trainer("evaluate")
        as_dict = check_bool("evaluate", "return_dict", return_dict)
        result = trainer.evaluate(
            dataset_arg(dataset, y, "dataset", "evaluate"),
            batch_size=check_positive_int("batch_size", batch_size),
            verbose=check_verbose(verbose),
            sample_weight=sample_weight,
            steps=steps,
        )
        return sorted_logs(result.to_dict()) if as_dict else result
