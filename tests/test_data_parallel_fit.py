"""The data check of a data-parallel fit (`_data_parallel_fit.check_world`, `distributed/_data_checksum.py`): the
sampled checksum against a direct float64 sum, and fits over processes that hold other data than process 0 (a
shard each, as PyTorch DDP users give them), refused in every process alike, in a fake world of threads and over
two MPI processes, while copies of the same data still train."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_distributed import ThreadWorld, _mpiexec

import onnxtrain.distributed as dist
from onnxtrain import Model, Sequential
from onnxtrain.datasets import Dataset
from onnxtrain.distributed._data_checksum import SAMPLED_ROWS, SAMPLED_VALUES, checksums_differ, sampled_checksum
from onnxtrain.errors import DataParallelError
from onnxtrain.layers import Concatenate, Dense, Input

HERE = Path(__file__).parent
RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def _alone_after() -> Any:
    yield
    dist.leave()


# --- the checksum ------------------------------------------------------------------------------------------------
def _reference_checksum(array: np.ndarray) -> tuple[float, float]:
    """The checksum as its docstring defines it, value by value in float64."""
    flat = array.reshape(len(array), -1)
    rows = np.linspace(0, len(flat) - 1, min(len(flat), SAMPLED_ROWS), dtype=np.int64)
    stride = -(-flat.shape[1] // SAMPLED_VALUES)
    checksum = magnitude = 0.0
    for k, row in enumerate(rows):
        values = flat[row, ::stride].astype(np.float64)
        for j, value in enumerate(values):
            weight = (1 + k / len(rows)) * (1 + j / len(values))
            checksum += value * weight
            magnitude += abs(value) * weight
    return checksum, magnitude


@pytest.mark.parametrize(
    "array",
    [
        RNG.normal(size=(300, 4, 3)).astype(np.float32),  # more rows than sampled
        RNG.integers(0, 256, (7, 2500), dtype=np.uint8),  # wider rows than sampled: every third value
        np.arange(5, dtype=np.int64),  # labels
    ],
    ids=["float_images", "wide_uint8", "labels"],
)
def test_the_checksum_is_the_weighted_sum_of_the_sampled_values(array: np.ndarray) -> None:
    checksum, magnitude = sampled_checksum(array)
    expected, expected_magnitude = _reference_checksum(array)
    assert checksum == pytest.approx(expected, rel=1e-12)
    assert magnitude == pytest.approx(expected_magnitude, rel=1e-12)


def test_the_checksum_tells_other_rows_their_order_and_a_row_s_layout_apart() -> None:
    x = RNG.normal(size=(2000, 2, 2, 3)).astype(np.float32)
    same = sampled_checksum(x.copy())
    others = {
        "the other shard": x[1000:],
        "the first shard": x[:1000],
        "rows shuffled": x[RNG.permutation(len(x))],
        "channels first": np.ascontiguousarray(np.moveaxis(x, -1, 1)),
    }
    checksums = np.array([sampled_checksum(x), same, *(sampled_checksum(a) for a in others.values())])
    assert checksums_differ(checksums[:, 0], checksums[:, 1]).tolist() == [False, False, True, True, True, True]


def test_checksums_agree_to_rounding_and_differ_beyond_it() -> None:
    checksums = np.array([1000.0, np.nextafter(1000.0, 2000.0), 1000.0 * (1 + 1e-6), 0.0])
    magnitudes = np.array([1500.0, 1500.0, 1500.0, 0.0])
    assert checksums_differ(checksums, magnitudes).tolist() == [False, False, True, True]


def test_the_checksum_of_non_finite_values_is_finite_and_repeatable() -> None:
    x = np.array([[np.nan, 1.0], [np.inf, -np.inf]], np.float32)
    checksum, magnitude = sampled_checksum(x)
    assert np.isfinite([checksum, magnitude]).all()
    assert sampled_checksum(x.copy()) == (checksum, magnitude)


# --- fits over processes that hold other data -------------------------------------------------------------------
X = RNG.normal(size=(40, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 40)


def _fit(x: Any, y: Any, seed: int = 1, **fit: Any) -> Any:
    with Sequential.of(Input(5), Dense(3), seed=seed) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, **fit)
        return model.get_weights()


def _errors_in(size: int, function: Callable[[int], Any]) -> list[BaseException | None]:
    """Each process's exception from `function(rank)` in a world of `size` threads (None where it returned)."""
    world = ThreadWorld(size)
    dist.init(communicator=world)

    def caught(rank: int) -> BaseException | None:
        try:
            function(rank)
        except Exception as e:
            return e
        return None

    return world.run(caught)


HALF = slice(0, 20), slice(20, 40)
DIFFERENT_DATA: dict[str, tuple[int, Callable[[int], Any], str]] = {
    # processes, what process r fits, and what every process must say
    "shards": (
        2,
        lambda r: _fit(X[HALF[r]], Y[HALF[r]]),
        "the same whole training set: onnxtrain gives each process its rows of every global batch itself (what "
        "DistributedSampler does for PyTorch DDP), and batch_size is the global batch. Received: training x and y "
        "in process 1 that differ from process 0's (20 examples in every process; checksums of up to 256 evenly "
        "spaced rows). Load all the training data in every process, not a shard of it per process, and in the same "
        "order: a split or shuffle of your own without a seed",
    ),
    "unseeded_split": (  # each process draws its own split, as one process does
        2,
        lambda r: _fit(Dataset.create(X, Y).split(0.8, shuffle=True)[0], None),
        "Received: training x and y in process 1 that differ from process 0's (32 examples in every process; "
        "checksums of up to 256 evenly spaced rows). Load all the training data in every process, not a shard of it "
        "per process, and in the same order: a split or shuffle of your own without a seed (Dataset.split("
        "shuffle=True), Dataset.shuffle(), np.random.permutation) draws another order in each process. Pass the same "
        "seed= in every process (split(0.8, shuffle=True, seed=1)), or leave the shuffling to fit, which shuffles "
        "alike in every process.",
    ),
    "shuffled_by_each": (
        3,
        lambda r: _fit(X[np.random.default_rng(r).permutation(40)], Y[np.random.default_rng(r).permutation(40)]),
        "Received: training x and y in processes 1, 2 that differ from process 0's (40 examples",
    ),
    "validation_shards": (
        2,
        lambda r: _fit(X, Y, validation_data=(X[HALF[r]], Y[HALF[r]])),
        "the same whole validation set: onnxtrain gives each process its share of it to evaluate. Received: "
        "validation x and y in process 1 that differ from process 0's (20 examples in every process; checksums of "
        "up to 256 evenly spaced rows). Pass all the validation data in every process, not a shard of it per "
        "process, and in the same order: ",
    ),
    "sample_weight": (
        2,
        lambda r: _fit(X, Y, sample_weight=np.full(40, 1.0 + r, np.float32)),
        "Received: training sample weights (sample_weight, class_weight) in process 1 that differ from process "
        "0's (40 examples in every process; checksums of up to 256 evenly spaced rows). Pass the same "
        "sample_weight and class_weight in every process.",
    ),
    "class_weight": (
        2,
        lambda r: _fit(X, Y, class_weight={0: 1.0, 1: 1.0 + r, 2: 1.0}),
        "Received: training sample weights (sample_weight, class_weight) in process 1 that differ",
    ),
    "labels": (
        2,
        lambda r: _fit(X, (Y + r) % 3),
        "Received: training y in process 1 that differs from process 0's",
    ),
}


@pytest.mark.parametrize("case", sorted(DIFFERENT_DATA))
def test_fit_refuses_processes_holding_other_data_of_the_same_size(case: str) -> None:
    """A shard per process of equal size trained silently on part of the data: each process takes its rows of
    every global batch from its own arrays. Every process now raises the same error before the first batch."""
    size, fit_in, expected = DIFFERENT_DATA[case]
    errors = _errors_in(size, fit_in)
    assert all(isinstance(e, DataParallelError) for e in errors), errors
    assert len({str(e) for e in errors}) == 1
    assert expected in str(errors[0])


def test_fit_compares_every_input_of_a_model_of_several_inputs() -> None:
    second = RNG.normal(size=(40, 2)).astype(np.float32)

    def fit_in(rank: int) -> None:
        a, b = Input(5, name="a"), Input(2, name="b")
        with Model([a, b], Dense(3)(Concatenate()([a, b])), seed=1) as model:
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
            model.fit([X, second[::-1] if rank else second], Y, epochs=1, batch_size=8, verbose=0)

    errors = _errors_in(2, fit_in)
    assert all(isinstance(e, DataParallelError) for e in errors), errors
    assert "Received: training x in process 1 that differs from process 0's" in str(errors[0])


@pytest.mark.slow
def test_a_split_seeded_alike_in_every_process_trains_as_one_process() -> None:
    train, _ = Dataset.create(X, Y).split(0.8, shuffle=True, seed=3)
    alone = _fit(train, None)
    world = ThreadWorld(2)
    dist.init(communicator=world)
    for weights in world.run(lambda r: _fit(Dataset.create(X, Y).split(0.8, shuffle=True, seed=3)[0], None)):
        for name, value in alone.items():
            np.testing.assert_allclose(weights[name], value, rtol=1e-5, atol=1e-6)


def test_copies_of_the_same_data_train_as_one_process() -> None:
    """Equal data as independent copies (float64 in one process, a strided float32 view in another) passes the
    check and trains to one process's weights."""
    alone = _fit(X, Y, seed=5, validation_data=(X[:9], Y[:9]))  # process 0's weights and shuffle win
    world = ThreadWorld(2)
    dist.init(communicator=world)
    copies = [X.astype(np.float64), np.repeat(X, 2, axis=0)[::2]]
    runs = world.run(lambda r: _fit(copies[r], Y.copy(), seed=5 + r, validation_data=(copies[r][:9], Y[:9])))
    for weights in runs:
        for name, value in alone.items():
            np.testing.assert_allclose(weights[name], value, rtol=1e-5, atol=1e-6)


# --- two MPI processes -------------------------------------------------------------------------------------------
SHARD_WORKER = """
import sys
from pathlib import Path

import numpy as np

import onnxtrain.distributed as dist
from onnxtrain import Sequential
from onnxtrain.errors import DataParallelError
from onnxtrain.layers import Dense, Input

rank = dist.init().rank
rng = np.random.default_rng(0)
x, y = rng.normal(size=(40, 5)).astype(np.float32), rng.integers(0, 3, 40)
with Sequential.of(Input(5), Dense(3), seed=1 + rank) as model:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", threads=1)
    try:  # the DDP habit: each process its own shard
        model.fit(x[20 * rank : 20 * rank + 20], y[20 * rank : 20 * rank + 20], epochs=1, batch_size=8, verbose=0)
    except DataParallelError as e:
        Path(sys.argv[1], f"rank{rank}.txt").write_text(str(e))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # the whole set in each: trains
    np.savez(Path(sys.argv[1], f"rank{rank}.npz"), **model.get_weights())
"""


@pytest.mark.slow
def test_two_mpi_processes_given_a_shard_each_both_say_so_and_train_on_the_whole_set(tmp_path: Path) -> None:
    script = tmp_path / "shards.py"
    script.write_text(SHARD_WORKER)
    command = [_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(script), str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=150)
    assert run.returncode == 0, run.stdout + run.stderr
    messages = [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)]  # each process raised it
    assert messages[0] == messages[1]
    assert "Received: training x and y in process 1 that differ from process 0's (20 examples" in messages[0]
    weights = [dict(np.load(tmp_path / f"rank{rank}.npz")) for rank in (0, 1)]
    assert all(np.array_equal(weights[0][name], weights[1][name]) for name in weights[0])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)).astype(np.float32), rng.integers(0, 3, 40)
    for name, value in _fit(x, y).items():  # one process on the same global batches
        np.testing.assert_allclose(weights[0][name], value, rtol=1e-5, atol=1e-6)
