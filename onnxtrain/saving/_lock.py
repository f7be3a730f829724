"""The save lock of a model directory: a `.onnxtrain-lock-<name>` file beside it, flocked exclusively by a save and
shared by a load, that exists only while one of them uses it.

Why a file per target, unlinked on release: a file never deleted piles up beside every directory ever saved
(`epoch-{epoch}` checkpoints); one lock per parent folder (a file, or a flock of the folder itself) would make the
saves of unrelated directories in one folder wait for each other, and a save of a neighbour inside a
`reading_model` block would wait forever. Unlinking a lock file races with its users, so both ends follow the
classic protocol:

- acquire: open (creating) the file, flock it, then check that the path still names the file locked (fstat vs
  stat); if not, its last holder unlinked it meanwhile: close and start again on the file now at the path.
- release: try to make the lock exclusive without waiting (a load's shared lock is converted); who gets it is the
  only holder, and unlinks the file while the path still names it. Who does not (another load still reads) leaves
  the file to that holder's release.

A file is only unlinked by a holder of its exclusive lock, so every holder that passed the check holds the file
the path names: mutual exclusion holds as with a file never deleted (not with an onnxtrain older than this
protocol, which does not check). A killed holder's lock is released by the kernel; its file stays until the next
save or load of that directory, or a save beside it (`remove_released_locks`), removes it. Where the file cannot
be created (a read-only folder), a load takes no lock: nobody can be saving there either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from onnxtrain.saving._scratch import SCRATCH_PREFIX, tag

try:
    import fcntl
except ImportError:  # Windows: saves stay atomic per file and per swap, but are not serialised
    fcntl = None  # type: ignore[assignment]

LOCK_PREFIX = f"{SCRATCH_PREFIX}lock-"


def lock_path(target: Path) -> Path:
    """The lock file of the directory `target`: `.onnxtrain-lock-<name>` beside it."""
    return target.parent / f"{LOCK_PREFIX}{tag(target.name)}"


@contextlib.contextmanager
def locked(target: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the save lock of `target` for the block: exclusive for a save, shared for a load.

    The lock file exists only while the lock is held (see the module docstring).

    Raises:
        OSError: `exclusive` and the lock file cannot be created (a read-only folder...). Where a shared lock's
            file cannot be created, the block runs without a lock.
    """
    if fcntl is None:
        yield
        return
    path = lock_path(target)
    descriptor = _acquire(path, exclusive)
    try:
        yield
    finally:
        if descriptor is not None:
            _release(path, descriptor)


def remove_released_locks(folder: Path) -> None:
    """Remove the lock files in `folder` that no one holds: those of killed saves and loads of other directories,
    which would otherwise stay until those are saved or loaded again. One held, even by this process, stays."""
    if fcntl is None:
        return
    try:
        names = [name for name in os.listdir(folder) if name.startswith(LOCK_PREFIX)]
    except OSError:
        return
    for name in names:
        try:
            descriptor = os.open(folder / name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # gone meanwhile, or unreadable
            continue
        _release(folder / name, descriptor)  # unlinks it only if no one holds it


def _acquire(path: Path, exclusive: bool) -> int | None:
    """flock the file at `path`, the one it names once locked; None where a shared lock's file cannot be made."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            if exclusive:
                raise
            return None  # a read-only location: nobody can be saving there either
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if _names(path, descriptor):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)  # unlinked by its last holder while we waited: lock the one at the path now


def _release(path: Path, descriptor: int) -> None:
    """Unlink the lock file if no one else holds it, then let go of it."""
    try:
        # A no-op for an exclusive lock; a shared one is converted, or given up where another load holds it too.
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _names(path, descriptor):  # not if it was unlinked (and made anew) since it was opened
            os.unlink(path)
    except OSError:  # BlockingIOError: another holder, whose release unlinks it; PermissionError: a read-only folder
        pass
    finally:
        os.close(descriptor)


def _names(path: Path, descriptor: int) -> bool:
    """Whether `path` still names the file open as `descriptor`."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False
