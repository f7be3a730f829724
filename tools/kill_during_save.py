"""Kill -9 a process that trains and saves a real model; after every kill the model must load, old or new.

    python tools/kill_during_save.py --kills 300 [--seed 0] [--no-exchange] [--json]

Each forked child loads the model directory with `load_model` (compiled, with the saved optimizer state; the
very first child creates and saves the model), then loops: fit one step, announce the SHA-256 of the files it
is about to write, `model.save(directory, OVERRIDE, save_optimizer_state=True)`, announce "saved". The parent
SIGKILLs it at a random moment and checks that the directory holds exactly the last completed version or the
one being written (never a mix of the two, never a partial file) and that `load_model(compile=False)` reads
it; the next child's full `load_model` (ORT checkpoint and optimizer state) is the second check. The save lock's
file may be left only by a child killed while holding the lock, and the parent's load must remove it. The parent
never imports onnxruntime, so forking it is safe. tests/test_model_io.py runs a short version.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import select
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    from onnxtrain import saving
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from onnxtrain import saving

from onnxtrain import Sequential, load_model, model_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_save_stress import lock_file, without_exchange

from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.optimizers import Adam

SAVED_FILES = (model_files.MODEL_FILE, model_files.CONFIG_FILE, model_files.CHECKPOINT_FILE)


@dataclass
class KillReport:
    kills: int = 0
    killed_mid_save: int = 0  # the child had announced a save it had not finished
    left_scratch: int = 0  # the kill left scratch entries (or the lock file) behind: the file layer was cut part-way
    restored: int = 0  # the loader finished an interrupted directory swap (rename-aside fallback only)
    found_old: int = 0  # the directory held the last completed version
    found_new: int = 0  # ... the version being written when the kill came
    saves_completed: int = 0
    reloads: int = 0  # children that loaded, compiled and resumed the model a kill had left
    unloadable: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "problems")


def digest(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest()[:16] for name, data in sorted(files.items())}


def directory_digest(directory: Path) -> dict[str, str]:
    with saving.reading_model(directory) as paths:
        return digest({name: path.read_bytes() for name, path in paths.items()})


def new_model(seed: int) -> Sequential:
    model = Sequential.of(Input(6, 6, 1), Flatten(), Dense(16), Dense(4, activation="linear"), seed=seed)
    model.compile(optimizer=Adam(learning_rate=0.01), loss="softmax_cross_entropy_with_logits", threads=1)
    return model


def _child(directory: Path, write_fd: int, seed: int) -> None:
    """Runs in the forked child: load (or create), then train one step and save, forever."""
    code = 0
    out = os.fdopen(write_fd, "w", buffering=1)  # line-buffered: one write(2) per event, atomic in a pipe

    def send(**event: Any) -> None:
        out.write(json.dumps(event) + "\n")

    try:
        try:
            if directory.exists():
                model = load_model(directory, threads=1)
            else:
                model = new_model(seed)
                model.save(directory, save_optimizer_state=True)
            loaded = directory_digest(directory)
        except Exception as e:
            send(event="load_failed", error=f"{type(e).__name__}: {e}")
            code = 3
            return
        send(event="ready", hashes=loaded)
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(32, 6, 6, 1)).astype(np.float32)
        y = rng.integers(0, 4, size=32)
        while True:
            model.fit((x, y), epochs=1, batch_size=32, verbose=0)
            files = model_files.saved_files(model, model._trainer, save_optimizer_state=True)
            send(event="saving", hashes=digest(files))
            model.save(directory, saving.WritingMode.OVERRIDE, save_optimizer_state=True)
            send(event="saved")
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            out.flush()
        os._exit(code)


class _Child:
    def __init__(self, directory: Path, seed: int):
        read_fd, write_fd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_fd)
            _child(directory, write_fd, seed)
        os.close(write_fd)
        self._fd = read_fd
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def read(self, until: float, stop_on_ready: bool = False) -> bool:
        """Collect events until the deadline, EOF or (optionally) a ready/load_failed event. False at EOF."""
        while True:
            if stop_on_ready and any(e["event"] in ("ready", "load_failed") for e in self.events):
                return True
            left = until - time.monotonic()
            if left <= 0:
                return True
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                return True
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return False
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            self.events += [json.loads(line) for line in lines if line]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        while self.read(time.monotonic() + 5):  # drain to EOF; a torn last line stays in the buffer
            pass
        os.close(self._fd)


def scratch_entries(directory: Path) -> list[str]:
    """Our scratch entries beside and inside `directory`, its lock file included (see kill_save_stress: the
    lock file may outlive only a child killed while holding the lock, until the next save or load)."""
    found = []
    for folder in (directory.parent, directory):
        with contextlib.suppress(FileNotFoundError):
            found += [n for n in os.listdir(folder) if n.startswith(saving.SCRATCH_PREFIX)]
    return found


def run_kill_loop(directory: Path, kills: int, seed: int = 0, window: float = 0.05) -> KillReport:
    """SIGKILL `kills` saving children at random moments, checking the directory after each kill."""
    rng = random.Random(seed)
    report = KillReport()
    verified: dict[str, str] | None = None  # what the directory held after the last kill
    for round_index in range(kills + 1):  # the last child only proves that the last directory loads
        child = _Child(directory, seed)
        alive = child.read(time.monotonic() + 120, stop_on_ready=True)
        ready = next((e for e in child.events if e["event"] in ("ready", "load_failed")), None)
        if ready is None or ready["event"] == "load_failed":
            child.kill()
            report.unloadable += 1
            why = ready["error"] if ready else f"the child died before loading (alive={alive})"
            report.problems.append(f"round {round_index}: load_model failed: {why}")
            break
        if verified is not None:
            report.reloads += 1
            if ready["hashes"] != verified:
                report.problems.append(f"round {round_index}: the child loaded other files than were verified")
        if round_index == kills:
            child.kill()
            break
        child.read(time.monotonic() + rng.uniform(0.0, window))
        child.kill()
        report.kills += 1
        complete, in_flight, saves = ready["hashes"], None, 0
        for event in child.events:
            if event["event"] == "saving":
                in_flight = event["hashes"]
            elif event["event"] == "saved":
                complete, in_flight, saves = in_flight, None, saves + 1
        report.saves_completed += saves
        report.killed_mid_save += in_flight is not None
        window *= 1.25 if saves == 0 else 0.8 if saves > 2 else 1.0  # aim at one or two saves per child
        report.left_scratch += bool(scratch_entries(directory))
        missing_before = not directory.exists()
        try:
            load_model(directory, compile=False)
            found = directory_digest(directory)
        except Exception as e:
            report.unloadable += 1
            report.problems.append(f"round {round_index}: load_model(compile=False) failed: {e}")
            break
        report.restored += missing_before
        if lock_file(directory) in scratch_entries(directory):  # both loads took the lock, and released it
            report.problems.append(f"round {round_index}: the save lock's file outlived the loads after the kill")
        if found == complete:
            report.found_old += 1
        elif found == in_flight:
            report.found_new += 1
        else:
            report.unloadable += 1
            report.problems.append(f"round {round_index}: mixed or unknown files {found}; expected {complete}")
            break
        verified = found
    return report


@contextlib.contextmanager
def naive_writes() -> Any:
    """Replace the crash-safe file layer by plain in-place writes, to show that the check catches them."""

    def write_in_place(directory: Any, files: Any, writing_mode: Any = None, **options: Any) -> Path:
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (target / name).write_bytes(data)
        return target

    original = saving.save_files
    saving.save_files = write_in_place
    model_files.save_files = write_in_place
    try:
        yield
    finally:
        saving.save_files = model_files.save_files = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-exchange", action="store_true", help="use the rename-aside fallback")
    parser.add_argument("--dir", type=Path, default=None, help="where to save (default: a temporary folder)")
    parser.add_argument("--naive-writes", action="store_true", help="save unsafely: the check must fail")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="onnxtrain-kill-") as scratch:
        directory = (args.dir or Path(scratch)) / "model"
        started = time.perf_counter()
        with (
            without_exchange() if args.no_exchange else contextlib.nullcontext(),
            naive_writes() if args.naive_writes else contextlib.nullcontext(),
        ):
            report = run_kill_loop(directory, args.kills, seed=args.seed)
        elapsed = time.perf_counter() - started
    swap = "rename-aside fallback" if args.no_exchange else "renameat2 exchange"
    swap = "naive in-place writes" if args.naive_writes else swap
    if args.json:
        print(json.dumps({**asdict(report), "swap": swap, "seed": args.seed, "elapsed_s": round(elapsed, 1)}))
    else:
        print(f"swap={swap} seed={args.seed} {report.summary()}")
        print(f"elapsed={elapsed:.1f}s")
        for problem in report.problems[:20]:
            print("PROBLEM:", problem)
    return 1 if report.unloadable or report.problems or report.kills < args.kills else 0


if __name__ == "__main__":
    sys.exit(main())
