"""Kill -9 stress run of onnxtrain.saving: SIGKILL a process that keeps saving, and load after every kill.

    python tools/kill_save_stress.py --kills 500 [--mode override|append] [--no-exchange] [--seed 0]

A forked child saves two distinct complete file sets in turn (OVERRIDE: three files whose contents all carry
a version tag, with one file name differing; APPEND: three such files replaced in a directory that keeps a
fourth). The parent kills it at a random moment, then loads the directory the way a loader does. Every load must
find one complete version: no missing file, no mix of versions, no partial file. The save lock's file may outlive
only a child killed while holding the lock, and only until that load; after a final clean save no scratch entry
is left, lock files included. Exits 1 when any load fails or any of this does not hold.
tests/test_saving.py runs a short version of the same loop.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import mmap
import os
import random
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    from onnxtrain import saving
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from onnxtrain import saving

from onnxtrain.errors import ModelFileError
from onnxtrain.saving import _lock, _writing

FILE_SIZE = 256 * 1024


@dataclass(frozen=True)
class Scenario:
    mode: saving.WritingMode
    saves: tuple[dict[str, bytes], ...]  # what the child saves, alternately
    loadable: tuple[dict[str, bytes], ...]  # what a loader may find: old or new, complete


@dataclass
class KillReport:
    kills: int = 0
    interrupted: int = 0  # kills that left scratch entries behind: a save killed part-way
    restored: int = 0  # kills after which the loader finished a save: a directory swap, or an APPEND's renames
    killed_holding_lock: int = 0  # kills that left the save lock's file: the child died holding the lock
    saves_completed: int = 0
    unloadable: int = 0
    versions_found: list[int] = field(default_factory=lambda: [0, 0])
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"kills={self.kills} interrupted_mid_save={self.interrupted} restored={self.restored} "
            f"killed_holding_lock={self.killed_holding_lock} "
            f"saves_completed={self.saves_completed} versions_found={self.versions_found} "
            f"unloadable={self.unloadable}"
        )


def contents(version: str, name: str, size: int = FILE_SIZE) -> bytes:
    """A file whose first and last bytes name its version and file, so mixes and truncation show."""
    tag = f"<{version}:{name}>".encode()
    return tag + random.Random(tag).randbytes(size) + tag


def scenario(mode: str, size: int = FILE_SIZE) -> Scenario:
    if mode == "override":
        names = {
            "A": ("model.onnx", "config.json", "weights.bin"),
            "B": ("model.onnx", "config.json", "opt.bin"),
        }
        sets = tuple({n: contents(v, n, size) for n in names[v]} for v in ("A", "B"))
        return Scenario(saving.WritingMode.OVERRIDE, sets, sets)
    if mode == "append":
        kept = {"notes.txt": contents("C", "notes.txt", size)}
        names = ("model.onnx", "config.json", "weights.bin")
        saves = tuple({n: contents(v, n, size) for n in names} for v in ("A", "B"))
        return Scenario(saving.WritingMode.APPEND, saves, tuple(kept | s for s in saves))
    raise ValueError(f"mode expects 'override' or 'append'. Received: mode={mode!r}")


def load(directory: Path, loadable: tuple[dict[str, bytes], ...]) -> tuple[int | None, str]:
    """Load like a loader does. Returns (index of the version found, "") or (None, what is wrong)."""
    try:
        with saving.reading_model(directory) as paths:
            found = {name: path.read_bytes() for name, path in paths.items()}
    except (OSError, ModelFileError) as e:
        return None, f"unloadable: {e}"
    for index, version in enumerate(loadable):
        if found == version:
            return index, ""
    sizes = {name: (len(data), data[:12]) for name, data in found.items()}
    return None, f"mixed or partial: {sizes}"


def scratch_entries(directory: Path) -> list[str]:
    """Our scratch entries beside and inside `directory`, its lock file included.

    A save's lock file exists only while the lock is held: a release unlinks it. A holder killed with SIGKILL
    leaves it (the kernel drops the flock, not the file), and the next save or load of `directory` unlinks it.
    So right after a kill the lock file may be there (the child died holding it); after the load that follows,
    or after any save or load that ran to its end, it must be gone.
    """
    found = []
    for folder in (directory.parent, directory):
        with contextlib.suppress(FileNotFoundError):
            found += [n for n in os.listdir(folder) if n.startswith(saving.SCRATCH_PREFIX)]
    return found


def lock_file(directory: Path) -> str:
    """The name of `directory`'s save lock file, beside it."""
    return _lock.lock_path(directory).name


@contextlib.contextmanager
def without_exchange() -> Iterator[None]:
    """Make renameat2 look unsupported so saves use the rename-aside fallback (forked children inherit it)."""

    def unsupported(source: Path, target: Path, flags: int) -> None:
        raise OSError(errno.ENOSYS, "renameat2 disabled by kill_save_stress", str(source))

    original = _writing._renameat2
    _writing._renameat2 = unsupported
    try:
        yield
    finally:
        _writing._renameat2 = original


def _spawn_saver(directory: Path, plan: Scenario, first: int, counter: mmap.mmap) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        index = first
        while True:
            saving.save_files(directory, plan.saves[index % 2], plan.mode)
            index += 1
            struct.pack_into("q", counter, 0, struct.unpack_from("q", counter)[0] + 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def run_kill_loop(
    directory: Path, kills: int, *, mode: str = "override", seed: int = 0, size: int = FILE_SIZE
) -> KillReport:
    """Kill a saving child `kills` times at random moments; load after each kill. Returns the figures."""
    plan = scenario(mode, size)
    rng = random.Random(seed)
    report = KillReport()
    saving.save_files(directory, plan.loadable[0], saving.WritingMode.OVERRIDE)
    started = time.perf_counter()
    for index in range(4):
        saving.save_files(directory, plan.saves[index % 2], plan.mode)
    window = 2.5 * (time.perf_counter() - started) / 4
    counter = mmap.mmap(-1, 8)
    for _ in range(kills):
        completed_before = struct.unpack_from("q", counter)[0]
        pid = _spawn_saver(directory, plan, rng.randrange(2), counter)
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        # Aim at about one completed save per child, so the kills land in every phase of a save.
        completed = struct.unpack_from("q", counter)[0] - completed_before
        window *= 1.2 if completed == 0 else 0.8 if completed > 1 else 1.0
        if not os.WIFSIGNALED(status):
            report.problems.append(f"the saver exited by itself (status {status}); see its traceback above")
        report.kills += 1
        left = scratch_entries(directory)
        report.interrupted += any(f"-{pid}-" in name for name in left)
        report.killed_holding_lock += lock_file(directory) in left  # allowed: the load below removes it
        # What the load must finish: a swap (the directory is missing) or an APPEND's renames (a journal inside).
        missing_before = not directory.exists() or any(
            n.startswith(".onnxtrain-commit-") for n in os.listdir(directory)
        )
        found, problem = load(directory, plan.loadable)
        if found is None:
            report.unloadable += 1
            report.problems.append(problem)
        else:
            report.versions_found[found] += 1
            report.restored += missing_before
            if lock_file(directory) in scratch_entries(directory):  # the load took the lock, and released it
                report.problems.append(f"kill {report.kills}: the lock file outlived the load that followed")
    report.saves_completed = struct.unpack_from("q", counter)[0]
    saving.save_files(directory, plan.saves[0], plan.mode)  # the next save cleans up every leftover
    if scratch_entries(directory):  # its own lock file included: it was released
        report.problems.append(f"scratch left after a clean save: {scratch_entries(directory)}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--mode", choices=("override", "append"), default="override")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=FILE_SIZE, help="bytes per file")
    parser.add_argument("--no-exchange", action="store_true", help="use the rename-aside fallback")
    parser.add_argument("--dir", type=Path, default=None, help="where to save (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        directory = (args.dir or Path(scratch)) / "model"
        started = time.perf_counter()
        with without_exchange() if args.no_exchange else contextlib.nullcontext():
            report = run_kill_loop(directory, args.kills, mode=args.mode, seed=args.seed, size=args.size)
        swap = "rename-aside fallback" if args.no_exchange else "renameat2 exchange"
        print(f"mode={args.mode} swap={swap} seed={args.seed} {report.summary()}")
        print(f"elapsed={time.perf_counter() - started:.1f}s")
        for problem in report.problems[:20]:
            print("PROBLEM:", problem)
    return 1 if report.unloadable or report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
