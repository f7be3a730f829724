"""The ort-training engine: a training session of ONNX Runtime's training API over the artifacts that
`_ort_training.write_artifacts` writes (train and eval steps, weights, learning rate, checkpoints), and the
factory `onnxtrain.engines` opens it with (`create_engine`).

The training API comes through `_ort_training.require_training_api`: `_ort_training` stays the only module that
imports `onnxruntime.training` (its quirks are listed there).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

from onnxtrain._artifacts_folder import RESUME_CHECKPOINT
from onnxtrain._float_env import FlushToZero
from onnxtrain._ort_training import (
    CHECKPOINT,
    TrainingArtifacts,
    check_optimizer,
    refuse_nothing_to_train,
    require_training_api,
    write_artifacts,
)
from onnxtrain._runtime import check_not_empty, session_options
from onnxtrain.distributed._communicator import Communicator, broadcast_bytes
from onnxtrain.distributed._reduce import GradientReduction
from onnxtrain.engine import Batch, EngineRequest
from onnxtrain.errors import UnsupportedError
from onnxtrain.optimizers import Optimizer


def default_threads() -> int:
    """One intra-op thread per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def create_engine(request: EngineRequest) -> OrtTrainingEngine:
    """The ort-training engine for a compiled model (`onnxtrain.engines.ENGINES["ort-training"]`): writes the four
    artifacts to `request.artifacts_dir`, or to a temporary folder that closing the engine removes, and opens a
    training session over them, from `request.resume` when given (weights, optimizer state and step).

    Raises:
        UnsupportedError / InvalidArgumentError / RuntimeSetupError: see `write_artifacts`. A failure leaves no
            temporary folder, and no folder of `request.artifacts_dir` that it created (`created_directories`).
    """
    check_optimizer(request.optimizer)
    refuse_nothing_to_train(
        request.layers,
        "The ort-training engine",
        "Compile with engine='portable' (the default) to evaluate, predict or export it.",
    )
    optimizer = request.optimizer
    if request.communicator is not None:
        # Distributed, GradientReduction clips the all-reduced gradients: ORT's ClipGradNorm gave two processes
        # different bits (1 ulp, from the same inputs) within a few steps, and the copies must stay equal.
        optimizer = dataclasses.replace(optimizer, clip_norm=None)
    temporary = None if request.artifacts_dir is not None else Path(tempfile.mkdtemp(prefix="onnxtrain-artifacts-"))
    directory = request.artifacts_dir if request.artifacts_dir is not None else temporary
    assert directory is not None  # one of the two is always set
    try:
        artifacts = write_artifacts(
            request.layers,
            request.loss,
            optimizer,
            directory,
            request.opset,
            request.ir_version,
            for_cpu=request.device.kind == "cpu",
        )
        resume = None
        if request.communicator is not None:  # every process starts from process 0's checkpoint
            start = request.resume if request.resume is not None else artifacts.checkpoint.read_bytes()
            resume_bytes: bytes | None = broadcast_bytes(request.communicator, start)
        else:
            resume_bytes = request.resume
        if resume_bytes is not None:
            resume = artifacts.directory / RESUME_CHECKPOINT
            resume.write_bytes(resume_bytes)
        return OrtTrainingEngine(
            artifacts,
            request.optimizer,
            request.device.ort_device,
            request.threads,
            checkpoint=resume,
            owns_directory=temporary is not None,
            communicator=request.communicator,
        )
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise


class OrtTrainingEngine:
    """One training session over a set of artifacts: train/eval steps, weights, learning rate, checkpoints.

    Args:
        artifacts: what `write_artifacts` wrote.
        optimizer: its learning rate is applied to ORT's optimizer.
        device: "cpu" or "cuda:N".
        threads: intra-op threads for ORT (None: ORT's default).
        checkpoint: a checkpoint to start from instead of the artifacts' one (resuming with optimizer state).
        owns_directory: remove the artifacts' folder (a temporary one) when the engine is closed, or, if it never
            is, when it is collected or at exit.
        communicator: the world of a data-parallel fit (None: alone). Each step then all-reduces the gradients
            between `train_step` and `optimizer_step`, and clips them (the artifacts' optimizer then must not).
    """

    def __init__(
        self,
        artifacts: TrainingArtifacts,
        optimizer: Optimizer,
        device: str = "cpu",
        threads: int | None = None,
        checkpoint: str | Path | None = None,
        owns_directory: bool = False,
        communicator: Communicator | None = None,
    ):
        api = require_training_api()
        options = session_options(api.ort, threads or default_threads())
        self._api = api
        self._flush = FlushToZero()
        self._state = api.CheckpointState.load_checkpoint(str(checkpoint or artifacts.checkpoint))
        with self._flush.creating():
            try:
                self._module = api.Module(
                    str(artifacts.training_model),
                    self._state,
                    str(artifacts.eval_model),
                    device=device,
                    session_options=options,
                )
            except Exception as e:  # ORT's own exception types: any failure to open the gradient graph
                pattern = r"Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'"
                missing = re.search(pattern, str(e))
                if missing is None:
                    raise
                raise UnsupportedError(
                    f"ONNX Runtime training has no {device} kernel for {missing.group(1)} (node "
                    f"{missing.group(2)!r}), which the gradient of this model needs, so the ort-training engine "
                    "cannot train it. Compile with engine='portable'."
                ) from e
            self._optimizer = api.Optimizer(str(artifacts.optimizer_model), self._module)
        self._optimizer.set_learning_rate(float(optimizer.learning_rate))
        self.artifacts = artifacts
        self._reduction = None
        if communicator is not None:
            state = self._state._state  # the pybind CheckpointState: its parameters' gradients are OrtValues
            self._trainable = [
                state.get_parameter(name) for name in state.parameter_names() if state.get_parameter(name).requires_grad
            ]
            sizes = [int(np.prod(p.data.shape())) for p in self._trainable]
            self._offsets = np.cumsum([0, *sizes]).tolist()
            self._reduction = GradientReduction.clipping_as(optimizer, communicator, self._offsets[-1])
        self._cleanup = weakref.finalize(self, shutil.rmtree, artifacts.directory, True) if owns_directory else None

    def train_step(self, x: Batch, labels: np.ndarray, first_row: int = 0) -> tuple[float, np.ndarray]:
        """Forward, backward and, when the loss is finite, one optimizer update.

        Returns (loss, outputs) of the batch before the update. A non-finite loss skips the update, so the
        weights stay those of the last good step; the caller decides what to do about it. `first_row` is not
        read: these graphs hold no Dropout (write_artifacts refuses it).
        """
        if self._reduction is not None:
            return self._reduced_train_step(x, labels, self._reduction)
        xs = [x] if isinstance(x, np.ndarray) else list(x)  # the graph's inputs: one per model input, then labels
        check_not_empty(xs[0])
        # The pybind objects behind Module/Optimizer, called directly: Module.__call__ converts every fetch and
        # rebuilds its argument list each step, about a tenth of a step for this model.
        fetches = self._api.OrtValueVector()
        with self._flush.active():
            self._module._model.train_step([*xs, labels], fetches)
            loss = float(fetches[0].numpy())
            if math.isfinite(loss):
                self._optimizer._optimizer.optimizer_step()
            self._module._model.lazy_reset_grad()
        return loss, fetches[1].numpy()

    def _reduced_train_step(
        self, x: Batch, labels: np.ndarray, reduction: GradientReduction
    ) -> tuple[float, np.ndarray]:
        """A data-parallel step: this process's gradients, copied into the reduction's buffer, all-reduced, copied
        back, then `optimizer_step` when the mean loss of all processes is finite."""
        xs = [x] if isinstance(x, np.ndarray) else list(x)
        examples = len(xs[0])
        fetches = self._api.OrtValueVector()
        with self._flush.active():
            loss, logits = 0.0, None
            if examples:  # an uneven last batch may leave this process no rows: it only joins the all-reduce
                self._module._model.train_step([*xs, labels], fetches)
                loss, logits = float(fetches[0].numpy()), fetches[1].numpy()
                for parameter, start, stop in zip(self._trainable, self._offsets[:-1], self._offsets[1:], strict=True):
                    reduction.gradients[start:stop] = parameter.grad.numpy().reshape(-1)
            loss = reduction.reduce(loss, examples)
            if math.isfinite(loss):
                for parameter, start, stop in zip(self._trainable, self._offsets[:-1], self._offsets[1:], strict=True):
                    gradient = parameter.grad
                    gradient.update_inplace(reduction.gradients[start:stop].reshape(gradient.shape()))
                self._optimizer._optimizer.optimizer_step()
            self._module._model.lazy_reset_grad()
        if logits is None:
            logits = np.empty((0, *self._output_shape()), np.float32)
        return loss, logits

    def _output_shape(self) -> tuple[int, ...]:
        """The per-example output shape, read off the eval model (for an empty batch's outputs)."""
        model = onnx.load(str(self.artifacts.eval_model), load_external_data=False)
        dims = model.graph.output[1].type.tensor_type.shape.dim[1:]
        return tuple(int(d.dim_value) for d in dims)

    def eval_step(self, x: Batch, labels: np.ndarray) -> tuple[float, np.ndarray]:
        xs = [x] if isinstance(x, np.ndarray) else list(x)
        check_not_empty(xs[0])
        fetches = self._api.OrtValueVector()
        with self._flush.active():
            self._module._model.eval_step([*xs, labels], fetches)
        return float(fetches[0].numpy()), fetches[1].numpy()

    def reset_gradients(self) -> None:
        self._module.lazy_reset_grad()

    @property
    def learning_rate(self) -> float:
        return float(self._optimizer.get_learning_rate())

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._optimizer.set_learning_rate(float(value))

    def get_weights(self) -> dict[str, np.ndarray]:
        parameters = self._state.parameters
        return {name: np.array(parameter.data, dtype=np.float32) for name, parameter in parameters}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        parameters = self._state.parameters
        for name, value in weights.items():
            parameters[name] = np.asarray(value, dtype=np.float32, order="C")

    def save_checkpoint(self, path: str | Path, include_optimizer_state: bool = False) -> None:
        self._api.CheckpointState.save_checkpoint(self._state, str(path), include_optimizer_state)

    def checkpoint_bytes(self, include_optimizer_state: bool = False) -> bytes:
        with tempfile.TemporaryDirectory(prefix="onnxtrain-ckpt-") as tmp:
            path = Path(tmp) / CHECKPOINT
            self.save_checkpoint(path, include_optimizer_state)
            return path.read_bytes()

    def close(self) -> None:
        # Dropping the references releases the native sessions.
        self._optimizer = self._module = self._state = None
        if self._cleanup is not None:
            self._cleanup()  # removes the temporary artifacts folder, once
