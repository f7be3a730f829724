"""Predictions of a model in training: an inference session of its current weights, opened on first use and
dropped whenever the weights change (`invalidate`); and of a model not compiled (Keras' predict before compile),
whose session is kept while its layers hold the same weights and settings (`UncompiledPredictor`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from onnxtrain import emit
from onnxtrain._batch_stream import is_streamed, predict_stream
from onnxtrain._batches import batch_arrays
from onnxtrain._float_env import FlushToZero
from onnxtrain._runtime import Device, create_session, session_options
from onnxtrain.arrays import input_specs, prepare_inputs
from onnxtrain.datasets import Dataset
from onnxtrain.functional import Functional, every_layer
from onnxtrain.losses import Loss


class PredictedModel(Protocol):
    """What a `Predictor` reads of the model: its graph, input scale, and an inference model of its weights."""

    @property
    def graph(self) -> Functional: ...

    input_scale: float

    def sync_weights(self) -> None: ...

    def inference_model(self, opset: int | None = None, ir_version: int | None = None) -> Any: ...


class Predictor:
    """Every output of `model` for an input, through an inference session of its weights when first asked.

    Args:
        model: the model in training (a `TrainedModel`).
        device: where the session runs.
        threads: the session's intra-op threads (None: ONNX Runtime's default).
        flush: the float mode kept inside ONNX Runtime calls (`_float_env.py`).
        loss: the compiled loss, which names the export's output (`emit.output_names`).
    """

    def __init__(
        self, model: PredictedModel, device: Device, threads: int | None, flush: FlushToZero, loss: Loss | None = None
    ):
        self.model = model
        self.device = device
        self.threads = threads
        self._flush = flush
        self._inputs = input_specs(model.graph)  # name, shape, dtype and token ids of each model input, in order
        self._input_names = emit.input_names(model.graph)
        self._output_names = emit.output_names(model.graph, loss)  # `logits`, or `probabilities` (the export's)
        self._session: Any = None

    def predict(self, x: Any, batch_size: int, steps: int | None = None) -> tuple[list[np.ndarray], bool]:
        """Every model output for `x`, in the model's output order, and whether `x` was a single example; at most
        `steps` batches (Keras' predict(steps=...)). A generator or PyDataset (`is_streamed`) is read a batch at a
        time, its batches' x as Keras takes it (`_batch_stream.predict_stream`)."""
        if is_streamed(x):
            session = self.session()

            def run(batch: Any) -> list[np.ndarray]:
                with self._flush.active():
                    feed = dict(zip(self._input_names, batch_arrays(batch), strict=True))
                    return list(session.run(self._output_names, feed))

            return predict_stream(x, steps, self._inputs, self.model.input_scale, run), False
        return self._run(x, batch_size, self._output_names, steps)

    def predict_named(self, x: Any, batch_size: int) -> tuple[dict[str, np.ndarray], bool]:
        """Every output of the inference model (`logits` and `probabilities`, or each output and its
        `<output>_probabilities`) by name, in the graph's order, and whether `x` was a single example."""
        names = [output.name for output in self.session().get_outputs()]
        outputs, single = self._run(x, batch_size, names)
        return dict(zip(names, outputs, strict=True)), single

    def _run(
        self, x: Any, batch_size: int, names: list[str], steps: int | None = None
    ) -> tuple[list[np.ndarray], bool]:
        if isinstance(x, Dataset):
            x = x.x
        x, single = prepare_inputs(x, self._inputs, self.model.input_scale, "x", allow_single=True)
        if steps is not None:
            x = x[: steps * batch_size]
        session = self.session()
        with self._flush.active():
            batches = [
                session.run(
                    names, dict(zip(self._input_names, batch_arrays(x[start : start + batch_size]), strict=True))
                )
                for start in range(0, len(x), batch_size)
            ]
        return [np.concatenate([batch[i] for batch in batches]) for i in range(len(names))], single

    def session(self) -> Any:
        """The inference session of the model's current weights (opened now if the weights changed since)."""
        if self._session is None:
            import onnxruntime

            self.model.sync_weights()
            model = self.model.inference_model()
            options = session_options(onnxruntime, self.threads)
            with self._flush.creating():
                self._session = create_session(onnxruntime, model.SerializeToString(), options, self.device)
        return self._session

    def invalidate(self) -> None:
        """Forget the session: the weights changed (a train step, `set_weights`) or the model is closed."""
        self._session = None


class UncompiledPredictor(Predictor):
    """Every output of a model that is not compiled, from its layers' current weights, through an inference session
    on the CPU (the inference model `export` writes, of the loss the model was trained with where a save says it).

    The session is opened on first use and kept while the model's layers hold the same weight arrays (any way of
    setting weights replaces them: `set_weights`, `load_weights`, `layer.set_weights`, `Normalization.adapt`) and
    no layer setting was assigned since; otherwise it is opened again. Weights written into an array in place are
    not seen: set them with `set_weights`.

    Args:
        model: the model (not compiled).
        loss: the loss its export is emitted for (`trained_loss`), or None.
    """

    def __init__(self, model: PredictedModel, loss: Loss | None):
        super().__init__(model, Device("cpu"), None, FlushToZero(), loss)
        self.loss = loss
        self._weights: tuple[np.ndarray, ...] = ()  # the arrays the session holds (kept: an id is never reused)
        self._settings = 0

    def session(self) -> Any:
        self.model.sync_weights()  # the weights a compiled model sharing the layers trained since
        weights = tuple(self.model.graph.params_by_name().values())
        settings = sum(len(layer.settings_assigned()) for layer in every_layer(self.model.graph.layers))
        same = len(weights) == len(self._weights) and all(a is b for a, b in zip(weights, self._weights, strict=True))
        if not same or settings != self._settings:
            self._session = None
        if self._session is None:
            self._weights, self._settings = weights, settings
            return super().session()
        return self._session
