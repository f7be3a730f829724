"""Data-parallel training (onnxtrain.distributed): the communicator helpers and the packed gradient all-reduce in a
fake in-process world of threads, a whole fit in that world against a fit alone, layer state (BatchNormalization)
and Dropout over processes, and the equivalence table over two MPI processes (tests/distributed_worker.py) against
the same runs in one process."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import distributed_worker
import numpy as np
import pytest

import onnxtrain.distributed as dist
from onnxtrain import History, Sequential, load_model, losses
from onnxtrain._batches import Batches
from onnxtrain._evaluation import BatchFigures, evaluate_batches
from onnxtrain._float_env import FlushToZero
from onnxtrain._runtime import Device
from onnxtrain.callbacks import Callback, CSVLogger
from onnxtrain.distributed import _torch
from onnxtrain.distributed._mpi import _check_contiguous
from onnxtrain.errors import (
    DataParallelError,
    InvalidArgumentError,
    InvalidTypeError,
    ModelStateError,
    PeerProcessError,
    UnsupportedError,
)
from onnxtrain.layers import Dense, Dropout, Input
from onnxtrain.metrics import Precision
from onnxtrain.optimizers import SGD, AdaDelta, AdaGrad, AdaGradDA, Adam, Adamax, Ftrl, Momentum, Nadam, RMSProp
from onnxtrain.portable import PortableEngine, _fused

HERE = Path(__file__).parent


class ThreadWorld:
    """A fake world of `size` threads: one communicator object (so that `dist.init` can hold it) whose rank is
    the calling thread's. Collectives meet at a barrier and sum in rank order, so every thread gets the same bits.
    """

    def __init__(self, size: int):
        self._size = size
        self._barrier = threading.Barrier(size, timeout=60)
        self._slots: list[Any] = [None] * size
        self._local = threading.local()

    @property
    def rank(self) -> int:
        return int(getattr(self._local, "rank", 0))

    @property
    def size(self) -> int:
        return self._size

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        self._slots[self.rank] = buffer.copy()
        self._barrier.wait()
        total = self._slots[0].copy()
        for part in self._slots[1:]:
            total += part
        self._barrier.wait()  # nobody writes the next collective's slot before everyone has read this one
        buffer[...] = total

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        if self.rank == root:
            self._slots[root] = buffer.copy()
        self._barrier.wait()
        value = self._slots[root]
        self._barrier.wait()
        buffer[...] = value

    def abort(self, code: int = 1) -> None:
        self._barrier.abort()

    def run(self, function: Callable[[int], Any]) -> list[Any]:
        """`function(rank)` in each thread of the world; its results in rank order (an exception is re-raised)."""
        results: list[Any] = [None] * self._size
        errors: list[BaseException] = []

        def body(rank: int) -> None:
            self._local.rank = rank
            try:
                results[rank] = function(rank)
            except BaseException as e:
                errors.append(e)
                self._barrier.abort()  # the others must not wait for this thread

        threads = [threading.Thread(target=body, args=(rank,)) for rank in range(self._size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results


@pytest.fixture(autouse=True)
def _alone_after() -> Any:
    yield
    dist.leave()


# --- communicator helpers ---------------------------------------------------------------------------------------
def test_broadcast_bytes_gives_every_process_the_roots_bytes() -> None:
    world = ThreadWorld(3)
    received = world.run(lambda rank: dist.broadcast_bytes(world, b"weights of 1" if rank == 1 else None, root=1))
    assert received == [b"weights of 1"] * 3


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("count", [0, 1, 4, 7, 11])
def test_local_rows_split_a_batch_into_contiguous_shares(size: int, count: int) -> None:
    shares = [dist.local_rows(10, 10 + count, rank, size) for rank in range(size)]
    rows = [row for share in shares for row in range(share.start, share.stop)]
    assert rows == list(range(10, 10 + count))
    lengths = [share.stop - share.start for share in shares]
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize(
    ("arguments", "error", "pattern"),
    [
        ((0, 5, 3, 2), InvalidArgumentError, r"0 <= rank < size. Received: rank=3, size=2"),
        ((0, 5, 0, 0), InvalidArgumentError, r"0 <= rank < size. Received: rank=0, size=0"),
        ((6, 5, 0, 1), InvalidArgumentError, r"0 <= start <= stop of a global batch. Received: start=6, stop=5"),
        ((-1, 5, 0, 1), InvalidArgumentError, r"Received: start=-1, stop=5"),
        ((0, 5.0, 0, 1), InvalidTypeError, r"expects int arguments. Received: stop=5.0 \(float\)"),
        ((0, 5, True, 2), InvalidTypeError, r"Received: rank=True \(bool\)"),
    ],
)
def test_local_rows_refuses_rows_and_ranks_that_are_not_a_share(
    arguments: tuple[Any, ...], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        dist.local_rows(*arguments)


def test_check_contiguous_names_what_it_received() -> None:
    with pytest.raises(InvalidArgumentError, match=r"C-contiguous numpy array.*not C-contiguous"):
        _check_contiguous(np.zeros((4, 4), np.float32)[:, 1], "all_reduce_sum")
    with pytest.raises(InvalidArgumentError, match="Received: list"):
        _check_contiguous([1.0], "broadcast")  # type: ignore[arg-type]


def test_init_rejects_an_unknown_backend_and_a_non_communicator() -> None:
    with pytest.raises(InvalidArgumentError, match=r"one of \['mpi', 'torch'\]. Received: 'nccl'"):
        dist.init(backend="nccl")
    with pytest.raises(InvalidTypeError, match=r"expects a Communicator.*Received: int"):
        dist.init(communicator=3)  # type: ignore[arg-type]


def test_init_and_leave_set_the_world_of_this_process() -> None:
    world = ThreadWorld(1)
    assert (dist.world(), dist.rank(), dist.size()) == (None, 0, 1)
    assert dist.init(communicator=world) is world
    assert (dist.world(), dist.rank(), dist.size()) == (world, 0, 1)
    dist.leave()
    assert dist.world() is None


# --- torch.distributed, faked: what TorchCommunicator makes of a missing launcher and of a peer's failure ---------
class FakeTorchDistributed:
    """torch.distributed's calls that TorchCommunicator makes, whose collectives fail as gloo's do when a peer
    process has died."""

    ReduceOp = SimpleNamespace(SUM="sum")

    def __init__(self, initialized: bool, rendezvous_error: Exception | None = None):
        self.initialized = initialized
        self.rendezvous_error = rendezvous_error

    def is_initialized(self) -> bool:
        return self.initialized

    def init_process_group(self, backend: str) -> None:
        if self.rendezvous_error is not None:
            raise self.rendezvous_error
        self.initialized = True

    def get_rank(self) -> int:
        return 0

    def get_world_size(self) -> int:
        return 2

    def all_reduce(self, tensor: Any, op: Any) -> None:
        raise RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:41865. GLHF!")

    def broadcast(self, tensor: Any, src: int) -> None:
        raise RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:41865. GLHF!")


def _fake_torch(monkeypatch: pytest.MonkeyPatch, distributed: FakeTorchDistributed) -> None:
    monkeypatch.setattr(_torch, "_dist", lambda: (SimpleNamespace(from_numpy=lambda a: a), distributed))


def test_torch_backend_outside_a_launcher_says_how_to_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _torch.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    _fake_torch(monkeypatch, FakeTorchDistributed(initialized=False, rendezvous_error=ValueError("RANK expected")))
    with pytest.raises(InvalidArgumentError, match=r"a process that torchrun or Ray Train started.*Received: no RANK "
                       r"in the environment. Launch with `torchrun"):  # fmt: skip
        dist.init(backend="torch")
    assert dist.world() is None


def test_torch_backend_whose_rendezvous_fails_names_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(_torch.LAUNCHER_VARIABLES, ("1", "2", "10.0.0.1", "29500"), strict=True):
        monkeypatch.setenv(name, value)
    cause = RuntimeError("The client socket has timed out after 1800s while trying to connect to (10.0.0.1, 29500)")
    _fake_torch(monkeypatch, FakeTorchDistributed(initialized=False, rendezvous_error=cause))
    with pytest.raises(PeerProcessError, match=r"could not join the torch.distributed group \(rank 1 of 2, at "
                       r"10.0.0.1:29500\)") as caught:  # fmt: skip
        dist.init(backend="torch")
    assert caught.value.__cause__ is cause


@pytest.mark.parametrize("call", ["all_reduce_sum", "broadcast"])
def test_torch_collective_after_a_peer_failed_says_a_peer_failed(monkeypatch: pytest.MonkeyPatch, call: str) -> None:
    _fake_torch(monkeypatch, FakeTorchDistributed(initialized=True))
    world = dist.init(backend="torch")
    with pytest.raises(PeerProcessError, match=rf"A peer process of the torch.distributed world failed or left "
                       rf"during {call} \(this is process 0 of 2\)") as caught:  # fmt: skip
        getattr(world, call)(np.zeros(3, np.float32))
    assert "GLHF" not in str(caught.value) and "GLHF" in str(caught.value.__cause__)


# --- the packed all-reduce ----------------------------------------------------------------------------------------
def _shares(rows: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[slice]]:
    """Per-example gradients (sum(rows), 6) and losses, and each process's rows of them."""
    rng = np.random.default_rng(seed)
    gradients = rng.normal(size=(sum(rows), 6)).astype(np.float32)
    losses = rng.uniform(0.5, 2.0, sum(rows))
    bounds = np.cumsum([0, *rows])
    return gradients, losses, [slice(a, b) for a, b in itertools.pairwise(bounds)]


def _reduce_in(
    world: ThreadWorld, reduction_args: dict[str, Any], gradients: np.ndarray, losses: np.ndarray, shares: list[slice]
) -> list[tuple[float, np.ndarray]]:
    def step(rank: int) -> tuple[float, np.ndarray]:
        reduction = dist.GradientReduction(world, gradients.shape[1], **reduction_args)
        rows = shares[rank]
        count = rows.stop - rows.start
        reduction.gradients[:] = gradients[rows].mean(axis=0) if count else np.nan  # NaN: must be ignored
        loss = reduction.reduce(float(losses[rows].mean()) if count else float("nan"), count)
        return loss, reduction.gradients.copy()

    return world.run(step)


def test_reduction_gives_the_mean_over_uneven_shares_and_empty_ones() -> None:
    gradients, losses, shares = _shares([3, 0, 5])
    results = _reduce_in(ThreadWorld(3), {}, gradients, losses, shares)
    for loss, reduced in results:
        np.testing.assert_allclose(loss, losses.mean(), rtol=1e-6)
        np.testing.assert_allclose(reduced, gradients.mean(axis=0), rtol=1e-5, atol=1e-7)
    assert all(np.array_equal(reduced, results[0][1]) for _, reduced in results)


@pytest.mark.parametrize("clipping", [{"clip_norm": 0.05}, {"clip_value": 0.02}])
def test_reduction_clips_the_reduced_gradient_not_each_share(clipping: dict[str, float]) -> None:
    gradients, losses, shares = _shares([4, 4], seed=1)
    mean = gradients.mean(axis=0)
    if "clip_norm" in clipping:
        expected = mean * min(1.0, clipping["clip_norm"] / (np.linalg.norm(mean) + 1e-6))
        per_share = [
            g.mean(0) * min(1.0, clipping["clip_norm"] / np.linalg.norm(g.mean(0)))
            for g in (gradients[s] for s in shares)
        ]
    else:
        expected = np.clip(mean, -0.02, 0.02)
        per_share = [np.clip(gradients[s].mean(0), -0.02, 0.02) for s in shares]
    results = _reduce_in(ThreadWorld(2), clipping, gradients, losses, shares)
    np.testing.assert_allclose(results[0][1], expected, rtol=1e-5, atol=1e-8)
    assert not np.allclose(np.mean(per_share, axis=0), expected, rtol=1e-3)  # clipping first would differ


def test_reduction_averages_layer_state_by_rows_without_clipping_it() -> None:
    world = ThreadWorld(3)
    rows = [3, 0, 1]  # process 1 has no rows: its layer state (NaN here) must count for nothing
    states = [np.array([1.0, 10.0], np.float32), np.full(2, np.nan, np.float32), np.array([5.0, -2.0], np.float32)]

    def step(rank: int) -> np.ndarray:
        reduction = dist.GradientReduction(world, 3, clip_value=0.01, clip_norm=0.01, layer_state=2)
        reduction.gradients[:] = rank + 1.0
        reduction.layer_state[:] = states[rank]
        reduction.reduce(1.0, rows[rank])
        return reduction.layer_state.copy()

    expected = (3 * states[0] + 1 * states[2]) / 4  # [2, 7]: weighted by rows, far above the clipping bounds
    for reduced in world.run(step):
        np.testing.assert_allclose(reduced, expected, rtol=1e-7)


def test_a_non_finite_loss_in_one_process_reaches_every_process() -> None:
    gradients, losses, shares = _shares([2, 2])
    losses[3] = np.inf
    results = _reduce_in(ThreadWorld(2), {}, gradients, losses, shares)
    assert all(not np.isfinite(loss) for loss, _ in results)


# --- a whole fit in the fake world -------------------------------------------------------------------------------
def _model(engine: str, seed: int, optimizer: Any = None, dropout: bool = False) -> Sequential:
    dropped = [Dropout(0.5, seed=1)] if dropout else []
    model = Sequential.of(Input(5), Dense(7, activation="tanh"), *dropped, Dense(3), seed=seed)
    model.compile(
        optimizer=optimizer or Adam(0.05, clip_norm=0.4),
        loss="sparse_categorical_crossentropy",
        engine=engine,
        metrics=["accuracy"],
    )
    return model


def _data(rows: int = 29) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(size=(rows, 5)).astype(np.float32), rng.integers(0, 3, rows)


def _fit_in(
    world: ThreadWorld | None, engine: str, dropout: bool = False, **fit: Any
) -> list[tuple[dict[str, np.ndarray], Any]]:
    x, y = _data()

    def train(rank: int) -> tuple[dict[str, np.ndarray], Any]:
        with _model(engine, seed=5 + rank, dropout=dropout) as model:  # process 0's weights and seed must win
            history = model.fit(x, y, epochs=2, batch_size=6, verbose=0, validation=(x[:9], y[:9]), **fit)
            return model.get_weights(), history

    if world is None:
        return [train(0)]
    dist.init(communicator=world)
    return world.run(train)


def _max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def _scale(weights: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(w).max()) for w in weights.values())


@pytest.mark.slow
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_three_threads_train_as_one_process(dropout: bool) -> None:
    # Portable only: onnxblock builds ort-training's artifacts through one global model accessor, which threads
    # cannot share; test_two_mpi_processes_train_as_one covers both engines. With Dropout, fit tells each process
    # where its rows start in the global batch, so the three draw one process's masks.
    [(alone, alone_history)] = _fit_in(None, "portable", dropout)
    results = _fit_in(ThreadWorld(3), "portable", dropout)  # 29 rows, batches of 6: shares 2/2/2, last 1/2/2
    for weights, history in results:
        assert _max_difference(weights, alone) <= 1e-6 * _scale(alone)
        assert np.array_equal(weights["dense_1.kernel"], results[0][0]["dense_1.kernel"])
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):  # all-reduced: those of the fit alone
            np.testing.assert_allclose(history.history[key], alone_history.history[key], rtol=1e-5)


def test_weights_set_on_process_zero_alone_after_compile_are_every_process_s_at_fit() -> None:
    """Horovod's habit: load weights on process 0 only, after compile. fit starts every process from them."""
    x, y = _data()
    pretrained = {name: value + 0.25 for name, value in _model("portable", seed=9).get_weights().items()}
    with _model("portable", seed=9) as model:
        model.set_weights(pretrained)
        model.fit(x, y, epochs=1, batch_size=6, verbose=0)
        alone = model.get_weights()

    def train(rank: int) -> dict[str, np.ndarray]:
        with _model("portable", seed=9) as model:
            if rank == 0:
                model.set_weights(pretrained)
            model.fit(x, y, epochs=1, batch_size=6, verbose=0)
            return model.get_weights()

    world = ThreadWorld(2)
    dist.init(communicator=world)
    for weights in world.run(train):
        assert _max_difference(weights, alone) <= 1e-6 * _scale(alone)


def test_only_process_zero_runs_the_callbacks_that_write(tmp_path: Path) -> None:
    class Epochs(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[int] = []

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seen.append(epoch)

    x, y = _data()
    world = ThreadWorld(2)
    dist.init(communicator=world)
    counters = [Epochs(), Epochs()]

    def train(rank: int) -> None:
        with _model("portable", seed=1) as model:
            model.fit(
                x,
                y,
                epochs=2,
                batch_size=6,
                verbose=0,
                callbacks=[CSVLogger(tmp_path / f"log{rank}.csv"), counters[rank]],
            )

    world.run(train)
    assert (tmp_path / "log0.csv").exists() and not (tmp_path / "log1.csv").exists()
    assert [c.seen for c in counters] == [[1, 2], [1, 2]]  # callbacks of your own run everywhere


def test_a_callback_stopping_one_process_stops_all() -> None:
    class StopAtBatch(Callback):
        def __init__(self, rank: int) -> None:
            super().__init__()
            self.rank = rank

        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.rank == 1 and batch == 2:
                self.model.stop_training = True

    x, y = _data()
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train(rank: int) -> int:
        with _model("portable", seed=1) as model:
            model.fit(x, y, epochs=3, batch_size=6, verbose=0, callbacks=[StopAtBatch(rank)])
            return int(model._trainer.engine.step)  # type: ignore[union-attr]

    assert world.run(train) == [2, 2]


def test_fit_refuses_a_world_joined_after_compile() -> None:
    x, y = _data()
    with _model("portable", seed=1) as model:
        dist.init(communicator=ThreadWorld(1))
        with pytest.raises(
            ModelStateError, match=r"init\(\) was called after compile\(\).*Call compile\(\) again to train over"
        ):
            model.fit(x, y, epochs=1, verbose=0)


def test_fit_after_leave_says_to_compile_again() -> None:
    x, y = _data()
    dist.init(communicator=ThreadWorld(1))
    with _model("portable", seed=1) as model:
        dist.leave()
        with pytest.raises(ModelStateError, match=r"leave\(\) was called after compile\(\).*Call compile\(\) again "
                           r"to train alone") as caught:  # fmt: skip
            model.fit(x, y, epochs=1, verbose=0)
        assert "Call init() first" not in str(caught.value)
        model.compile(optimizer=Adam(0.05), loss="sparse_categorical_crossentropy")  # the fix it names
        model.fit(x, y, epochs=1, verbose=0)


def _errors_in(world: ThreadWorld, function: Callable[[int], Any]) -> list[BaseException | None]:
    """Each process's exception from `function(rank)` (None where it returned)."""

    def caught(rank: int) -> BaseException | None:
        try:
            function(rank)
        except Exception as e:
            return e
        return None

    return world.run(caught)


def _the_same_error(errors: list[BaseException | None], kind: type[Exception]) -> str:
    """The one message that every process raised, as `kind`."""
    assert all(isinstance(e, kind) for e in errors), errors
    assert len({str(e) for e in errors}) == 1, errors
    return str(errors[0])


COMPILE_DIFFERENCES: dict[str, tuple[Callable[[int], dict[str, Any]], str]] = {
    # what process r compiles, and what every process must say about it
    "optimizer": (
        lambda r: {"optimizer": "sgd" if r == 1 else "adam"},
        "Received: optimizer: 'sgd' in process 1, 'adam' in process 0.",
    ),
    "clip_norm": (
        lambda r: {"optimizer": Adam(0.01, clip_norm=1.0 if r == 2 else None)},
        "Received: optimizer clip_norm: 1.0 in process 2, None in process 0.",
    ),
    "units": (
        lambda r: {"units": 9 if r == 1 else 8},
        "Received: parameter dense_1.kernel: shape (5, 9) in process 1, shape (5, 8) in process 0.",
    ),
    "layers": (
        lambda r: {"extra": r != 2},
        "Received: parameter dense_3.kernel: absent in process 2, shape (3, 3) in process 0.",
    ),
    "metrics": (
        lambda r: {"metrics": ["accuracy"] if r == 0 else []},
        "Received: metrics: [] in process 1, ['accuracy'] in process 0 (2 processes differ from process 0).",
    ),
    "metric_arguments": (
        lambda r: {"metrics": [Precision(top_k=2 if r == 2 else 1)]},
        "metrics: [{'class_name': 'Precision', 'config': {'thresholds': None, 'top_k': 2, 'class_id': None, "
        "'name': 'precision'}}] in process 2",
    ),
    "loss": (
        lambda r: {"loss": "sparse_categorical_crossentropy" if r == 0 else "mse", "metrics": []},
        'Received: loss: {"name": "mse"} in process 1, '
        f"{json.dumps(losses.get('sparse_categorical_crossentropy').get_config(), sort_keys=True)} in process 0 "
        "(2 processes differ",
    ),
}


@pytest.mark.parametrize("case", sorted(COMPILE_DIFFERENCES))
def test_compile_refuses_processes_that_compile_different_settings_or_shapes(case: str) -> None:
    """Process 0's weights are broadcast at compile, its settings are not: a process that compiled another
    optimizer or parameter shape would train another run (or garble the broadcast). Every process
    raises the same error, naming the setting and both values, before the engine's first collective call."""
    options, expected = COMPILE_DIFFERENCES[case]
    world = ThreadWorld(3)
    dist.init(communicator=world)

    def compile_in(rank: int) -> None:
        settings = {"units": 8, "optimizer": "adam", "metrics": ["accuracy"], "extra": False}
        settings.update(options(rank))
        extra = [Dense(3)] if settings["extra"] else []
        model = Sequential.of(Input(5), Dense(settings["units"]), Dense(3), *extra, seed=rank)
        with model:
            model.compile(
                optimizer=settings["optimizer"],
                loss=settings.get("loss", "sparse_categorical_crossentropy"),
                metrics=settings["metrics"],
            )

    message = _the_same_error(_errors_in(world, compile_in), DataParallelError)
    assert message.startswith("A data-parallel compile expects every process to compile the same model")
    assert expected in message


def test_compile_in_a_world_compares_a_lambda_metric_by_its_name() -> None:
    # A lambda metric trains (only save refuses it, having no name to save): the processes compare its name.
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def compile_in(rank: int) -> bool:
        with Sequential.of(Input(5), Dense(3), seed=rank) as model:
            model.compile(optimizer="adam", loss="mse", metrics=[lambda y, p: np.abs(y - p).mean(axis=-1)])
            return model.is_compiled

    assert world.run(compile_in) == [True, True]


def test_compile_in_a_world_accepts_models_built_alike_with_other_seeds() -> None:
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def weights(rank: int) -> dict[str, np.ndarray]:
        with _model("portable", seed=5 + rank) as model:  # other starting weights: process 0's are broadcast
            return model.get_weights()

    first, second = world.run(weights)
    assert all(np.array_equal(first[k], second[k]) for k in first)


FIT_DIFFERENCES: dict[str, tuple[Callable[[int], dict[str, Any]], str]] = {
    # fit's arguments in process r, and what every process must say
    "validation_sizes": (
        lambda r: {"validation": (_data()[0][: 9 + 3 * r], _data()[1][: 9 + 3 * r])},
        "same whole validation set (each evaluates its share of it: not a shard per process). Received: 9 "
        "validation examples in process 0, 12 validation examples in process 1, 15 validation examples in process 2",
    ),
    "validation_in_one": (
        lambda r: {"validation": _data() if r == 1 else None},
        "Received: no validation data in processes 0, 2, 29 validation examples in process 1",
    ),
    "validation_split": (
        lambda r: {"validation_split": 0.2 if r == 0 else 0.0},
        "shard per process). Received: 23 examples in process 0, 29 examples in processes 1, 2",
    ),
    "batch_size": (
        lambda r: {"batch_size": 8 if r == 2 else 6},
        "same batch_size. Received: batch_size=6 in processes 0, 1, batch_size=8 in process 2",
    ),
    "epochs": (lambda r: {"epochs": 1 + r}, "same number of epochs. Received: epochs=1 in process 0, epochs=2"),
    "shuffle": (lambda r: {"shuffle": r == 0}, "same shuffle flag. Received: shuffle=True in process 0, shuffle=False"),
    "learning_rate": (
        lambda r: {"learning_rate": 0.5 if r == 1 else None},
        "same learning rate (model.learning_rate set in some processes only, or by a callback in some processes "
        "only at the end of the last fit: give learning-rate callbacks to every process). Received: "
        "learning_rate=0.05 in processes 0, 2, learning_rate=0.5 in process 1",
    ),
    "batch_smaller_than_world": (
        lambda r: {"batch_size": 2},
        "over 3 processes expects batch_size >= 3 (a row of each batch for each process). Received: batch_size=2",
    ),
}


@pytest.mark.parametrize("case", sorted(FIT_DIFFERENCES))
def test_fit_refuses_processes_that_fit_differently(case: str) -> None:
    arguments, expected = FIT_DIFFERENCES[case]
    x, y = _data()
    world = ThreadWorld(3)
    dist.init(communicator=world)

    def train(rank: int) -> None:
        fit = {"epochs": 1, "batch_size": 6, "verbose": 0, **arguments(rank)}
        with _model("portable", seed=1, optimizer=Adam(0.05)) as model:
            learning_rate = fit.pop("learning_rate", None)
            if learning_rate is not None:
                model.learning_rate = learning_rate
            model.fit(x, y, **fit)

    message = _the_same_error(_errors_in(world, train), DataParallelError)
    assert expected in message


def test_fit_refuses_processes_holding_different_data() -> None:
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train(rank: int) -> None:
        x, y = _data(20 + rank)
        with _model("portable", seed=1) as model:
            model.fit(x, y, epochs=1, batch_size=6, verbose=0)

    message = _the_same_error(_errors_in(world, train), DataParallelError)
    assert message == (
        "A data-parallel fit expects every process to hold the same whole training set (each takes its rows of "
        "every global batch: not a shard per process). Received: 20 examples in process 0, 21 examples in process 1"
    )


def test_validation_figures_divide_the_sums_by_every_process_s_rows() -> None:
    """evaluate_batches all-reduces each process's sums of its share: the mean divides by the rows all processes
    evaluated (fit checks that they hold the same data; here each holds its own, as a check bypassed would let
    through), not by this process's count."""

    class MeanOfInputs:  # an engine whose loss is the batch's mean input
        def eval_step(self, x: list[np.ndarray], y: np.ndarray) -> tuple[float, np.ndarray]:
            return float(x[0].mean()), x[0]

    data = [np.arange(9, dtype=np.float32)[:, None], 100 + np.arange(12, dtype=np.float32)[:, None]]
    shares = [data[rank][dist.local_rows(0, len(data[rank]), rank, 2)] for rank in (0, 1)]
    reference = float(np.concatenate(shares).mean())  # the rows that were evaluated, over all processes
    world = ThreadWorld(2)
    figures = BatchFigures((), losses.get("mse"))

    def evaluate(rank: int) -> float:
        batches = Batches(data[rank], np.zeros(len(data[rank]), np.float32))
        result = evaluate_batches(MeanOfInputs(), batches, 4, figures, FlushToZero(), communicator=world)  # type: ignore[arg-type]
        return result.loss

    for loss in world.run(evaluate):
        assert loss == pytest.approx(reference, rel=1e-6)


OPTIMIZERS = {
    "sgd": lambda: SGD(0.1, clip_norm=0.2),
    "momentum": lambda: Momentum(0.05),
    "rmsprop": lambda: RMSProp(0.01, clip_value=0.05),
    "adadelta": lambda: AdaDelta(1.0),
    "adagrad": lambda: AdaGrad(0.1),
    "adagrad_da": lambda: AdaGradDA(0.1),
    "adam": lambda: Adam(0.05, clip_norm=0.4),
    "adamax": lambda: Adamax(0.05),
    "nadam": lambda: Nadam(0.05),
    "ftrl": lambda: Ftrl(0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains_data_parallel_with_either_update(name: str) -> None:
    """The fused kernel and the update model (no numba, or update='graph') against the train-step graph alone."""
    x, y = _data()

    def train(world: ThreadWorld | None, update: str) -> list[dict[str, np.ndarray]]:
        def steps(rank: int) -> dict[str, np.ndarray]:
            model = Sequential.of(Input(5), Dense(7, activation="tanh"), Dense(3), seed=5 + rank)
            engine = PortableEngine(
                model.graph,
                losses.get("sparse_categorical_crossentropy"),
                OPTIMIZERS[name](),
                update=update,
                communicator=world,
            )
            for step in range(8):  # batches of 6: shares of 2 and 4 over 2 processes
                rows = dist.local_rows(step * 6 % 24, step * 6 % 24 + 6, rank, 1 if world is None else world.size)
                engine.train_step(x[rows], y[rows])
            weights = engine.get_weights()
            engine.close()
            return weights

        return [steps(0)] if world is None else world.run(steps)

    [alone] = train(None, "graph")
    for update in ("graph", "auto"):
        copies = train(ThreadWorld(2), update)
        assert _max_difference(copies[0], alone) <= 2e-6 * _scale(alone), update
        assert all(np.array_equal(copies[0][k], copies[1][k]) for k in alone), update


def _global_batches(x: np.ndarray, y: np.ndarray, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    bounds = np.cumsum([0, *sizes])
    return [(x[a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("update", ["graph", "auto"])  # the update model; the fused kernel where numba imports
def test_a_batchnorm_model_trains_data_parallel_as_its_shares_averaged(update: str) -> None:
    """Two processes on a BatchNormalization MLP (SGD): each normalises with its own rows' statistics, gradients and
    moving statistics are averaged; the reference derives that run from one-process steps on each share
    (`distributed_worker.averaged_shares`). Every process ends with the same weights and moving statistics."""
    x, y = _data(44)
    x[21] = 3e38  # the third batch, process 1's rows: a NaN loss, so every process skips that step, statistics and all
    batches = _global_batches(x, y, [8, 8, 7, 8, 6, 7])  # shares 4+4, or 3+4 for an odd batch
    loss = losses.get("sparse_categorical_crossentropy")
    world = ThreadWorld(2)

    def steps(rank: int) -> tuple[dict[str, np.ndarray], bool]:
        model = distributed_worker.batchnorm_model(seed=5 + rank, inputs=5)  # process 0's weights must win
        engine = PortableEngine(model.graph, loss, SGD(distributed_worker.BATCHNORM_SGD), update=update,
                                communicator=world)  # fmt: skip
        for bx, by in batches:
            rows = dist.local_rows(0, len(bx), rank, world.size)
            engine.train_step(bx[rows], by[rows])
        assert engine.step == len(batches) - 1  # the NaN batch's step was skipped
        weights, fused = engine.get_weights(), engine.fused
        engine.close()
        return weights, fused

    results = world.run(steps)
    assert results[0][1] == (update == "auto" and _fused.available())
    copies = [weights for weights, _ in results]
    reference = distributed_worker.averaged_shares(distributed_worker.batchnorm_model(5, inputs=5), batches, 2)
    assert {"batch_normalization_1.moving_mean", "batch_normalization_1.moving_variance"} <= set(reference)
    assert _max_difference(copies[0], reference) <= 1e-6 * _scale(reference)
    assert all(np.array_equal(copies[0][k], copies[1][k]) for k in reference)
    # The control: one process on whole batches normalises with the whole batch's statistics (what SyncBatchNorm
    # would give), so its moving variance differs from the shares' mean.
    whole = distributed_worker.averaged_shares(distributed_worker.batchnorm_model(5, inputs=5), batches, 1)
    variance = "batch_normalization_1.moving_variance"
    assert float(np.abs(whole[variance] - copies[0][variance]).max()) > 1e-3 * float(np.abs(whole[variance]).max())


@pytest.mark.slow
@pytest.mark.parametrize("update", ["graph", "auto"])
def test_dropout_over_processes_drops_the_units_of_one_process(update: str) -> None:
    """Dropout's masks are a function of (seed, layer, step, row): each process numbers its rows from where they
    start in the global batch (`first_row`), so two processes on the shares of each batch train the weights of one
    process on the whole batches. The control numbers every process's rows from 0, as if each held a batch of its
    own: the same units of each process's first rows drop, and the run departs from one process's."""
    x, y = _data(30)
    loss = losses.get("sparse_categorical_crossentropy")

    def train(world: ThreadWorld | None, offset: Callable[[slice, int], int]) -> list[dict[str, np.ndarray]]:
        def steps(rank: int) -> dict[str, np.ndarray]:
            model = Sequential.of(Input(5), Dense(8, activation="tanh"), Dropout(0.5, seed=1), Dense(3), seed=3)
            engine = PortableEngine(model.graph, loss, SGD(0.1), update=update, communicator=world)
            for start in range(0, 30, 7):  # batches of 7 (the last of 2): shares of 3 and 4
                rows = dist.local_rows(start, min(start + 7, 30), rank, 1 if world is None else world.size)
                engine.train_step(x[rows], y[rows], first_row=offset(rows, start))
            weights = engine.get_weights()
            engine.close()
            return weights

        return [steps(0)] if world is None else world.run(steps)

    [alone] = train(None, lambda rows, start: 0)
    copies = train(ThreadWorld(2), lambda rows, start: rows.start - start)
    assert _max_difference(copies[0], alone) <= 2e-6 * _scale(alone)
    assert all(np.array_equal(copies[0][k], copies[1][k]) for k in alone)
    [control, _] = train(ThreadWorld(2), lambda rows, start: 0)
    assert _max_difference(control, alone) > 1e-3 * _scale(alone)


def test_the_portable_engine_trains_data_parallel_on_the_cpu_only() -> None:
    model = Sequential.of(Input(5), Dense(3))
    loss = losses.get("sparse_categorical_crossentropy")
    with pytest.raises(UnsupportedError, match=r"data-parallel on the CPU only. Received: device='cuda:0'"):
        PortableEngine(model.graph, loss, SGD(), device=Device("cuda"), communicator=ThreadWorld(1))


# --- two MPI processes -----------------------------------------------------------------------------------------
def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="the MPI runs need `pip install onnxtrain[distributed]`")
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail("mpi4py is installed but no mpiexec was found: `pip install mpich`")
    return found


def _run_two_processes(engine: str, output: Path) -> None:
    """The worker under `mpiexec -n 2 python -m mpi4py`; a hang fails the test instead of blocking it."""
    command = [
        _mpiexec(),
        "-n",
        "2",
        sys.executable,
        "-m",
        "mpi4py",
        str(HERE / "distributed_worker.py"),
        engine,
        str(output),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        out, _ = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"the two MPI processes hung (killed after 150 s):\n{out.decode()[-3000:]}")
    assert process.returncode == 0, out.decode()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_two_mpi_processes_train_as_one(engine: str, tmp_path: Path) -> None:
    """The equivalence table: each scenario over 2 MPI processes against the same run alone."""
    two, alone = tmp_path / "two", tmp_path / "alone"
    two.mkdir()
    alone.mkdir()
    _run_two_processes(engine, two)
    for scenario in ("equal", "single_row_last", "nan"):
        distributed_worker.run(scenario, engine, alone, None)

    def load(path: Path) -> tuple[str, dict[str, np.ndarray]]:
        with np.load(path) as f:
            return str(f["error"]), {k: f[k] for k in f.files if k != "error"}

    rows = []
    # scenario run over 2 processes, its reference alone, whether it must match
    for scenario, reference, matches in [
        ("equal", "equal", True),  # Adam(clip_norm) on 37 rows in batches of 8: the last batch split 2 + 3
        ("single_row_last", "single_row_last", True),  # 33 rows: the last batch leaves process 0 no row
        ("nan", "nan", True),  # batch 2's NaN loss comes from process 1's rows: both skip, both raise
        ("resume", "equal", True),  # 1 epoch over 2 processes, saved, 1 more alone
        ("no_all_reduce", "equal", False),  # the control
    ]:
        error_alone, expected = load(alone / f"{reference}.rank0.npz")
        runs = [load(two / f"{scenario}.rank{rank}.npz") for rank in (0, 1)]
        difference = _max_difference(runs[0][1], expected) / _scale(expected)
        same_copies = all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in expected)
        copies = "-" if scenario == "resume" else same_copies  # process 1 stopped after the first epoch
        rows.append(f"| {engine} | {scenario} | {difference:.2e} | {copies} | {runs[0][0] or '-'} |")
        if matches:
            assert difference <= 1e-6, scenario
            assert [error for error, _ in runs] == [error_alone] * 2, scenario
            if scenario != "resume":
                assert same_copies, scenario
        else:
            assert difference > 1e-3, scenario
    print("\n| engine | scenario | max |w2 - w1| / max |w1| | copies bitwise equal | error |")
    print("\n".join(rows))
    if engine == "portable":
        _check_batchnorm_run(two)


MISMATCHED_WORKER = """
import sys
from pathlib import Path

import onnxtrain.distributed as dist
from onnxtrain import Sequential
from onnxtrain.errors import DataParallelError
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import SGD, Adam

rank = dist.init().rank
model = Sequential.of(Input(6), Dense(9 if rank == 1 else 8), Dense(2), seed=3 + rank)
try:
    model.compile(optimizer=SGD(0.1) if rank == 1 else Adam(0.01), loss="sparse_categorical_crossentropy",
                  engine=sys.argv[1], threads=1)
except DataParallelError as e:
    Path(sys.argv[2], f"rank{rank}.txt").write_text(str(e))
"""


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["portable", pytest.param("ort-training", marks=pytest.mark.training)])
def test_two_mpi_processes_compiling_different_models_both_say_so(engine: str, tmp_path: Path) -> None:
    """What the broadcast of process 0's weights did with another optimizer or shape in MPI: a raw MPICH
    "Message truncated" or "message sizes do not match" stack (portable), ORT's text (ort-training)."""
    script = tmp_path / "mismatched.py"
    script.write_text(MISMATCHED_WORKER)
    command = [_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(script), engine, str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=150)
    assert run.returncode == 0, run.stdout + run.stderr
    messages = [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)]  # each process raised it
    assert messages[0] == messages[1]
    assert "Received: optimizer: 'sgd' in process 1, 'adam' in process 0." in messages[0]


def _check_batchnorm_run(two: Path) -> None:
    """The BatchNormalization MLP over 2 MPI processes against its reference derived from one process
    (`distributed_worker.averaged_shares`): weights and moving statistics, and equal across the processes, as are
    the predictions after the fit."""
    reference = distributed_worker.batchnorm_reference()
    runs = []
    for rank in (0, 1):
        with np.load(two / f"batchnorm.rank{rank}.npz") as f:
            runs.append({k: f[k] for k in f.files if k != "error"})
    statistics = [k for k in reference if k.endswith(("moving_mean", "moving_variance"))]
    weights = [k for k in reference if k not in statistics]
    assert len(statistics) == 2 and weights
    print(
        "\n| BatchNorm MLP, 2 processes | max abs diff vs reference | max abs diff rank 0 vs rank 1 | max abs value |"
    )
    for what, names in (("weights", weights), ("moving statistics", statistics)):
        versus = max(float(np.abs(runs[r][k] - reference[k]).max()) for r in (0, 1) for k in names)
        across = max(float(np.abs(runs[0][k] - runs[1][k]).max()) for k in names)
        scale = max(float(np.abs(reference[k]).max()) for k in names)
        print(f"| {what} | {versus:.2e} | {across:.2e} | {scale:.3g} |")
        assert versus <= 1e-6 * scale, what
        assert across == 0.0, what
    predictions = [np.load(two / f"predictions.rank{rank}.npy") for rank in (0, 1)]
    assert predictions[0].shape == (distributed_worker.EXAMPLES, 3)
    assert np.array_equal(predictions[0], predictions[1])


def _run_cli(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m onnxtrain ARGUMENTS` in `cwd`; a hang fails the test instead of blocking it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    try:
        return subprocess.run(
            [sys.executable, "-m", "onnxtrain", *arguments],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"onnxtrain {' '.join(arguments)} hung (killed after 150 s): {e.stdout!r} {e.stderr!r}")


def _outcome(run: subprocess.CompletedProcess[str]) -> str:
    """How a failed assertion on a CLI run describes it: exit status, stderr and stdout (a run that failed once
    in CI, 1 in ~50, printed nothing on stderr: the status and stdout are what is left to go on)."""
    return f"exit status {run.returncode}\nstderr:\n{run.stderr}\nstdout:\n{run.stdout}"


@pytest.mark.slow
def test_train_with_two_workers_writes_the_run_of_one_process(tmp_path: Path) -> None:
    _mpiexec()
    x, y = _data(50)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    config = {
        "name": "tiny",
        "seed": 3,
        "optimizer": {"name": "adam", "learning_rate": 0.01, "clip_norm": 0.5},
        "loss": "sparse_categorical_crossentropy",
        "metric": "accuracy",
        "epochs": 2,
        "batch_size": 8,
        "data": {"train": "train.npz", "validation": "train.npz"},
        "layers": [{"type": "Input", "shape": [5]}, {"type": "Dense", "units": 8}, {"type": "Dense", "units": 3}],
    }
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    two = _run_cli(["train", "tiny.json", "--workers", "2", "--output", "two", "--verbose", "2"], tmp_path)
    assert two.returncode == 0, _outcome(two)
    assert two.stdout.count("Epoch 2/2") == 1  # process 0 alone prints
    one = _run_cli(["train", "tiny.json", "--output", "one"], tmp_path)
    assert one.returncode == 0, _outcome(one)
    alone = load_model(tmp_path / "one" / "model", compile=False).get_weights()
    assert _max_difference(load_model(tmp_path / "two" / "model", compile=False).get_weights(), alone) <= 1e-6 * (
        _scale(alone)
    )
    from onnxtrain.distributed._launch import threads_per_worker

    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert record["workers"] == {"count": 2, "threads": threads_per_worker(2)}  # each its share of the cores
    # An error that every process raises alike before training (the data does not fit the model, which fit
    # finds): one line as alone, without MPI's abort notices, though each process aborts the job.
    np.savez(tmp_path / "wide.npz", x=np.zeros((50, 6), np.float32), y=y)
    (tmp_path / "wide.json").write_text(json.dumps({**config, "data": {"train": "wide.npz"}}))
    wide = _run_cli(["train", "wide.json", "--workers", "2", "--output", "wide"], tmp_path)
    assert wide.returncode != 0, _outcome(wide)
    assert wide.stderr.splitlines() == [
        "onnxtrain train: error: [data] train = 'wide.npz' does not fit the model: dataset.x expects shape "
        "[None, 5]. Received: dataset.x.shape=(50, 6)."
    ], _outcome(wide)
    # An error that every process raises alike, at the same call (a batch smaller than the world): process 0
    # reports it, once, and no process aborts the job.
    small = _run_cli(["train", "tiny.json", "--workers", "2", "--batch-size", "1", "--output", "small"], tmp_path)
    assert small.returncode == 1, _outcome(small)
    assert small.stderr.splitlines() == [
        "onnxtrain train: error: A data-parallel fit over 2 processes expects batch_size >= 2 (a row of each batch "
        "for each process). Received: batch_size=1 on 50 examples"
    ], _outcome(small)
    assert not (tmp_path / "small").exists()


def test_the_scaling_estimate_follows_its_formula() -> None:
    """tools/scaling_estimate.py against the formula worked by hand: 1,000,000 parameters on 4 machines on
    10 Gbit/s, B=100, c0 = 1 ms, c1 = 0.1 ms/row, alpha = 30 us."""
    spec = importlib.util.spec_from_file_location("scaling_estimate", HERE.parent / "tools" / "scaling_estimate.py")
    assert spec is not None and spec.loader is not None
    estimate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(estimate)
    compute = 1.0 + 0.1 * 100 / 4
    latency = 2 * 2 * 0.030  # 2 log2(4) alpha
    transfer = 2 * 3 / 4 * 4 * 1_000_002 / 1.25e9 * 1e3  # 2 (N-1)/N S / bandwidth, in ms
    assert estimate.step_ms(4, 100, 1.0, 0.1, 1_000_000, 10, 30.0) == pytest.approx(compute + latency + transfer)
    assert estimate.step_ms(1, 100, 1.0, 0.1, 1_000_000, 10, 30.0) == pytest.approx(11.0)
    assert estimate.fit(100, 11.0, 6.0) == pytest.approx((1.0, 0.1))


# --- what every process takes from process 0 when fit starts, and the figures every process sees ----------------
def _saved_after_one_epoch(folder: Path) -> Path:
    """One epoch alone, its learning rate then lowered (as ReduceLROnPlateau would), saved with its optimizer state."""
    x, y = _data()
    with _model("portable", seed=5) as model:
        model.fit(x, y, epochs=1, batch_size=6, verbose=0)
        model.learning_rate = 0.02
        return model.save(folder / "saved", save_optimizer_state=True)


def test_a_save_that_only_process_zero_loaded_trains_on_as_one_process(tmp_path: Path) -> None:
    """docs/scaling.md: a model that only process 0 loaded from a save. The others built and compiled afresh (epoch
    0, another seed, the compiled learning rate): they take process 0's epoch count, step and learning rate with
    its weights, so every process shuffles as process 0 and trains the one-process resume's global batches."""
    saved = _saved_after_one_epoch(tmp_path)
    x, y = _data()
    with load_model(saved) as alone:
        reference = alone.fit(x, y, epochs=2, batch_size=6, verbose=0)
        expected = alone.get_weights()
    world = ThreadWorld(3)
    dist.init(communicator=world)

    def train(rank: int) -> tuple[dict[str, np.ndarray], Any, float]:
        with load_model(saved) if rank == 0 else _model("portable", seed=9 + rank) as model:
            history = model.fit(x, y, epochs=2, batch_size=6, verbose=0)
            return model.get_weights(), history, model.learning_rate

    for weights, history, learning_rate in world.run(train):
        assert _max_difference(weights, expected) <= 1e-6 * _scale(expected)
        assert history.epochs == [2, 3] and learning_rate == pytest.approx(0.02)
        np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-5)


def test_processes_that_loaded_different_saves_are_refused_naming_the_epochs(tmp_path: Path) -> None:
    saved = _saved_after_one_epoch(tmp_path)
    x, y = _data()
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train(rank: int) -> None:
        with load_model(saved) as model:
            if rank == 1:
                model._trainer.epochs_trained = 4  # type: ignore[union-attr]  # as a later save of the run would
            model.fit(x, y, epochs=1, batch_size=6, verbose=0)

    message = _the_same_error(_errors_in(world, train), DataParallelError)
    assert "continue from process 0's epoch count" in message
    assert "Received: epochs_trained=1 in process 0, epochs_trained=4 in process 1" in message


class _BatchLogs(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.logs: list[dict[str, float]] = []

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        self.logs.append(dict(logs))


def test_every_process_sees_the_batch_figures_of_one_process() -> None:
    """The running figures given to on_batch_end (and process 0's progress bar) are those of the global batches:
    the accuracy as well as the loss, not each process's share."""
    x, y = _data()

    def train(rank: int) -> list[dict[str, float]]:
        recorder = _BatchLogs()
        with _model("portable", seed=5) as model:
            model.fit(x, y, epochs=1, batch_size=6, verbose=0, shuffle=False, callbacks=[recorder])
        return recorder.logs

    alone = train(0)
    world = ThreadWorld(3)
    dist.init(communicator=world)
    for logs in world.run(train):
        assert [list(batch) for batch in logs] == [list(batch) for batch in alone]  # keys, in the fit's order
        assert len(logs) == 5 and sorted(logs[0]) == ["accuracy", "loss"]
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose([b[key] for b in logs], [b[key] for b in alone], rtol=1e-5)


def test_the_history_after_terminate_on_nan_is_the_same_on_every_process() -> None:
    from onnxtrain.callbacks import TerminateOnNaN

    x, y = distributed_worker.data(nan=True)  # unshuffled, batch 2 of 5 holds the NaN loss

    def train(rank: int) -> dict[str, list[float]]:
        with distributed_worker.build("portable", seed=11) as model:
            fit = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False, callbacks=[TerminateOnNaN()])
            return fit.history

    alone = train(0)
    assert np.isnan(alone["loss"][0]) and len(alone["loss"]) == 1
    world = ThreadWorld(3)
    dist.init(communicator=world)
    for history in world.run(train):
        assert list(history) == list(alone) and np.isnan(history["loss"][0])
        for key in ("accuracy", "mae"):
            np.testing.assert_allclose(history[key], alone[key], rtol=1e-6)


class FakeRayTrain:
    """What `fit_in_worker` uses of Ray Train in one worker: `get_checkpoint`, `report` (recorded) and
    `Checkpoint.from_directory`, which copies the folder, as Ray persists it before the report returns."""

    def __init__(self, storage: Path, checkpoint: Any = None):
        self.storage, self.checkpoint, self.reports = storage, checkpoint, []
        self.train = self
        self.Checkpoint = self

    def get_checkpoint(self) -> Any:
        return self.checkpoint

    def from_directory(self, folder: str) -> Path:
        kept = self.storage / f"checkpoint_{len(self.reports)}"
        shutil.copytree(folder, kept)
        return kept

    def report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        self.reports.append((metrics, checkpoint))


@pytest.mark.slow
def test_ray_fit_runs_one_fit_whose_callbacks_keep_their_state(tmp_path: Path) -> None:
    """ray_fit's callbacks act as in fit(epochs=N): EarlyStopping stops the run, ReduceLROnPlateau lowers the rate
    epoch after epoch, CSVLogger (process 0) keeps every epoch; every worker reports each epoch, and the last
    checkpoint holds the model fit returns (the best epoch's weights, restored)."""
    from onnxtrain.callbacks import EarlyStopping, ReduceLROnPlateau
    from onnxtrain.distributed.ray_train import MODEL_FOLDER, fit_in_worker

    x, y = _data()
    validation = (x[:9] + 1.5, (y[:9] + 1) % 3)  # soon worse: EarlyStopping stops before epoch 12

    def callbacks(folder: Path) -> list[Callback]:
        return [
            ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5),
            EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
            CSVLogger(folder / "log.csv"),
        ]

    with _model("portable", seed=5) as model:
        stopper = callbacks(tmp_path)
        history = model.fit(x, y, epochs=12, batch_size=6, verbose=0, validation=validation, callbacks=stopper)
        expected = model.get_weights()
    assert 1 < len(history.epochs) < 12 and history.history["learning_rate"][-1] < 0.05
    world = ThreadWorld(2)
    dist.init(communicator=world)
    rays = [FakeRayTrain(tmp_path / f"ray{rank}") for rank in (0, 1)]
    for rank in (0, 1):
        (tmp_path / f"ray{rank}").mkdir()

    def train(rank: int) -> None:
        options = {"validation": validation, "callbacks": callbacks(tmp_path / f"ray{rank}")}
        fit_in_worker(rays[rank], world, lambda: _model("portable", seed=5), _data, 12, 6, options)

    world.run(train)
    dist.leave()
    for ray in rays:
        epochs = [metrics["epoch"] for metrics, _ in ray.reports]
        assert epochs == [*history.epochs, history.epochs[-1]]  # and the restored model, reported again
        reported_rates = [metrics["learning_rate"] for metrics, _ in ray.reports[:-1]]
        np.testing.assert_allclose(reported_rates, history.history["learning_rate"], rtol=1e-6)
    assert all(checkpoint is None for _, checkpoint in rays[1].reports)
    assert History.from_csv(tmp_path / "ray0" / "log.csv").epochs == history.epochs
    assert not (tmp_path / "ray1" / "log.csv").exists()
    last = rays[0].reports[-1][1]
    assert json.loads((last / "progress.json").read_text()) == {"epochs": history.epochs[-1], "finished": True}
    with load_model(last / MODEL_FOLDER) as saved:
        assert _max_difference(saved.get_weights(), expected) <= 1e-6 * _scale(expected)


# --- only process 0 prints ---------------------------------------------------------------------------------------
def test_only_process_zero_prints_what_callbacks_say(capsys: pytest.CaptureFixture[str], caplog: Any) -> None:
    from onnxtrain.callbacks import LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN

    x, y = distributed_worker.data(nan=True)

    def train(rank: int) -> None:
        callbacks = [
            LearningRateScheduler(lambda epoch: 0.01, verbose=1),
            ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0, verbose=1),
            TerminateOnNaN(),
        ]
        with distributed_worker.build("portable", seed=11) as model:
            model.fit(x[16:], y[16:], epochs=2, batch_size=8, verbose=0, shuffle=False, callbacks=callbacks)
            model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False, callbacks=callbacks)  # a NaN

    with caplog.at_level("WARNING", logger="onnxtrain"):
        train(0)
        alone = capsys.readouterr().out
        warned = [r.getMessage() for r in caplog.records]
        caplog.clear()
        world = ThreadWorld(3)
        dist.init(communicator=world)
        world.run(train)
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.001." in alone
    assert warned == ["Epoch 3, batch 2: the loss is nan; stopping training."]
    assert capsys.readouterr().out == alone  # once, not once per process
    assert [r.getMessage() for r in caplog.records] == warned


@pytest.mark.slow
def test_the_cli_notes_of_a_data_parallel_resume_are_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onnxtrain.cli import main

    x, y = _data()
    np.savez(tmp_path / "train.npz", x=x, y=y)
    with _model("portable", seed=5) as model:
        model.save(tmp_path / "saved")  # without its optimizer state: resuming says so
    world = ThreadWorld(2)
    dist.init(communicator=world)
    arguments = ["train", "--resume", str(tmp_path / "saved"), "--epochs", "1", "--data", str(tmp_path / "train.npz")]
    statuses = world.run(lambda rank: main([*arguments, "--output", str(tmp_path / "out"), "--verbose", "0"]))
    assert statuses == [0, 0]
    err = capsys.readouterr().err
    assert err.count("was saved without its optimizer state") == 1, err


# --- the launcher of --workers N ---------------------------------------------------------------------------------
def test_the_launcher_prints_an_error_that_every_process_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onnxtrain.distributed._launch import print_reports

    for rank in (0, 2, 1):
        (tmp_path / f"process{rank}.txt").write_text("[data] train: 'nope.npz' is not a readable .npz archive\n")
    print_reports(tmp_path, "train")
    assert (
        capsys.readouterr().err == "onnxtrain train: error: [data] train: 'nope.npz' is not a readable .npz archive\n"
    )
    (tmp_path / "process1.txt").write_text("MemoryError\n")
    print_reports(tmp_path, "train")
    assert capsys.readouterr().err.splitlines() == [
        "onnxtrain train: error in process 0: [data] train: 'nope.npz' is not a readable .npz archive",
        "onnxtrain train: error in process 1: MemoryError",
    ]


def test_the_launcher_passes_stderr_on_without_mpi_notices() -> None:
    import io

    from onnxtrain.distributed._launch import pass_on_stderr

    lines = [
        "onnxtrain [WARNING] - something the user must read\n",
        "Abort(130) on node 0 (rank 0 in comm 0): application called MPI_Abort(MPI_COMM_WORLD, 130) - process 0\n",
        "[mpiexec@host-1] Sending Ctrl-C to processes as requested\n",
        "[mpiexec@host-1] Press Ctrl-C again to force abort\n",
        "Traceback (most recent call last):\n",
    ]
    target = io.StringIO()
    pass_on_stderr(io.StringIO("".join(lines)), target, threading.Event())
    assert target.getvalue() == lines[0] + lines[4]
    quiet = threading.Event()
    quiet.set()
    pass_on_stderr(io.StringIO("".join(lines)), target := io.StringIO(), quiet)
    assert target.getvalue() == ""


@pytest.mark.slow
def test_ctrl_c_during_train_with_two_workers_saves_the_run_as_one_process_does(tmp_path: Path) -> None:
    """README: Ctrl-C during `train` saves the model with its optimizer state and run.json marked interrupted, and
    exits with 130. The launcher passes it to process 0, which saves and then ends the others."""
    _mpiexec()
    x, y = _data(40)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    config = {
        "name": "tiny", "seed": 3, "optimizer": "adam", "loss": "sparse_categorical_crossentropy", "epochs": 100000,
        "batch_size": 4, "data": {"train": "train.npz"},
        "layers": [{"type": "Input", "shape": [5]}, {"type": "Dense", "units": 3}],
    }  # fmt: skip
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "onnxtrain", "train", "tiny.json", "--workers", "2", "--output", "out"]
    proc = subprocess.Popen(
        [*command, "--verbose", "2"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]  # the headline, then the lines of epochs 1 and 2
        assert lines[2].startswith("Epoch 2/100000"), lines
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 130, (out, err)
    assert "Interrupted in epoch" in out and "error" not in err and "Abort" not in err, (out, err)
    saved = json.loads((tmp_path / "out" / "model" / "config.json").read_text())
    assert saved["optimizer_state_saved"] and saved["epochs_trained"] >= 2
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["interrupted"] == f"after epoch {saved['epochs_trained']} of 100000"
    assert record["workers"]["count"] == 2
    assert err.startswith(f"onnxtrain train: interrupted after epoch {saved['epochs_trained']} of 100000; saved"), err


def test_process_zero_leaves_its_last_words_to_the_launcher(tmp_path, monkeypatch, capsys):
    # MPI_Abort can end mpiexec's output forwarding before it passes on a line process 0 printed just before it
    # (a stopped run's "saved the model" line went missing once under load): the launcher prints it instead.
    from onnxtrain.distributed import _launch

    _launch.say_last("onnxtrain train: interrupted after epoch 1 of 3; saved the model")
    assert capsys.readouterr().err == "onnxtrain train: interrupted after epoch 1 of 3; saved the model\n"
    monkeypatch.setenv(_launch.WORKER_ENV, "2")
    monkeypatch.setenv(_launch.ERRORS_ENV, str(tmp_path))
    _launch.say_last("onnxtrain train: interrupted after epoch 1 of 3; saved the model")
    assert capsys.readouterr().err == ""
    assert (
        tmp_path / _launch.LAST_WORDS
    ).read_text() == "onnxtrain train: interrupted after epoch 1 of 3; saved the model\n"
