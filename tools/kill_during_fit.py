"""Kill -9 a training process that checkpoints every epoch, and race two processes saving to one directory.

    python tools/kill_during_fit.py --kills 50 [--epochs N] [--seed 0] [--json]
    python tools/kill_during_fit.py --concurrent-rounds 20 [--saves 15] [--json]

Kill during fit: a reference child trains `--epochs` epochs uninterrupted. Then children train the same model
with `ModelCheckpoint(save_optimizer_state=True)` into one directory, each resuming from the checkpoint the
previous one left; the parent SIGKILLs each child at a random moment of an epoch (which may fall inside the
checkpoint save). After every kill the checkpoint must load, hold at least every epoch the child reported
saved, and lose at most the epoch in progress. A last child finishes the run, whose weights must equal the
reference's: resuming loses nothing but the interrupted epoch's work.

Concurrent saves: two children, each with its own model, save to the same directory over and over
(OVERRIDE, then APPEND). The parent reads the directory while they run and at the end: every read must be
one child's complete file set (never a mix, never a partial file) and load with `load_model`.

Children are started with subprocess (not fork), so the parent may import onnxruntime. Exits 1 on any
lost model. tests/test_reliability_faults.py runs short versions of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:
    import onnxtrain  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from onnxtrain import load_model, saving  # noqa: E402
from onnxtrain.errors import ModelFileError  # noqa: E402

CHECKPOINT_DIR = "checkpoint-model"

# --- children ------------------------------------------------------------------------------------------


def _say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def _new_model(seed: int, units: int = 32) -> Any:
    from onnxtrain import Sequential
    from onnxtrain.layers import Dense, Flatten, Input
    from onnxtrain.optimizers import Adam

    model = Sequential.of(Input(8, 8, 1), Flatten(), Dense(units), Dense(4, activation="linear"), seed=seed)
    model.compile(optimizer=Adam(learning_rate=0.003), loss="softmax_cross_entropy_with_logits", threads=1)
    return model


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1), dtype=np.float32)
    y = (x.reshape(n, -1)[:, :4].argmax(axis=1)).astype(np.int64)
    return x, y


def child_fit(directory: Path, epochs: int, seed: int, examples: int) -> None:
    """Train to `epochs` epochs in total, resuming from directory/checkpoint-model when it exists."""
    from onnxtrain.callbacks import Callback, ModelCheckpoint

    class Announce(Callback):
        """Says "begin" at the start of each epoch, or `event` ("saving", "saved") at its end."""

        def __init__(self, event: str):
            self.event = event

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.event == "begin":
                _say(event="begin", epoch=epoch, time=time.monotonic())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.event != "begin":
                _say(event=self.event, epoch=epoch, time=time.monotonic())

    target = directory / CHECKPOINT_DIR
    try:
        model = load_model(target)
    except ModelFileError:
        if target.exists():
            raise  # a checkpoint that exists must load: never silently start over
        model = _new_model(seed)
    done = model._trainer.epochs_trained
    _say(event="resumed", epochs_trained=done)
    if done < epochs:
        x, y = _data(seed, examples)
        callbacks = [
            Announce("begin"),
            Announce("saving"),
            ModelCheckpoint(target, monitor="loss", save_optimizer_state=True),
            Announce("saved"),
        ]
        model.fit((x, y), epochs=epochs - done, batch_size=8, verbose=0, callbacks=callbacks)
    _say(event="done", epochs_trained=model._trainer.epochs_trained)
    model.close()


def child_save(directory: Path, seed: int, saves: int, mode: str) -> None:
    """Save one model (its own seed and class names) to `directory` `saves` times."""
    from onnxtrain import model_files

    model = _new_model(seed, units=8 + seed % 7)
    model.class_names = (f"writer-{seed}", "b", "c", "d")
    _say(event="files", digest=digest(model_files.saved_files(model, model._trainer, save_optimizer_state=True)))
    sys.stdin.readline()  # wait for "go", so that both writers save at the same time
    for _ in range(saves):
        model.save(directory, writing_mode=mode, save_optimizer_state=True)
    _say(event="done")
    model.close()


# --- parent --------------------------------------------------------------------------------------------


def digest(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest()[:16] for name, data in sorted(files.items())}


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _events(process: subprocess.Popen[str], until: float | None, stop_at: str | None = None) -> list[dict]:
    """Read the child's events until the deadline (monotonic) or until event `stop_at` (or its exit).

    Reads the pipe unbuffered: a line left in a reader's buffer would be invisible to select and arrive late.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    pending = _PENDING.setdefault(process.pid, bytearray())
    events = []
    while True:
        if b"\n" not in pending:
            timeout = None if until is None else max(0.0, until - time.monotonic())
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return events
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return events
            pending += chunk
            continue
        line, _, rest = bytes(pending).partition(b"\n")
        pending[:] = rest
        events.append(json.loads(line))
        if stop_at is not None and events[-1]["event"] == stop_at:
            return events


_PENDING: dict[int, bytearray] = {}  # bytes read past the last complete line, per child


def _weights(directory: Path) -> dict[str, np.ndarray]:
    with load_model(directory, compile=False) as model:
        return model.get_weights()


@dataclass
class FitKillReport:
    kills: int = 0
    killed_mid_epoch: int = 0  # the child had begun an epoch it had not reported saved
    killed_mid_save: int = 0  # ... and was inside ModelCheckpoint's save of it
    resumes: int = 0  # checkpoints loaded (compiled, with the optimizer state) after a kill
    models_lost: int = 0  # a checkpoint that did not load, or lost an epoch reported saved
    max_epochs_lost: int = 0  # epochs begun but not in the checkpoint after a kill (must be <= 1)
    restarts_from_scratch: int = 0  # kills before the first checkpoint existed
    final_matches_reference: bool = False
    max_weight_difference: float = 0.0
    problems: list[str] = field(default_factory=list)


def kill_during_fit(kills: int, epochs: int, seed: int, examples: int, work: Path) -> FitKillReport:
    report = FitKillReport()
    rng = random.Random(seed)
    reference_dir, run_dir = work / "reference", work / "run"
    reference_dir.mkdir()
    run_dir.mkdir()
    common = ["--epochs", str(epochs), "--seed", str(seed), "--examples", str(examples)]

    reference = _spawn("--child-fit", str(reference_dir), *common)
    events = _events(reference, None, stop_at="done")
    reference.wait()
    begins = [e["time"] for e in events if e["event"] == "begin"]
    if reference.returncode != 0 or len(begins) != epochs:
        report.problems.append(
            f"the reference run failed: {reference.stderr.read()[-2000:] if reference.stderr else ''}"
        )
        return report
    saved_times = [e["time"] for e in events if e["event"] == "saved"]
    epoch_seconds = max((saved_times[-1] - begins[0]) / epochs, 0.05)

    finished = False
    while report.kills < kills and not finished:
        child = _spawn("--child-fit", str(run_dir), *common)
        events = _events(child, time.monotonic() + 120, stop_at="begin")
        if not events or events[-1]["event"] != "begin":
            finished = any(e["event"] == "done" for e in events)
            child.wait()
            if not finished:
                report.problems.append(f"a child failed before training: {child.stderr.read()[-2000:]}")
                return report
            break
        # Anywhere in the next ~1.3 epochs: mid-epoch, inside the checkpoint save, or just after it.
        events += _events(child, time.monotonic() + rng.uniform(0, 1.3 * epoch_seconds))
        child.send_signal(signal.SIGKILL)
        events += _events(child, None)  # whatever it wrote before dying
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
        if any(e["event"] == "done" for e in events):
            finished = True
            break
        report.kills += 1
        begun = max((e["epoch"] for e in events if e["event"] == "begin"), default=0)
        saved = max((e["epoch"] for e in events if e["event"] == "saved"), default=0)
        saving_epoch = max((e["epoch"] for e in events if e["event"] == "saving"), default=0)
        report.killed_mid_epoch += begun > saved
        report.killed_mid_save += saving_epoch > saved
        if not check_after_kill(run_dir / CHECKPOINT_DIR, begun, saved, report):
            return report

    if not finished:
        last = _spawn("--child-fit", str(run_dir), *common)
        events = _events(last, time.monotonic() + 600, stop_at="done")
        last.wait()
        if not events or events[-1]["event"] != "done":
            report.problems.append(f"the last child failed: {last.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            return report
    expected, found = _weights(reference_dir / CHECKPOINT_DIR), _weights(run_dir / CHECKPOINT_DIR)
    report.max_weight_difference = float(max(np.abs(expected[k] - found[k]).max() for k in expected))
    report.final_matches_reference = report.max_weight_difference <= 1e-5
    if not report.final_matches_reference:
        report.problems.append(f"the resumed run ends {report.max_weight_difference:.3g} away from the reference")
    return report


def check_after_kill(checkpoint: Path, begun: int, saved: int, report: FitKillReport) -> bool:
    """Load what a kill left: it must hold every epoch reported saved and lack at most the one in progress.

    Returns False when the checkpoint does not load (the run cannot go on).
    """
    if not checkpoint.exists() and not saving.recover_interrupted_save(checkpoint):
        if saved:
            report.models_lost += 1
            report.problems.append(f"kill {report.kills}: epoch {saved} was reported saved, no checkpoint")
        report.restarts_from_scratch += 1
        report.max_epochs_lost = max(report.max_epochs_lost, begun)
        return True
    try:
        with load_model(checkpoint) as model:
            trained = model._trainer.epochs_trained
    except Exception as e:
        report.models_lost += 1
        report.problems.append(f"kill {report.kills}: the checkpoint does not load: {type(e).__name__}: {e}")
        return False
    report.resumes += 1
    if trained < saved:
        report.models_lost += 1
        report.problems.append(f"kill {report.kills}: epoch {saved} was reported saved, the checkpoint has {trained}")
    report.max_epochs_lost = max(report.max_epochs_lost, begun - trained)
    return True


@dataclass
class ConcurrentReport:
    rounds: int = 0
    saves: int = 0  # completed saves, all writers together
    reads: int = 0  # reads of the directory while the writers ran, and at the end
    mixed_or_partial: int = 0  # reads that were neither writer's complete file set
    unloadable: int = 0  # final directories load_model could not load
    models_lost: int = 0
    problems: list[str] = field(default_factory=list)


def concurrent_saves(rounds: int, saves: int, work: Path) -> ConcurrentReport:
    report = ConcurrentReport()
    for round_index in range(rounds):
        mode = "override" if round_index % 2 == 0 else "append"
        directory = work / f"race-{round_index}"
        writers = [
            _spawn("--child-save", str(directory), "--seed", str(seed), "--saves", str(saves), "--mode", mode)
            for seed in (round_index * 2 + 1, round_index * 2 + 2)
        ]
        versions = []
        for writer in writers:
            events = _events(writer, time.monotonic() + 120, stop_at="files")
            if not events:
                report.problems.append(f"a writer failed: {writer.stderr.read()[-2000:]}")  # type: ignore[union-attr]
                return report
            versions.append(events[-1]["digest"])
        for writer in writers:
            writer.stdin.write("go\n")  # type: ignore[union-attr]
            writer.stdin.flush()  # type: ignore[union-attr]
        while any(w.poll() is None for w in writers):
            if directory.exists():
                _check_read(directory, versions, report)
            time.sleep(0.002)
        for writer in writers:
            writer.wait()
            if writer.returncode != 0:
                report.problems.append(f"a writer failed: {writer.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            writer.stdout.close()  # type: ignore[union-attr]
            writer.stderr.close()  # type: ignore[union-attr]
        report.saves += 2 * saves
        report.rounds += 1
        _check_read(directory, versions, report)
        try:
            with load_model(directory):
                pass
        except Exception as e:
            report.unloadable += 1
            report.problems.append(f"round {round_index}: the final directory does not load: {e}")
    report.models_lost = report.mixed_or_partial + report.unloadable
    return report


def _check_read(directory: Path, versions: list[dict[str, str]], report: ConcurrentReport) -> None:
    try:
        with saving.reading_model(directory) as files:
            found = digest({name: path.read_bytes() for name, path in files.items()})
    except ModelFileError:
        return  # not created yet
    report.reads += 1
    if found not in versions:
        report.mixed_or_partial += 1
        report.problems.append(f"a read found a mix or a partial file: {found}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs during fit")
    parser.add_argument("--epochs", type=int, help="epochs of the run (default: enough for the kills, >= 12)")
    parser.add_argument("--examples", type=int, default=3000, help="training examples (sets the epoch length)")
    parser.add_argument("--concurrent-rounds", type=int, default=0, help="rounds of two racing savers")
    parser.add_argument("--saves", type=int, default=15, help="saves per writer and round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    parser.add_argument("--child-fit", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-save", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="override", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs is None:  # a child gains at most one epoch before its kill, often none
        args.epochs = max(12, args.kills // 2)
    if args.child_fit:
        child_fit(args.child_fit, args.epochs, args.seed, args.examples)
        return 0
    if args.child_save:
        child_save(args.child_save, args.seed, args.saves, args.mode)
        return 0
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="onnxtrain-kill-fit-") as tmp:
        if args.kills:
            fit = kill_during_fit(args.kills, args.epochs, args.seed, args.examples, Path(tmp))
            figures["kill_during_fit"] = asdict(fit)
            print(
                f"kill -9 during fit: {fit.kills} kills ({fit.killed_mid_epoch} mid-epoch, {fit.killed_mid_save} "
                f"inside the checkpoint save, "
                f"{fit.restarts_from_scratch} before the first checkpoint), {fit.resumes} resumes, "
                f"models lost {fit.models_lost}, at most {fit.max_epochs_lost} epoch(s) lost, final weights "
                f"{'equal' if fit.final_matches_reference else 'DIFFER FROM'} the uninterrupted run "
                f"(max difference {fit.max_weight_difference:.2g})"
            )
        if args.concurrent_rounds:
            race = concurrent_saves(args.concurrent_rounds, args.saves, Path(tmp))
            figures["concurrent_saves"] = asdict(race)
            print(
                f"concurrent saves: {race.rounds} rounds of 2 writers, {race.saves} saves, {race.reads} reads, "
                f"mixed or partial {race.mixed_or_partial}, unloadable {race.unloadable}, "
                f"models lost {race.models_lost}"
            )
    problems = [p for report in figures.values() for p in report["problems"]]
    for problem in problems:
        print("PROBLEM:", problem)
    if args.json:
        print(json.dumps(figures))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
