"""`onnxtrain train ... --workers N` on one machine: the command line again, in N processes that mpiexec starts
(`mpiexec -n N python -m mpi4py -m onnxtrain ...`), each of which then joins their MPI world."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from onnxtrain.errors import RuntimeSetupError

WORKER_ENV = "ONNXTRAIN_WORKERS"  # set in the processes the launcher starts: how many there are
# Set there too: the folder where a process that fails alone writes its error line before it aborts the job, for the
# launcher to print. Printed by the process itself, the line could be lost: MPI_Abort ends mpiexec's output
# forwarding before it has passed the line on (it then failed with empty output about once in 50 runs).
ERRORS_ENV = "ONNXTRAIN_WORKER_ERRORS"


def report_error(rank: int, line: str) -> None:
    """Report `line`, process `rank`'s error, before it aborts the job: into the launcher's folder when `launch`
    started the process (written and synced, so that the launcher prints it), else on stderr."""
    folder = os.environ.get(ERRORS_ENV)
    if folder is None:
        print(line, file=sys.stderr, flush=True)
        return
    with open(Path(folder) / f"process{rank}.txt", "w", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


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
    with tempfile.TemporaryDirectory(prefix="onnxtrain-workers-") as errors:
        env = {**os.environ, WORKER_ENV: str(workers), ERRORS_ENV: errors}
        try:
            status = subprocess.run(command, env=env, check=False).returncode
        except KeyboardInterrupt:  # mpiexec forwards the interrupt to the workers and ends them
            status = 130
        for report in sorted(Path(errors).glob("process*.txt"), key=lambda p: int(p.stem.removeprefix("process"))):
            print(report.read_text(encoding="utf-8"), end="", file=sys.stderr, flush=True)
    return status
