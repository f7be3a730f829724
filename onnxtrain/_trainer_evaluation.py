"""Evaluation and prediction with a `Trainer`: `evaluate` through the compiled engine's eval step, and the model's
outputs through the inference session of its current weights (`_prediction.Predictor`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from onnxtrain._batches import batch_count, limit_batches
from onnxtrain._evaluation import BatchFigures, FigureKey, evaluate_batches, log_key
from onnxtrain.history import EvaluationResult
from onnxtrain.progress import Progress

if TYPE_CHECKING:
    from onnxtrain._batch_stream import BatchStream
    from onnxtrain._batches import Batches
    from onnxtrain._float_env import FlushToZero
    from onnxtrain._prediction import Predictor
    from onnxtrain._sample_weights import WeightedEngine
    from onnxtrain.engine import Engine


class TrainerEvaluation:
    """`evaluate` and the predictions of a `Trainer` (see the module docstring); a `Trainer` is one."""

    if TYPE_CHECKING:  # what `Trainer` holds and does
        engine: Engine
        _flush: FlushToZero
        _predictor: Predictor
        _figures: BatchFigures

        def check_layers_as_compiled(self, action: str) -> None: ...

        def prepare_data(
            self, data: Any, argument: str, input_scale: float | None = None, sample_weight: Any = None
        ) -> Batches | BatchStream: ...

        def _weighted(self, *data: Batches | BatchStream | None) -> WeightedEngine | None: ...

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

    def _session(self) -> Any:
        """The inference session predictions run in (its options: tests, tools/bench.py)."""
        return self._predictor.session()
