"""`onnxtrain train ... --workers N` on one machine: the command line again, in N processes that mpiexec starts
(`mpiexec -n N python -m mpi4py -m onnxtrain ...`), each of which then joins their MPI world; and what the
launcher does for them: pass their output on without MPI's abort notices, print a failed run's error once, and
pass Ctrl-C and SIGTERM on to process 0, which saves the run as one process does."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from onnxtrain.errors import RuntimeSetupError

WORKER_ENV = "ONNXTRAIN_WORKERS"  # set in the processes the launcher starts: how many there are
# Set there too: the launcher's folder, where a process that fails alone writes its error before it aborts the job
# (for the launcher to print: printed by the process itself, the line could be lost, as MPI_Abort ends mpiexec's
# output forwarding before it has passed the line on; that failed with empty output about once in 50 runs), and
# where process 0 writes its process id (where the launcher sends Ctrl-C and SIGTERM).
ERRORS_ENV = "ONNXTRAIN_WORKER_ERRORS"
PROCESS_ZERO_PID = "process0.pid"
LAST_WORDS = "last_words.txt"  # process 0's line on a stopped run's save (`say_last`)
INTERRUPTED = 130  # the exit status of an interrupted command

# What MPICH's mpiexec and MPI_Abort print about a job the launcher ends on purpose (process 0 after saving an
# interrupted run, a process that reported its error): the launcher has said what happened, so not passed on.
MPI_NOTICES = re.compile(
    r"Abort\(\d+\) on node \d+ \(rank \d+ in comm \d+\): application called MPI_Abort\(.*\) - process \d+"
    r"|\[mpiexec@[^\]]*\] (Sending Ctrl-C to processes as requested|Press Ctrl-C again to force abort)"
)


def report_error(rank: int, message: str) -> None:
    """Report `message`, process `rank`'s error, before it aborts the job: into the launcher's folder when `launch`
    started the process (written and synced, so that the launcher prints it), else on stderr."""
    folder = os.environ.get(ERRORS_ENV)
    if folder is None:
        print(f"onnxtrain train: error in process {rank}: {message}", file=sys.stderr, flush=True)
        return
    with open(Path(folder) / f"process{rank}.txt", "w", encoding="utf-8") as f:
        f.write(message + "\n")
        f.flush()
        os.fsync(f.fileno())


def say_last(line: str) -> None:
    """Print `line`, a stopped run's last words (where it saved), on stderr; in process 0 of a launched run, write it
    into the launcher's folder instead, for the launcher to print: process 0 aborts the job right after, which can
    end mpiexec's output forwarding before it has passed a printed line on (`report_error`'s reason)."""
    folder = os.environ.get(ERRORS_ENV)
    if folder is None or os.environ.get(WORKER_ENV) is None:
        print(line, file=sys.stderr, flush=True)
        return
    with open(Path(folder) / LAST_WORDS, "w", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def announce_process_zero() -> None:
    """In process 0 of a launched run: tell the launcher where to send Ctrl-C (this process's id)."""
    folder = os.environ.get(ERRORS_ENV)
    if folder is not None:
        (Path(folder) / PROCESS_ZERO_PID).write_text(str(os.getpid()), encoding="utf-8")


def worker_count() -> int | None:
    """In a process that `launch` started, how many processes it started; None elsewhere."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value else None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or `taskset` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Each of `workers` processes' share of the machine's `cores` (default: `usable_cores()`), at least 1: the
    intra-op threads `--workers N` gives each process unless told otherwise (ONNX Runtime's default, a thread per
    core in every process, oversubscribes the machine N times)."""
    return max(1, (usable_cores() if cores is None else cores) // workers)


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


def launch(workers: int, argv: Sequence[str], command: str = "train") -> int:
    """Run `onnxtrain <argv>` in `workers` MPI processes on this machine; returns their exit status (130 when
    interrupted, 143 when ended by SIGTERM).

    mpiexec runs in a session of its own: Ctrl-C and SIGTERM reach this process only, which passes them to process 0
    (it saves the run and ends the job, as one process saves and exits); before process 0 has started, it ends the
    job. The processes' errors are printed once (`print_reports`).
    """
    try:
        import mpi4py  # noqa: F401  (the workers import it: say what is missing before starting them)
    except ImportError as e:
        raise RuntimeSetupError(
            f"--workers {workers} needs mpi4py and an MPI library: `pip install onnxtrain[distributed]`."
        ) from e
    with tempfile.TemporaryDirectory(prefix="onnxtrain-workers-") as folder, _stop_signals() as received:
        env = {**os.environ, WORKER_ENV: str(workers), ERRORS_ENV: folder}
        process = subprocess.Popen(
            worker_command(workers, argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # passed on here: a reader that goes away (`| head`) must not end mpiexec
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        assert process.stderr is not None and process.stdout is not None
        quiet = threading.Event()  # set when the job is ended before it started: its processes' last words go unsaid
        passer = threading.Thread(target=pass_on_stderr, args=(process.stderr, sys.stderr, quiet), daemon=True)
        passer.start()
        out_passer = threading.Thread(target=pass_on_stdout, args=(process.stdout, command), daemon=True)
        out_passer.start()
        stopped_by: int | None = None
        while True:
            try:
                status = process.wait()
                break
            except KeyboardInterrupt:
                stopped_by = received[-1] if received else signal.SIGINT
                if not _interrupt_process_zero(Path(folder), stopped_by):
                    quiet.set()
                    process.kill()
        passer.join()
        out_passer.join()
        last_words = Path(folder) / LAST_WORDS
        if last_words.exists():
            print(last_words.read_text(encoding="utf-8").rstrip("\n"), file=sys.stderr, flush=True)
        print_reports(Path(folder), command)
    if stopped_by is not None and quiet.is_set():
        how = "terminated (SIGTERM)" if stopped_by == signal.SIGTERM else "interrupted"
        print(f"onnxtrain {command}: {how}", file=sys.stderr, flush=True)
    return 128 + stopped_by if stopped_by is not None else status


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """Within the block, Ctrl-C and SIGTERM raise KeyboardInterrupt in the main thread; the list it gives holds the
    signals received, last last (a KeyboardInterrupt raised otherwise leaves it empty)."""
    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            if number == signal.SIGINT and signal.getsignal(number) is not signal.default_int_handler:
                continue  # the caller's own handler, or ignored on purpose
            previous[number] = signal.signal(number, stop)
    except ValueError:  # not the main thread: Python sets no handlers there
        pass
    try:
        yield received
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)


def _interrupt_process_zero(folder: Path, number: int = signal.SIGINT) -> bool:
    """Send signal `number` (SIGINT or SIGTERM) to process 0, which has said where it is; whether it could be sent."""
    try:
        pid = int((folder / PROCESS_ZERO_PID).read_text(encoding="utf-8"))
        os.kill(pid, number)
    except (OSError, ValueError):  # not written yet (the processes are starting), or process 0 has ended
        return False
    return True


def pass_on_stdout(source: IO[str], command: str) -> None:
    """Copy the workers' stdout to this process's as it comes (a progress bar's partial lines too). Once its reader
    has gone away (a broken pipe), the rest is read and dropped, so that the workers never write into a closed pipe
    and process 0 trains and saves the run as one process does (`onnxtrain.cli._stopping.SurvivingStdout`)."""
    descriptor, target = source.fileno(), sys.stdout.fileno()
    reader_gone = False
    while chunk := os.read(descriptor, 1 << 16):
        while chunk and not reader_gone:
            try:
                chunk = chunk[os.write(target, chunk) :]
            except BrokenPipeError:
                reader_gone = True
                print(
                    f"onnxtrain {command}: note: stdout was closed (its reader went away); the run goes on without "
                    "printing and saves as usual",
                    file=sys.stderr,
                    flush=True,
                )


def pass_on_stderr(source: IO[str], target: IO[str], quiet: threading.Event) -> None:
    """Copy the workers' stderr to `target` line by line, less MPICH's notices of an abort or a Ctrl-C that the
    launcher explains itself (`MPI_NOTICES`), and nothing once `quiet` is set."""
    for line in source:
        if not quiet.is_set() and not MPI_NOTICES.fullmatch(line.rstrip("\n")):
            target.write(line)
            target.flush()


def print_reports(folder: Path, command: str) -> None:
    """Print the errors that processes reported before aborting the job: the one-process line `onnxtrain
    <command>: error: ...` when they all say the same (an error every process hits alike: only the first may have
    written it before the abort ended the others); else each distinct message once, naming its first process."""
    reports = sorted(folder.glob("process*.txt"), key=lambda p: int(p.stem.removeprefix("process")))
    messages: dict[str, int] = {}
    for report in reports:
        messages.setdefault(report.read_text(encoding="utf-8").strip(), int(report.stem.removeprefix("process")))
    for message, rank in messages.items():
        where = "" if len(messages) == 1 else f" in process {rank}"
        print(f"onnxtrain {command}: error{where}: {message}", file=sys.stderr, flush=True)
