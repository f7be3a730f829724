"""What ends a run of `onnxtrain train` early without losing it: SIGTERM, the preemption signal of Kubernetes, Slurm
and spot instances, taken as Ctrl-C is (the run saves what was trained, then exits with 128 + the signal's number:
130 after Ctrl-C, 143 after SIGTERM); and a stdout whose reader went away (`| head`, a restarted log shipper), after
which the run goes on without printing."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

SIGINT_STATUS = 128 + signal.SIGINT  # 130
SIGTERM_STATUS = 128 + signal.SIGTERM  # 143
STOP_STATUSES = frozenset({SIGINT_STATUS, SIGTERM_STATUS})


class _Received:
    """The stopping signal this process received last (None: none, or a KeyboardInterrupt raised by other means)."""

    signal: int | None = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _Received.signal = signum
    raise KeyboardInterrupt


def stop_status() -> int:
    """The exit status of a run that a signal stopped: 143 after SIGTERM, else 130 (Ctrl-C)."""
    return SIGTERM_STATUS if _Received.signal == signal.SIGTERM else SIGINT_STATUS


def stop_name() -> str:
    """How messages name what stopped the run."""
    return "terminated (SIGTERM)" if _Received.signal == signal.SIGTERM else "interrupted"


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread as Ctrl-C does, and `stop_status`
    tells the two apart. Outside the main thread (where Python cannot set handlers) nothing changes."""
    _Received.signal = None
    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(number) not in (signal.default_int_handler, signal.SIG_DFL):
                continue  # ignored on purpose (the other processes of --workers N) or the caller's own handler
            previous[number] = signal.signal(number, _raise_interrupt)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)


@contextlib.contextmanager
def ignoring_stopping_signals(ignore: bool = True) -> Iterator[None]:
    """In the processes of `--workers N` other than the first (`ignore`): Ctrl-C or SIGTERM sent to all of them (a
    terminal's Ctrl-C, Slurm's scancel) must not end them while process 0 saves the run; process 0 ends them after.
    The handlers are restored on leaving, so a caller in the same process (a test) keeps its own: an ignored SIGINT
    would also be inherited by every process it starts after."""
    previous: dict[int, Any] = {}
    if ignore:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, signal.SIG_IGN)
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)


class SurvivingStdout:
    """Stands in for `sys.stdout` during a run: once the reader of stdout has gone away (a write or flush raises
    BrokenPipeError), stdout is pointed at os.devnull, as Python's documentation of SIGPIPE advises, a note goes to
    stderr, and the run goes on without printing. `reader_gone` tells whether that happened."""

    def __init__(self, stream: TextIO, command: str):
        self._stream, self._command = stream, command
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_left()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding...: the stream's
        return getattr(self._stream, name)

    def _reader_left(self) -> None:
        self.reader_gone = True
        try:  # what the stream still buffers, and whatever prints later, goes nowhere instead of failing again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # a stream without a file descriptor (a test's capture)
            pass
        print(
            f"onnxtrain {self._command}: note: stdout was closed (its reader went away); the run goes on without "
            "printing and saves as usual",
            file=sys.stderr,
            flush=True,
        )


@contextlib.contextmanager
def surviving_stdout(command: str) -> Iterator[SurvivingStdout]:
    """`sys.stdout` is a `SurvivingStdout` within the block."""
    guard = SurvivingStdout(sys.stdout, command)
    with contextlib.redirect_stdout(guard):
        yield guard
