"""Progress output: a bar on a terminal, plain lines elsewhere (no \\r or ANSI codes), none at verbose=0."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import Callback, Sequential
from onnxtrain import progress as progress_module
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input
from onnxtrain.progress import Progress, check_verbose, is_terminal

CONTROL = ("\r", "\x1b")


class TerminalStream(io.StringIO):
    """A StringIO that claims to be a terminal (it has no fileno, so the bar uses a fixed 100x24 size)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def fit_output(monkeypatch):
    """fit a tiny model (3 epochs of 6 batches, validated) with `verbose`, writing to `stream`."""

    def run(verbose: int, stream: io.StringIO, evaluate: bool = False, callbacks=()) -> str:
        original = Progress.__init__

        def init(self, verbose, steps, epochs, stream_=None, label="Epoch"):
            original(self, verbose, steps, epochs, stream=stream, label=label)

        monkeypatch.setattr(Progress, "__init__", init)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(48, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        with Sequential.of(Input(4), Dense(3, activation="linear"), seed=0) as model:
            model.compile(metric="accuracy")
            model.fit(x, y, epochs=3, batch_size=8, validation=(x[:8], y[:8]), verbose=verbose, callbacks=callbacks)
            if evaluate:
                model.evaluate(x, y, batch_size=8, verbose=verbose)
        return stream.getvalue()

    return run


def test_verbose_0_prints_nothing(fit_output, capsys):
    assert fit_output(0, TerminalStream()) == ""
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("verbose", [1, 2])
def test_not_a_terminal_gets_one_plain_line_per_epoch(fit_output, verbose):
    text = fit_output(verbose, io.StringIO(), evaluate=True)
    assert not any(c in text for c in CONTROL)
    lines = text.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3", "Evaluate"]
    assert all("6 batches" in line for line in lines[:3])
    assert all(k in lines[0] for k in ("loss: ", "accuracy: ", "val_loss: ", "val_accuracy: "))


def test_verbose_2_prints_plain_lines_on_a_terminal_too(fit_output):
    text = fit_output(2, TerminalStream())
    assert not any(c in text for c in CONTROL) and len(text.splitlines()) == 3


def test_terminal_gets_a_bar_and_a_full_final_line_per_epoch(fit_output):
    text = fit_output(1, TerminalStream())
    assert "\r" in text and "\x1b" not in text
    final = [line for line in text.replace("\r", "\n").splitlines() if "val_accuracy" in line]
    assert [line.split(":")[0] for line in final] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("100%|" in line and "6/6" in line and "val_loss: " in line for line in final)
    assert len(final[0]) > 100  # printed in full, not trimmed to the 100-column fallback width


def test_an_epoch_stopped_early_ends_its_bar_where_it_stopped(fit_output):
    class StopAtBatch2(Callback):
        def on_batch_end(self, batch, logs=None):
            self.model.stop_training = batch == 2

    text = fit_output(1, TerminalStream(), callbacks=[StopAtBatch2()])
    final = [line for line in text.replace("\r", "\n").splitlines() if "val_accuracy" in line]
    assert len(final) == 1 and " 2/6 [" in final[0] and "33%|" in final[0]


@pytest.mark.parametrize("verbose", [1, 2])
def test_an_epoch_stopped_early_reports_the_batches_that_ran_in_plain_lines(fit_output, verbose):
    class StopAtBatch2(Callback):
        def on_batch_end(self, batch, logs=None):
            self.model.stop_training = batch == 2

    lines = fit_output(verbose, io.StringIO(), callbacks=[StopAtBatch2()]).splitlines()
    assert len(lines) == 1 and " - 2 batches - " in lines[0], lines  # of 6: the epoch stopped after the 2nd


def test_epochs_are_shown_with_their_model_wide_numbers():
    stream = io.StringIO()
    progress = Progress(2, steps=1, epochs=2, stream=stream)
    for epoch in (3, 4):
        progress.epoch_begin(epoch)
        progress.epoch_end(epoch, {"loss": 0.5})
    progress.close()
    assert [line.split(" - ")[:2] for line in stream.getvalue().splitlines()] == [
        ["Epoch 3/4", "1 batch"],
        ["Epoch 4/4", "1 batch"],
    ]


def test_bar_redraws_at_most_every_refresh_interval(monkeypatch):
    clock = iter(np.arange(0, 100, 0.01))  # each batch_end reads the clock once: 10 ms per batch
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))
    stream = TerminalStream()
    progress = Progress(1, steps=1000, epochs=1, stream=stream)
    assert progress.wants_batches
    progress.epoch_begin(1)
    before = stream.getvalue().count("\r")
    for step in range(1, 1001):
        progress.batch_end(step, {"loss": 1.0 / step})
    redraws = stream.getvalue().count("\r") - before
    progress.epoch_end(1, {"loss": 0.001})
    assert 50 <= redraws <= 110  # 10 s of batches at one redraw per 0.1 s, not 1000 redraws


def test_plain_output_asks_for_no_per_batch_work():
    assert not Progress(1, steps=10, epochs=1, stream=io.StringIO()).wants_batches
    assert not Progress(0, steps=10, epochs=1, stream=TerminalStream()).wants_batches


def test_dumb_terminal_and_closed_streams_count_as_not_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(TerminalStream())
    monkeypatch.setenv("TERM", "xterm")
    assert is_terminal(TerminalStream())
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)


@pytest.mark.parametrize("verbose", [3, -1, "1", "AUTO", 1.0, None])
def test_bad_verbose_is_refused(verbose):
    with pytest.raises(InvalidArgumentError, match=r"verbose expects 0 .*, 1 .* or 2 .*, or 'auto' \(Keras' default"):
        Progress(verbose, steps=1, epochs=1)


@pytest.mark.parametrize(("verbose", "level"), [("auto", 1), (True, 1), (False, 0), (2, 2)])
def test_keras_auto_and_bools_are_verbose_levels(verbose, level):
    assert check_verbose(verbose) == level
    assert Progress(verbose, steps=1, epochs=1).verbose == level


@pytest.mark.slow
def test_piped_stdout_of_a_real_process_has_no_bar_characters(tmp_path):
    script = textwrap.dedent(
        """
        import numpy as np
        from onnxtrain import Callback, Sequential
        from onnxtrain.layers import Dense, Input
        x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        with Sequential.of(Input(4), Dense(2), seed=0) as model:
            model.compile(metric="accuracy")
            model.fit(x, y, epochs=2, batch_size=4, validation_split=0.25, verbose=1)
            model.evaluate(x, y, verbose=1)
        """
    )
    env = {**os.environ, "TERM": "xterm-256color"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    assert not any(c in result.stdout + result.stderr for c in CONTROL)
    assert [line.split(" - ")[0] for line in result.stdout.splitlines()] == [
        "Epoch 1/2",
        "Epoch 2/2",
        "Evaluate",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [1, 2])
def test_fit_goes_on_when_the_reader_of_its_stdout_goes_away(tmp_path, verbose):
    """`python train.py | head -1`: the first print finds no reader (EPIPE). fit must end and return its History."""
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import numpy as np
            from onnxtrain import Sequential
            from onnxtrain.callbacks import EarlyStopping
            from onnxtrain.layers import Dense, Input

            x = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
            y = (x[:, 0] > 0).astype(np.int64)
            with Sequential.of(Input(3), Dense(2, activation="linear"), seed=0) as model:
                model.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
                stop = EarlyStopping(monitor="loss", patience=0, min_delta=10.0, verbose=1)  # prints as it stops
                history = model.fit(x, y, epochs=3, batch_size=10, verbose={verbose}, callbacks=[stop])
            sys.stderr.write(f"epochs {{len(history.history['loss'])}}\\n")
            """
        )
    )
    read, write = os.pipe()
    os.close(read)  # the reader is gone before fit prints anything
    try:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.run(
            [sys.executable, str(script)], stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=120
        )
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        "onnxtrain: note: the output stream was closed (its reader went away); fit goes on without printing\nepochs 2\n"
    )
