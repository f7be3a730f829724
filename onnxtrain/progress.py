"""What `fit` and `evaluate` print: a tqdm bar per epoch on a terminal, plain per-epoch lines otherwise; and
`print_once`/`log_once`, through which fit's callbacks and the command line print, on process 0 of a data-parallel
world only.

verbose=0 prints nothing; verbose=1 (or Keras' "auto") shows a bar (batches done/total, ETA, running figures) when
the output stream is a terminal and falls back to one plain line per epoch when it is not (logs, pipes, CI), so no
carriage returns or ANSI codes reach a file; verbose=2 always prints one line per epoch. `predict` shows nothing.
A stream whose reader goes away (`python train.py | head`, a restarted log collector) does not end the fit: it
goes on without printing (`SurvivingStream`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, TextIO, cast

from onnxtrain.distributed._world import rank
from onnxtrain.errors import InvalidArgumentError

# Seconds between bar redraws. `batch_end` runs every training step, so between redraws it costs one
# clock read and one comparison; the bar, its ETA and the postfix are formatted only when a redraw is due.
REFRESH_SECONDS = 0.1
FINAL_BAR_FORMAT = "{l_bar}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def prints_here() -> bool:
    """Whether this process prints what fit, its callbacks and the command line say: a process alone, or process
    0 of a data-parallel world (`onnxtrain.distributed.init()`); the others train in silence, so that N
    processes do not print N copies of every line."""
    return rank() == 0


def print_once(message: str, file: IO[str] | None = None) -> None:
    """`print(message, file=file)`, flushed, on the process that prints (`prints_here`) only; nothing where the
    stream's reader has gone away (a callback's message is not worth a fit)."""
    if prints_here():
        with contextlib.suppress(BrokenPipeError):
            print(message, file=sys.stdout if file is None else file, flush=True)


def log_once(logger: logging.Logger, level: int, message: str, *args: Any) -> None:
    """`logger.log(level, message, *args)` on the process that prints (`prints_here`) only."""
    if prints_here():
        logger.log(level, message, *args)


def check_verbose(verbose: Any) -> int:
    """`verbose` as 0, 1 or 2: a bool as 0 or 1, and Keras' "auto" as 1 (what Keras makes of it outside a
    parameter-server strategy)."""
    if isinstance(verbose, bool):
        return int(verbose)
    if verbose == "auto":
        return 1
    if not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise InvalidArgumentError(
            "verbose expects 0 (silent), 1 (a progress bar) or 2 (one line per epoch), or 'auto' (Keras' default: "
            f"1). Received: verbose={verbose!r}"
        )
    return verbose


def is_terminal(stream: IO[str]) -> bool:
    """Whether `stream` is an interactive terminal that can redraw a bar (TERM=dumb cannot)."""
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _fixed_size(stream: IO[str]) -> tuple[int, int] | None:
    """None when the terminal reports its size (tqdm follows it), else (columns, rows) to use: a pty opened
    without a size (`script` with a non-terminal stdin) reports 0x0, with which tqdm draws nothing."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 100, 24
    return None if size.columns > 0 and size.lines > 0 else (100, 24)


class SurvivingStream:
    """Stands in for an output stream (stdout) whose reader may go away: once a write or flush raises
    BrokenPipeError, the stream's file descriptor is pointed at os.devnull, as Python's documentation of SIGPIPE
    advises, `note` goes to stderr once, and nothing more is written. `reader_gone` tells whether that happened."""

    def __init__(self, stream: TextIO | IO[str], note: str):
        self._stream, self._note = stream, note
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
        with contextlib.suppress(OSError):
            print(self._note, file=sys.stderr, flush=True)


FIT_NOTE = "onnxtrain: note: the output stream was closed (its reader went away); fit goes on without printing"


def format_logs(logs: Mapping[str, float], separator: str = " - ") -> str:
    """`logs` as the progress line shows them: each "key: value" with 4 decimals, in the mapping's order, joined by
    `separator` (the bar's postfix uses ", "). e.g. `format_logs({"loss": 0.25, "accuracy": 0.9})` is
    "loss: 0.2500 - accuracy: 0.9000"; a callback of one's own may print its figures so."""
    return separator.join(f"{key}: {value:.4f}" for key, value in logs.items())


class Progress:
    """Progress display of one `fit` (or `evaluate`, with `label="Evaluate"`) call.

    Args:
        verbose: 0, 1 or 2 (see the module docstring).
        steps: batches per epoch; None where the data does not say (a generator read to its end): the bar then
            counts without a total, and takes the first epoch's count as the total of later ones.
        epochs: epochs in this call; epochs are shown with their model-wide numbers ("Epoch 3/4" on a second
            `fit` call of 2 epochs after 2 trained).
        stream: where to write (default: `sys.stdout` at construction time).
        label: the bar's description prefix.
    """

    def __init__(
        self, verbose: int, steps: int | None, epochs: int, stream: IO[str] | None = None, label: str = "Epoch"
    ):
        self.verbose = check_verbose(verbose)
        self.steps = steps
        self.epochs = epochs
        self.label = label
        stream = stream if stream is not None else sys.stdout
        # An IO[str] in all but name (it writes, flushes and passes every other attribute to the stream).
        guarded = stream if isinstance(stream, SurvivingStream) else SurvivingStream(stream, FIT_NOTE)
        self.stream = cast(IO[str], guarded)
        self.bar_enabled = self.verbose == 1 and is_terminal(self.stream)
        self.wants_batches = self.bar_enabled
        self._bar: Any = None
        self._first_epoch: int | None = None
        self._started = 0.0
        self._next_refresh = 0.0
        self._step = 0

    def _title(self, epoch: int) -> str:
        if self._first_epoch is None:
            self._first_epoch = epoch
        if self.label != "Epoch":
            return self.label
        return f"Epoch {epoch}/{self._first_epoch + self.epochs - 1}"

    def epoch_begin(self, epoch: int) -> None:
        title = self._title(epoch)
        self._started = time.perf_counter()
        self._step = 0
        if self.bar_enabled:
            from tqdm import tqdm

            fixed = _fixed_size(self.stream)
            self._bar = tqdm(
                total=self.steps,
                desc=title,
                unit="batch",
                file=self.stream,
                leave=True,
                dynamic_ncols=fixed is None,
                ncols=fixed and fixed[0],
                nrows=fixed and fixed[1],
                mininterval=0,
                miniters=1,
                smoothing=0.1,
            )
            self._next_refresh = time.monotonic() + REFRESH_SECONDS

    def batch_end(self, step: int, logs: Mapping[str, float]) -> None:
        self._step = step  # where the epoch's final line ends if a callback stops it early
        if self._bar is None:
            return
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_SECONDS
        self._bar.set_postfix_str(format_logs(logs, ", "), refresh=False)
        self._bar.update(step - self._bar.n)

    def epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        if self._bar is not None:
            # The live bar is trimmed to the terminal's width; the epoch's final line (with the validation
            # figures) is printed once instead, in full, so a narrow terminal wraps it but cuts nothing.
            bar, self._bar = self._bar, None
            elapsed = bar.format_dict["elapsed"]
            bar.leave = False
            bar.close()
            line = bar.format_meter(
                self._step, self.steps or self._step, elapsed, prefix=bar.desc, unit="batch", ascii=bar.ascii,
                postfix=format_logs(logs, ", "), bar_format=FINAL_BAR_FORMAT,
            )  # fmt: skip
            print(line, file=self.stream, flush=True)
            self._learn_steps()
        elif self.verbose:
            title = self._title(epoch)
            elapsed = time.perf_counter() - self._started
            done = self._step or self.steps  # fit calls batch_end wherever a callback could stop the epoch
            count = "" if done is None else f"{done} {'batch' if done == 1 else 'batches'} - "  # None: not counted
            line = f"{title} - {count}{elapsed:.2f}s - {format_logs(logs)}"
            print(line, file=self.stream, flush=True)

    def _learn_steps(self) -> None:
        """An epoch of unknown length ended: its batches are the total of the next (Keras' Progbar learns its
        target so)."""
        if self.steps is None and self._step:
            self.steps = self._step

    def close(self) -> None:
        """Close a bar left open by an exception (an interrupted epoch), keeping what it showed."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = [
    "Progress",
    "SurvivingStream",
    "check_verbose",
    "format_logs",
    "is_terminal",
    "log_once",
    "print_once",
    "prints_here",
]
