"""`onnxtrain train ... --workers N` on one machine: the command line again, in N processes that mpiexec starts
(`mpiexec -n N python -m mpi4py -m onnxtrain ...`), each of which then joins their MPI world."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from onnxtrain.errors import RuntimeSetupError

WORKER_ENV = "ONNXTRAIN_WORKERS"  # set in the processes the launcher starts: how many there are


def worker_count() -> int | None:
    """In a process that `launch` started, how many processes it started; None elsewhere."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value else None


def mpiexec() -> str:
    """The mpiexec of this Python's environment (the mpich wheel puts it beside python), else the PATH's."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise RuntimeSetupError(
            "--workers needs mpiexec and mpi4py: `pip install onnxtrain[distributed]` (mpi4py and MPICH), or load "
            "the cluster's MPI module."
        )
    return found


def worker_command(workers: int, argv: Sequence[str]) -> list[str]:
    """The command that runs `onnxtrain <argv>` in `workers` MPI processes. `-m mpi4py`: an exception in one
    process aborts the whole job instead of leaving the others waiting in an all-reduce."""
    return [mpiexec(), "-n", str(workers), sys.executable, "-m", "mpi4py", "-m", "onnxtrain", *argv]


def launch(workers: int, argv: Sequence[str]) -> int:
    """Run `onnxtrain <argv>` in `workers` MPI processes on this machine; returns mpiexec's exit status."""
    try:
        import mpi4py  # noqa: F401  (the workers import it: say what is missing before starting them)
    except ImportError as e:
        raise RuntimeSetupError(
            f"--workers {workers} needs mpi4py and an MPI library: `pip install onnxtrain[distributed]`."
        ) from e
    command = worker_command(workers, argv)
    env = {**os.environ, WORKER_ENV: str(workers)}
    try:
        return subprocess.run(command, env=env, check=False).returncode
    except KeyboardInterrupt:  # mpiexec forwards the interrupt to the workers and ends them
        return 130
