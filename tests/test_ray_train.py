"""ray_fit's restart (`distributed/ray_train.py`: `fit_in_worker`, `resume`): after a worker is lost, the group
builds the model again with `build_model` and gives it the last checkpoint's state, so the restarted run is the
first one's (its metric function of one's own, its threads) and ends where an uninterrupted run ends. Ray Train is
stood in for by `Workers` (the calls `fit_in_worker` makes), in a fake world of two threads
(tests/test_distributed.py)."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_distributed import ThreadWorld

import onnxtrain.distributed as dist
from onnxtrain import Sequential
from onnxtrain.callbacks import Callback
from onnxtrain.distributed.ray_train import MODEL_FOLDER, fit_in_worker, resume
from onnxtrain.errors import ModelFileError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(6)
X = RNG.normal(size=(30, 5)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)
EPOCHS, LOST_AT = 4, 3


@pytest.fixture(autouse=True)
def _alone_after() -> Any:
    yield
    dist.leave()


def margin(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """A metric function of one's own: a save names it, and cannot rebuild it."""
    return np.abs(y_pred[:, 1] - y_pred[:, 0])


def build_model() -> Sequential:
    model = Sequential.of(Input(5), Dense(6, activation="tanh"), Dense(2), seed=3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy", margin], threads=1)
    return model


class Checkpoint:
    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.path)


class Workers:
    """Ray Train's worker API as `fit_in_worker` calls it, for every worker of one run: `get_checkpoint` (the
    last checkpoint of the run before, or None), `report` (recorded per worker: process 0's checkpoint is kept,
    as Ray persists the folder before the report returns) and `Checkpoint.from_directory`."""

    def __init__(self, storage: Path, checkpoint: Checkpoint | None = None):
        self.storage, self.checkpoint = storage, checkpoint
        self.reports: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.train, self.Checkpoint = self, self

    def get_checkpoint(self) -> Checkpoint | None:
        return self.checkpoint

    def from_directory(self, folder: str) -> Checkpoint:
        kept = self.storage / f"epoch_{len(list(self.storage.iterdir())) + 1}"
        shutil.copytree(folder, kept)
        return Checkpoint(kept)

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
        with self._lock:
            self.reports.append((int(metrics["epoch"]), metrics))
            if checkpoint is not None:
                self.checkpoint = checkpoint  # the run's last


class Trained(Callback):
    """What each worker's fitting model is: its weights at the end and its threads."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: dict[str, np.ndarray] = {}
        self.threads: int | None = None

    def on_train_begin(self, logs: Any = None) -> None:
        self.threads = self.model._trainer.threads  # type: ignore[attr-defined]

    def on_train_end(self, logs: Any = None) -> None:
        self.weights = self.model.get_weights()


class LoseWorker(Callback):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if epoch == LOST_AT and self.rank == 1:
            raise RuntimeError("worker lost")


def _run(workers: Workers, losing: bool = False) -> list[Trained]:
    world = ThreadWorld(2)
    dist.init(communicator=world)
    trained = [Trained(), Trained()]

    def worker(rank: int) -> None:
        callbacks = [LoseWorker(rank), trained[rank]] if losing else [trained[rank]]
        fit_in_worker(workers, world, build_model, lambda: (X, Y), EPOCHS, 6, {"callbacks": callbacks, "seed": 1})

    world.run(worker)
    dist.leave()
    return trained


@pytest.mark.slow
def test_a_restart_trains_the_first_run_s_model_on_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    """Before: the restart rebuilt the model from the save (load_model), which cannot rebuild a metric function
    (ModelFileError naming 'margin'), and dropped compile's threads (None: a thread per core in every worker)."""
    (tmp_path / "straight").mkdir()
    straight = Workers(tmp_path / "straight")
    uninterrupted = _run(straight)
    (tmp_path / "first").mkdir()
    first = Workers(tmp_path / "first")
    with pytest.raises((RuntimeError, threading.BrokenBarrierError)):
        _run(first, losing=True)
    assert first.checkpoint is not None and first.checkpoint.path.name == f"epoch_{LOST_AT - 1}"
    (tmp_path / "restart").mkdir()
    restart = Workers(tmp_path / "restart", checkpoint=first.checkpoint)
    restarted = _run(restart)
    for again, straight_through in zip(restarted, uninterrupted, strict=True):
        assert again.threads == straight_through.threads == 1
        for name, value in straight_through.weights.items():
            np.testing.assert_allclose(again.weights[name], value, rtol=1e-6, atol=1e-7)
    assert sorted(epoch for epoch, _ in restart.reports) == [3, 3, 4, 4]  # the epochs left, in both workers
    for epoch, metrics in restart.reports:
        expected = next(m for e, m in straight.reports if e == epoch)
        assert metrics["margin"] == pytest.approx(expected["margin"], rel=1e-5)


@pytest.mark.slow
def test_resume_refuses_the_save_of_another_model(tmp_path: Path) -> None:
    with Sequential.of(Input(5), Dense(3), Dense(2), seed=1) as other:
        other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        other.save(tmp_path / MODEL_FOLDER, save_optimizer_state=True)
        other.save(tmp_path / "weights_only")
    with build_model() as model, pytest.raises(ModelFileError, match=r"parameter dense_1.kernel has shape \(5, 3\)"):
        resume(model, tmp_path / MODEL_FOLDER)
    with build_model() as model, pytest.raises(ModelFileError, match="holds no optimizer state to resume from"):
        resume(model, tmp_path / "weights_only")
