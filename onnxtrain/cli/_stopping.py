"""What ends a run of `onnxtrain train` early without losing it: SIGTERM, the preemption signal of Kubernetes, Slurm
and spot instances, taken as Ctrl-C is (the run saves what was trained, then exits with 128 + the signal's number:
130 after Ctrl-C, 143 after SIGTERM); and a stdout whose reader went away (`| head`, a restarted log shipper), after
which the run goes on without printing."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from onnxtrain.progress import SurvivingStream

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
def _handling_stops(handler: Any, replaces: Callable[[Any], bool]) -> Iterator[None]:
    """Within the block, `handler` handles SIGINT and SIGTERM wherever `replaces(the current handler)`; the previous
    handlers come back after. Outside the main thread (where Python cannot set handlers) nothing changes."""
    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            if replaces(signal.getsignal(number)):
                previous[number] = signal.signal(number, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for restored, old in previous.items():
            signal.signal(restored, old)


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread as Ctrl-C does, and `stop_status`
    tells the two apart. A handler ignored on purpose (the other processes of --workers N) or the caller's own is
    kept; outside the main thread nothing changes."""
    _Received.signal = None
    with _handling_stops(_raise_interrupt, lambda current: current in (signal.default_int_handler, signal.SIG_DFL)):
        yield


@contextlib.contextmanager
def finishing_the_save(command: str) -> Iterator[None]:
    """While a stopped run saves (seconds): the first further Ctrl-C or SIGTERM, a reflex second press, only says
    that the save goes on; the next one abandons it (KeyboardInterrupt). Signals ignored on purpose stay ignored;
    outside the main thread nothing changes."""
    received = 0

    def note_or_abandon(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1:
            raise KeyboardInterrupt
        print(
            f"onnxtrain {command}: still saving the model (seconds); press Ctrl-C again to abandon the save",
            file=sys.stderr,
            flush=True,
        )

    with _handling_stops(note_or_abandon, lambda current: current is not signal.SIG_IGN):
        yield


@contextlib.contextmanager
def ignoring_stopping_signals(ignore: bool = True) -> Iterator[None]:
    """In the processes of `--workers N` other than the first (`ignore`): Ctrl-C or SIGTERM sent to all of them (a
    terminal's Ctrl-C, Slurm's scancel) must not end them while process 0 saves the run; process 0 ends them after.
    The handlers are restored on leaving, so a caller in the same process (a test) keeps its own: an ignored SIGINT
    would also be inherited by every process it starts after."""
    with _handling_stops(signal.SIG_IGN, lambda current: ignore):
        yield


@contextlib.contextmanager
def surviving_stdout(command: str) -> Iterator[SurvivingStream]:
    """`sys.stdout` is a `SurvivingStream` within the block: once its reader has gone away, the run goes on without
    printing (and says so on stderr)."""
    note = f"onnxtrain {command}: note: stdout was closed (its reader went away); the run goes on without printing"
    guard = SurvivingStream(sys.stdout, f"{note} and saves as usual")
    with contextlib.redirect_stdout(guard):
        yield guard
