"""Joining and leaving the world (`distributed/_world.py`, `_mpi.py`, `_communicator.meet`): init() over MPI under a
launcher of several processes that MPI sees as one (torchrun, another MPI's mpiexec), a block in which one process
loads or compiles a model alone (`alone()`), and the warning of a process left waiting at compile for the others,
against a fake world and over two MPI processes."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_distributed import _mpiexec

import onnxtrain.distributed as dist
from onnxtrain import Sequential, load_model
from onnxtrain._compile_settings import compile_settings
from onnxtrain._data_parallel_fit import check_compiled_alike
from onnxtrain.callbacks import Callback, CallbackList
from onnxtrain.distributed import _communicator, _mpi
from onnxtrain.distributed._communicator import meet
from onnxtrain.distributed._mpi import check_launched_size
from onnxtrain.errors import InvalidArgumentError, ModelStateError
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import BinaryCrossentropy

HERE = Path(__file__).parent
RNG = np.random.default_rng(2)
X = RNG.normal(size=(12, 4)).astype(np.float32)
Y = RNG.integers(0, 2, 12)


@pytest.fixture(autouse=True)
def _alone_after() -> Any:
    yield
    dist.leave()


class NoCollectives:
    """Process 0 of a world of two whose other process never comes: every collective call fails the test (where a
    real world would wait forever)."""

    rank, size = 0, 2

    def all_reduce_sum(self, buffer: np.ndarray) -> None:
        raise AssertionError("a collective call (all_reduce_sum) that the other process never makes")

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        raise AssertionError("a collective call (broadcast) that the other process never makes")

    def abort(self, code: int = 1) -> None:
        raise AssertionError("abort")


def _compiled() -> Sequential:
    model = Sequential.of(Input(4), Dense(2), seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
    return model


# --- init() over MPI under a launcher that started several processes ---------------------------------------------
LAUNCHERS = {
    "torchrun": ({"WORLD_SIZE": "2", "RANK": "1"}, r"one of 2 that torchrun or Ray Train started. Received: "
                 r"WORLD_SIZE=2 in the environment\. .*join their world with init\(backend=\"torch\"\), or launch "
                 r"with the mpiexec of mpi4py's MPI: `mpiexec -n N python -m mpi4py script.py`"),
    "another_mpich": ({"PMI_SIZE": "4"}, r"one of 4 that an MPICH-style mpiexec or srun started. Received: "
                      r"PMI_SIZE=4 .*use mpi4py built against that MPI"),
    "open_mpi": ({"OMPI_COMM_WORLD_SIZE": "3"}, r"one of 3 that Open MPI's mpirun started. Received: "
                 r"OMPI_COMM_WORLD_SIZE=3 .*use mpi4py built against Open MPI"),
    "srun": ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8"}, r"one of 8 that srun started. Received: "
             r"SLURM_STEP_NUM_TASKS=8 .*start the tasks with `srun --mpi=pmix`"),
}  # fmt: skip


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_init_over_mpi_refuses_one_process_where_a_launcher_started_several(launcher: str) -> None:
    """Before: every process of `torchrun --nproc-per-node 2` with init() trained alone as process 0, silently."""
    environ, message = LAUNCHERS[launcher]
    with pytest.raises(InvalidArgumentError, match=r"joined an MPI world of 1 process, but this process is " + message):
        check_launched_size(1, environ)
    check_launched_size(int(next(v for k, v in environ.items() if k != "RANK")), environ)  # MPI sees them all


@pytest.mark.parametrize(
    "environ", [{}, {"WORLD_SIZE": "1", "RANK": "0"}, {"PMI_SIZE": "1"}, {"WORLD_SIZE": ""}, {"SLURM_NTASKS": "1"}]
)
def test_init_over_mpi_alone_takes_a_launcher_of_one_or_none(environ: dict[str, str]) -> None:
    check_launched_size(1, environ)


def test_init_over_mpi_warns_in_a_slurm_allocation_of_several_tasks() -> None:
    """A batch script of an allocation of 4 tasks may run one process itself: a warning, not an error."""
    with pytest.warns(UserWarning, match=r"Slurm allocation of SLURM_NTASKS=4 tasks: this process trains alone.*"
                      r"srun --mpi=pmix python -m mpi4py script.py"):  # fmt: skip
        check_launched_size(1, {"SLURM_NTASKS": "4"})


def test_init_checks_the_launcher_s_count_against_mpi_s(monkeypatch: pytest.MonkeyPatch) -> None:
    class OneProcess(NoCollectives):
        size = 1

    monkeypatch.setattr(_mpi, "MPICommunicator", OneProcess)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InvalidArgumentError, match="Received: WORLD_SIZE=2"):
        dist.init()
    assert dist.world() is None
    monkeypatch.delenv("WORLD_SIZE")
    assert isinstance(dist.init(), OneProcess)


# --- a model that only some processes load or compile ------------------------------------------------------------
@pytest.mark.slow
def test_a_model_compiled_alone_in_a_world_makes_no_collective_call(tmp_path: Path) -> None:
    """Horovod's habit, `if rank == 0: load_model(best).evaluate(...)`: compile in a world is collective, so it
    waited forever for the others; in `alone()` it compiles, trains and saves in this process only."""
    with _compiled() as model:
        model.fit(X, Y, epochs=1, batch_size=4, verbose=0)
        model.save(tmp_path / "best")
        expected = model.evaluate(X, Y, verbose=0)
    world = dist.init(communicator=NoCollectives())
    with dist.alone():
        assert (dist.world(), dist.rank(), dist.size()) == (None, 0, 1)
        best = load_model(tmp_path / "best")
        best.fit(X, Y, epochs=1, batch_size=4, verbose=0)  # alone too
    assert dist.world() is world  # in its world again
    with best:
        assert best.evaluate(X, Y, verbose=0) != expected  # trained on, alone, and evaluates out of the block
        with pytest.raises(ModelStateError, match=r"or the model was compiled inside alone\(\)\).*still trains alone"):
            best.fit(X, Y, epochs=1, batch_size=4, verbose=0)


def test_alone_joins_the_world_again_after_an_error() -> None:
    world = dist.init(communicator=NoCollectives())
    with pytest.raises(KeyError), dist.alone():
        raise KeyError("in the block")
    assert dist.world() is world


class BarrierAfter(NoCollectives):
    """A world whose non-blocking barrier completes after `polls` polls."""

    def __init__(self, polls: int):
        self.polls = polls

    def ibarrier(self) -> Any:
        left = [self.polls]

        def done() -> bool:
            left[0] -= 1
            return left[0] < 0

        return done


def test_meet_warns_once_a_process_that_waits_long_and_waits_on() -> None:
    waits: list[float] = []
    meet(BarrierAfter(polls=8), waits.append, after=0.005)  # 8 polls: 0.0255 s of doubling pauses from 0.1 ms
    assert len(waits) == 1 and waits[0] >= 0.005
    meet(BarrierAfter(polls=0), waits.append, after=0.0)  # all there at once: no warning
    meet(NoCollectives(), waits.append, after=0.0)  # no barrier to poll: the next collective waits
    assert len(waits) == 1


def test_compile_in_a_world_warns_a_process_left_waiting_for_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_communicator, "STALL_SECONDS", 0.005)
    with caplog.at_level(logging.WARNING, "onnxtrain"), pytest.raises(AssertionError, match="broadcast"):
        check_compiled_alike(BarrierAfter(polls=8), {"engine": "'portable'"})
    [record] = caplog.records
    assert re.search(
        r"Process 0 of 2 has waited \d+ s in compile for the other processes of its data-parallel world, and waits "
        r"on\. After onnxtrain\.distributed\.init\(\), compile \(and load_model, which compiles\) is collective",
        record.getMessage(),
    )
    assert "belongs inside `with onnxtrain.distributed.alone():` in those processes" in record.getMessage()


# --- over two MPI processes --------------------------------------------------------------------------------------
ALONE_WORKER = """
import sys
import time
from pathlib import Path

import numpy as np

import onnxtrain
import onnxtrain.distributed as dist
from onnxtrain import Sequential
from onnxtrain.distributed import _communicator
from onnxtrain.layers import Dense, Input
from onnxtrain.losses import BinaryCrossentropy

_communicator.STALL_SECONDS = 0.5
folder = Path(sys.argv[1])
world = dist.init()
x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)


def compiled():
    model = Sequential.of(Input(4), Dense(2), seed=1 + world.rank)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", threads=1)
    return model


if world.rank == 1:
    time.sleep(2.0)  # process 0 waits at compile, and is told so after 0.5 s
model = compiled()
model.fit(x, y, epochs=1, batch_size=10, verbose=0)
if world.rank == 0:
    model.save(folder / "best")
    with dist.alone():  # process 1 has gone on to its end
        best = onnxtrain.load_model(folder / "best")
    (folder / "evaluate.txt").write_text(repr(best.evaluate(x, y, verbose=0)))
    (folder / "expected.txt").write_text(repr(model.evaluate(x, y, verbose=0)))
"""


@pytest.mark.slow
def test_over_mpi_process_zero_loads_a_model_alone_and_a_late_process_is_waited_for(tmp_path: Path) -> None:
    script = tmp_path / "alone.py"
    script.write_text(ALONE_WORKER)
    command = [_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(script), str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        out, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"the two MPI processes hung (killed after 120 s):\n{out.decode()[-3000:]}")
    output = out.decode()
    assert process.returncode == 0, output[-3000:]
    assert output.count("has waited") == 1 and re.search(r"Process 0 of 2 has waited \d+ s in compile", output), output
    assert (tmp_path / "evaluate.txt").read_text() == (tmp_path / "expected.txt").read_text()


# --- the warnings of compile and fit, printed by process 0 alone ---------------------------------------------------
class ProcessOne(NoCollectives):
    rank = 1


class PredictHook(Callback):
    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:  # a hook fit never calls: fit warns
        pass


def _warnings_of(action: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in caught]


def _compile_settings(model: Sequential, loss: Any) -> Any:
    arguments = dict.fromkeys(("metric", "metrics", "artifacts_dir", "threads", "opset", "ir_version", "loss_weights"))
    return compile_settings(model.graph, "sgd", loss, device="cpu", engine="portable", **arguments)


@pytest.mark.parametrize("world", [None, NoCollectives(), ProcessOne()], ids=["alone", "process_0", "process_1"])
def test_compile_and_fit_warn_in_process_zero_alone(world: Any) -> None:
    """Before: every process of a world printed each of these warnings (docs/scaling.md: only process 0 prints)."""
    model = Sequential.of(Input(4), Dense(3, activation="relu"), Dense(1, activation="relu"), seed=1)
    if world is not None:
        dist.init(communicator=world)
    relu_probabilities = _warnings_of(lambda: _compile_settings(model, "binary_crossentropy"))
    relu_logits = _warnings_of(lambda: _compile_settings(model, BinaryCrossentropy(from_logits=True)))
    uncalled = _warnings_of(lambda: CallbackList([PredictHook()], model))
    expected = 0 if isinstance(world, ProcessOne) else 1
    assert [len(relu_probabilities), len(relu_logits), len(uncalled)] == [expected] * 3
    if expected:
        assert "expects probabilities, but the last layer 'dense_2' ends in activation 'relu'" in relu_probabilities[0]
        assert "expects logits, but the last layer 'dense_2' applies activation 'relu'" in relu_logits[0]
        assert "overrides on_predict_batch_end, which onnxtrain never calls" in uncalled[0]
