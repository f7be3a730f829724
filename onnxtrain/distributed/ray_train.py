"""`ray_fit`: a data-parallel fit in Ray Train workers (`TorchTrainer` with gloo, `ScalingConfig`,
`FailureConfig`), checkpointed once per epoch, so that a worker lost mid-run restarts the group from the last
epoch's checkpoint. Needs `pip install onnxtrain[ray]` (ray[train] and a CPU torch: Ray's collectives need it).

Not imported by `onnxtrain.distributed` itself: it reads saved models (`load_model`), which sits above the trainer.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnxtrain._checks import check_positive_int
from onnxtrain.distributed._world import init, leave
from onnxtrain.errors import RuntimeSetupError
from onnxtrain.loading import load_model

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
    """Train data-parallel in `workers` Ray Train workers, one epoch at a time, checkpointing after each.

    Args:
        build_model: returns a compiled model; each worker calls it when there is no checkpoint yet (process 0's
            weights are broadcast, so the models need not start alike).
        data: returns (x, y), the whole training data, in each worker; each takes its rows of every batch.
        epochs / batch_size: of the whole run, as `fit` takes them.
        workers: Ray Train workers (`ScalingConfig(num_workers=...)`).
        max_failures: how many times a lost worker restarts the group from the last checkpoint
            (`FailureConfig`); the resumed run continues exactly, as `load_model` + fit does.
        storage_path / name: where Ray keeps the run and its checkpoints (`RunConfig`).
        fit_options: further `fit` arguments (callbacks, shuffle, seed...), the same in every worker.

    Returns:
        The last epoch's metrics and checkpoint folder.

    Raises:
        RuntimeSetupError: Ray Train or torch is not installed.
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_int("workers", workers)
    ray = _ray()
    options = dict(fit_options or {})

    def loop(_: dict[str, Any]) -> None:
        world = init(backend="torch")  # the gloo group TorchTrainer has set up
        try:
            _epochs_in_worker(ray, world.rank, build_model, data, epochs, batch_size, options)
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


def _epochs_in_worker(
    ray: Any,
    rank: int,
    build_model: Callable[[], Any],
    data: Callable[[], tuple[Any, Any]],
    epochs: int,
    batch_size: int,
    options: dict[str, Any],
) -> None:
    """One worker's run: from the last checkpoint when there is one, one fit epoch at a time, each reported with
    a checkpoint that process 0 writes (the model with its optimizer state, and the epoch count)."""
    checkpoint = ray.train.get_checkpoint()
    done = 0
    if checkpoint is None:
        model = build_model()
    else:
        with checkpoint.as_directory() as folder:
            done = int(json.loads((Path(folder) / PROGRESS_FILE).read_text())["epochs"])
            model = load_model(Path(folder) / MODEL_FOLDER)  # weights, optimizer state and epoch count
        if rank == 0:  # a restart after a failure: worth a line in the run's log
            logger.warning("ray_fit: resuming from the checkpoint of epoch %d of %d", done, epochs)
    x, y = data()
    with model:
        for epoch in range(done + 1, epochs + 1):
            history = model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0, **options)
            metrics = {key: values[-1] for key, values in history.history.items()} | {"epoch": epoch}
            if rank != 0:
                ray.train.report(metrics)
                continue
            with tempfile.TemporaryDirectory(prefix="onnxtrain-ray-") as folder:
                model.save(Path(folder) / MODEL_FOLDER, save_optimizer_state=True)
                (Path(folder) / PROGRESS_FILE).write_text(json.dumps({"epochs": epoch}))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
