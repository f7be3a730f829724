"""`ray_fit`: a data-parallel fit in Ray Train workers (`TorchTrainer` with gloo, `ScalingConfig`,
`FailureConfig`): one `fit` call, whose callbacks keep their state across epochs, reporting each epoch with a
checkpoint, so that a worker lost mid-run restarts the group from the last epoch's checkpoint. Needs
`pip install onnxtrain[ray]` (ray[train] and a CPU torch: Ray's collectives need it).

Not imported by `onnxtrain.distributed` itself: it reads saved models (`model_files`), which sits above the trainer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain import model_files
from onnxtrain._checkpoint_check import check_checkpoint, checkpoint_limit
from onnxtrain._checks import check_positive_int
from onnxtrain._data_parallel_fit import any_process
from onnxtrain._recompile import recompile_resuming
from onnxtrain.callbacks import Callback, Logs
from onnxtrain.distributed._communicator import Communicator
from onnxtrain.distributed._world import init, leave
from onnxtrain.errors import InvalidArgumentError, ModelFileError, RuntimeSetupError
from onnxtrain.model_files import CHECKPOINT_FILE, CONFIG_FILE, MODEL_FILE
from onnxtrain.saving import reading_model

logger = logging.getLogger("onnxtrain")

MODEL_FOLDER = "model"
PROGRESS_FILE = "progress.json"


@dataclass(frozen=True)
class RayFitResult:
    """What `ray_fit` leaves: the last epoch's metrics and the folder of its checkpoint, whose `model/` is the
    trained model saved with its optimizer state (`onnxtrain.load_model(checkpoint / "model")`)."""

    metrics: dict[str, Any]
    checkpoint: Path


def _ray() -> Any:
    try:
        import ray.train
        import ray.train.torch
    except ImportError as e:
        raise RuntimeSetupError(
            "ray_fit needs Ray Train and torch (Ray's collectives run on torch.distributed): "
            "`pip install onnxtrain[ray]`."
        ) from e
    return ray


def ray_fit(
    build_model: Callable[[], Any],
    data: Callable[[], tuple[Any, Any]],
    *,
    epochs: int,
    batch_size: int,
    workers: int = 2,
    max_failures: int = 1,
    storage_path: str | Path,
    name: str = "onnxtrain",
    fit_options: Mapping[str, Any] | None = None,
) -> RayFitResult:
    """Train data-parallel in `workers` Ray Train workers: one `fit(epochs=...)` in each, reporting every epoch's
    figures to Ray Train, process 0's with a checkpoint.

    The callbacks of `fit_options` run as in that one fit (EarlyStopping stops the run, ReduceLROnPlateau keeps
    its count, CSVLogger writes every epoch in process 0), and the run's last checkpoint holds the model as fit
    returns it (the best epoch's weights after `EarlyStopping(restore_best_weights=True)`). A restart after a
    failure builds the model again (`build_model`), gives it the last checkpoint's state (`resume`) and fits the
    remaining epochs with the callbacks as `fit_options` gives them (in a fresh state: a `CSVLogger` needs
    `append=True` to keep the rows before the restart); a run that a callback stopped stays stopped.

    Args:
        build_model: returns a compiled model; each worker calls it at the start, and again at a restart, whose
            model then takes the last checkpoint's weights, optimizer state, learning rate and epoch count: the
            restarted run trains the model of the first (its layers, metrics of one's own, threads, engine).
            Process 0's weights are broadcast, so the models need not start alike.
        data: returns (x, y), the whole training data, in each worker; each takes its rows of every batch.
        epochs / batch_size: of the whole run, as `fit` takes them.
        workers: Ray Train workers (`ScalingConfig(num_workers=...)`).
        max_failures: how many times a lost worker restarts the group from the last checkpoint
            (`FailureConfig`); the resumed run continues exactly, as `load_model` + fit does.
        storage_path / name: where Ray keeps the run and its checkpoints (`RunConfig`).
        fit_options: further `fit` arguments (callbacks, validation, shuffle, seed...), the same in every worker.

    Returns:
        The last epoch's metrics and checkpoint folder.

    Raises:
        RuntimeSetupError: Ray Train or torch is not installed.
        InvalidArgumentError: `fit_options` names `epochs`, `batch_size` or `x`/`y` (ray_fit's own arguments).
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_int("workers", workers)
    options = dict(fit_options or {})
    taken = sorted(set(options) & {"epochs", "batch_size", "x", "y", "dataset"})
    if taken:
        raise InvalidArgumentError(
            f"ray_fit(fit_options=...) takes further fit arguments; ray_fit sets {taken} itself. Received: "
            f"fit_options with {taken}: pass them as ray_fit's own arguments (epochs=..., batch_size=..., data=...)"
        )
    ray = _ray()

    def loop(_: dict[str, Any]) -> None:
        world = init(backend="torch")  # the gloo group TorchTrainer has set up
        try:
            fit_in_worker(ray, world, build_model, data, epochs, batch_size, options)
        finally:
            leave()

    trainer = ray.train.torch.TorchTrainer(
        loop,
        torch_config=ray.train.torch.TorchConfig(backend="gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=False),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(Path(storage_path).absolute()),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeSetupError(f"Ray Train ended without a checkpoint (error: {result.error!r})")
    return RayFitResult(dict(result.metrics or {}), Path(result.checkpoint.path))


def fit_in_worker(
    ray: Any,
    world: Communicator,
    build_model: Callable[[], Any],
    data: Callable[[], tuple[Any, Any]],
    epochs: int,
    batch_size: int,
    options: Mapping[str, Any],
) -> None:
    """One worker's run: from the last checkpoint when there is one, the remaining epochs in one fit call, whose
    epochs `_ReportEachEpoch` reports (process 0's with a checkpoint: the model with its optimizer state, and
    how many epochs it holds)."""
    checkpoint = ray.train.get_checkpoint()
    done, finished = 0, False
    model = build_model()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            progress = json.loads((Path(folder) / PROGRESS_FILE).read_text())
            done, finished = int(progress["epochs"]), bool(progress.get("finished", False))
            resume(model, Path(folder) / MODEL_FOLDER)  # weights, optimizer state, rate and epoch count
        if world.rank == 0:  # a restart after a failure: worth a line in the run's log
            logger.warning("ray_fit: resuming from the checkpoint of epoch %d of %d", done, epochs)
    if finished or done >= epochs:  # the failure came after the run's last report
        model.close()
        return
    x, y = data()
    fit = {"verbose": 0, **options}
    callbacks = fit.pop("callbacks", None)
    callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
    with model:  # last, so that it reports the figures every other callback added (learning_rate) and its decisions
        reporter = _ReportEachEpoch(ray, world, last_epoch=epochs)
        model.fit(x, y, epochs=epochs - done, batch_size=batch_size, callbacks=[*callbacks, reporter], **fit)


def resume(model: Any, directory: Path) -> None:
    """Give `model`, compiled by `build_model`, the weights, optimizer state and step, learning rate, epoch count
    and input scale of the save in `directory` (`save_optimizer_state=True`), as `load_model` gives a model it
    rebuilds: compiled again with the settings compile resolved for it (its metrics of one's own, engine,
    threads), not those the save names, which a metric function's name alone cannot rebuild.

    Raises:
        ModelFileError: the save is not this model's (other parameter names or shapes), holds no optimizer state,
            or is damaged.
    """
    with reading_model(directory) as files:
        config = model_files.read_config(files[CONFIG_FILE])
        model_files.check_saved_values(config, files[CONFIG_FILE])
        model_bytes = model_files.read_file(files[MODEL_FILE])
        weights = model_files.onnx_weights(model_bytes, files[MODEL_FILE], config)
        if CHECKPOINT_FILE not in files or not config.get("optimizer_state_saved"):
            raise ModelFileError(f"{directory} holds no optimizer state to resume from: save_optimizer_state=True")
        state = model_files.read_file(files[CHECKPOINT_FILE], checkpoint_limit(weights))
    expected = config.get("checkpoint_sha256")
    if expected is not None and hashlib.sha256(state).hexdigest() != expected:
        raise ModelFileError(f"{files[CHECKPOINT_FILE]} is damaged: its SHA-256 differs from the one config.json holds")
    mine = model.get_weights()
    model_files.check_weights(mine, weights, files[MODEL_FILE], model.graph.trainable_params_by_name())
    check_checkpoint(state, mine, files[CHECKPOINT_FILE])
    model.set_weights({name: weights[name] for name in mine})
    recompile_resuming(model, state)
    resumed = model._trainer
    resumed.epochs_trained = int(config.get("epochs_trained", 0))
    rate = config.get("current_learning_rate")
    if rate is not None:
        resumed.engine.learning_rate = float(rate)
    model.input_scale = float(config.get("input_scale", 1.0))


class _ReportEachEpoch(Callback):
    """Reports every epoch's figures (and "epoch") to Ray Train from every worker, as Ray Train asks, process 0's
    with a checkpoint; and, at the end of the fit, the model again where a callback changed its weights then
    (EarlyStopping restoring the best epoch's), so that the run's last checkpoint is the model fit returns."""

    def __init__(self, ray: Any, world: Communicator, last_epoch: int):
        self.ray, self.world, self.last_epoch = ray, world, last_epoch
        self._metrics: dict[str, Any] = {}
        self._reported: dict[str, np.ndarray] = {}

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        # The stop that fit agrees on after the callbacks, agreed here already: the checkpoint records it.
        self.model.stop_training = any_process(self.world, self.model.stop_training)
        self._metrics = {**dict(logs or {}), "epoch": epoch}
        self._report(epoch, finished=self.model.stop_training or epoch >= self.last_epoch)

    def on_train_end(self, logs: Logs | None = None) -> None:
        weights = self.model.get_weights()
        changed = weights.keys() != self._reported.keys() or any(
            not np.array_equal(weights[name], self._reported[name]) for name in weights
        )
        if self._metrics and any_process(self.world, changed):
            self._report(int(self._metrics["epoch"]), finished=True)

    def _report(self, epoch: int, finished: bool) -> None:
        self._reported = self.model.get_weights()
        if self.world.rank != 0:
            self.ray.train.report(self._metrics)
            return
        with tempfile.TemporaryDirectory(prefix="onnxtrain-ray-") as folder:
            self.model.save(Path(folder) / MODEL_FOLDER, save_optimizer_state=True)
            (Path(folder) / PROGRESS_FILE).write_text(json.dumps({"epochs": epoch, "finished": finished}))
            self.ray.train.report(self._metrics, checkpoint=self.ray.train.Checkpoint.from_directory(folder))
