"""Reading a model directory safely: finish a save that was killed part-way, then read with saves held off.

A killed OVERRIDE can leave the complete new directory beside a missing target; a killed APPEND can leave a
committed journal whose renames are not all done. `recover` finishes either (the save lock held) and removes stale
scratch entries; loaders reach it through `resolve_model_directory` and `reading_model`, savers before each save.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelFileError
from onnxtrain.saving._fsync import fsync_directory as _fsync_directory
from onnxtrain.saving._journal import finish_appends
from onnxtrain.saving._lock import locked, remove_released_locks
from onnxtrain.saving._scratch import (
    SCRATCH_PREFIX,
    remove_entry,
    remove_stale,
    remove_stale_beside,
    scratch_entries,
)


def resolve_model_directory(directory: str | os.PathLike[str]) -> Path:
    """Return the absolute model directory, first finishing a save that was killed part-way.

    Raises:
        ModelFileError: the directory is missing, is a file, or cannot be read.
    """
    target = as_path(directory, "directory")
    recover_interrupted_save(target)
    try:
        if not stat.S_ISDIR(os.stat(target).st_mode):
            raise ModelFileError(f"'{target}' is a file, not a model directory. Pass the folder that save() wrote.")
        os.listdir(target)
    except FileNotFoundError as e:
        raise ModelFileError(
            f"No saved model at '{target}': no such directory. Check the path, or save a model there first."
        ) from e
    except PermissionError as e:
        raise ModelFileError(
            f"Cannot read the saved model at '{target}': permission denied. Fix its permissions."
        ) from e
    except OSError as e:
        raise ModelFileError(f"Cannot read the saved model at '{target}': {e.strerror or e}") from e
    return target


def recover_interrupted_save(directory: str | os.PathLike[str]) -> bool:
    """Finish a save that was killed part-way: install the complete new directory that an OVERRIDE killed mid-swap
    left beside a missing target, or finish the renames of an APPEND killed after its commit point.

    Returns:
        True when it finished one. Nothing happens where the folder is read-only.
    """
    target = as_path(directory, "directory")
    try:
        swapping = not os.path.lexists(target) and any(
            entry.kind == "new" for entry in scratch_entries(target.parent, target.name)
        )
        appending = any(entry.kind == "commit" for entry in scratch_entries(target, None))
        if not (swapping or appending):
            return False  # nothing to finish: take no lock, so looking up a mistyped path creates no file
        with locked(target, exclusive=True):
            return recover(target)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False
        raise ModelFileError(f"Could not finish the interrupted save of '{target}': {e}") from e


def list_model_files(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Return {file name: path} for the files of a model directory, sorted, without our scratch files.

    Raises:
        ModelFileError: see `resolve_model_directory`.
    """
    return _list_files(resolve_model_directory(directory))


@contextlib.contextmanager
def reading_model(directory: str | os.PathLike[str]) -> Iterator[dict[str, Path]]:
    """Hold off onnxtrain saves to `directory` while the block reads the files it is given.

    Without it, an OVERRIDE finishing between two reads could hand a loader one old and one new file. Do not
    save to the same directory inside the block: the save would wait for the block forever.

    Example:
        with reading_model("model/") as files:
            config = files["config.json"].read_text()
    """
    target = resolve_model_directory(directory)
    with locked(target, exclusive=False):
        # No recovery in here (it needs the exclusive lock), and no saver can be mid-way: a journal left now is a
        # killed APPEND that resolve_model_directory could not finish (a read-only folder).
        if any(entry.kind == "commit" for entry in scratch_entries(target, None)):
            raise ModelFileError(
                f"'{target}' holds an APPEND save that was interrupted after it was committed, and it could not be "
                "finished here (the folder is read-only). Its files may be a mix of old and new: load it once "
                "where the folder is writable, which finishes the save."
            )
        yield _list_files(target)


def recover(target: Path) -> bool:
    """Lock held: install an orphaned complete "new" directory if the target is gone, finish killed APPEND saves,
    drop garbage. Returns whether it installed or finished anything."""
    stale = [e for e in scratch_entries(target.parent, target.name) if e.is_stale()]
    restored = False
    ready = sorted((e for e in stale if e.kind == "new"), key=lambda e: e.path.lstat().st_mtime)
    if ready and not os.path.lexists(target):
        os.rename(ready[-1].path, target)
        _fsync_directory(target.parent)
        stale.remove(ready[-1])
        restored = True
    for entry in stale:
        remove_entry(entry.path)
    remove_stale_beside(target.parent)  # killed saves of the target's neighbours (a run folder's history.csv...)
    remove_released_locks(target.parent)  # and the lock files their killed saves and loads left
    if target.is_dir():
        restored |= finish_appends(target)  # before the stale scratch files go: a journal names some of them
        remove_stale(target, None)
    return restored


def _list_files(target: Path) -> dict[str, Path]:
    try:
        names = sorted(os.listdir(target))
    except OSError as e:
        raise ModelFileError(f"Cannot read the saved model at '{target}': {e.strerror or e}") from e
    return {n: target / n for n in names if not n.startswith(SCRATCH_PREFIX) and (target / n).is_file()}


def as_path(value: object, argument: str) -> Path:
    """`value`, a path argument named `argument`, as an absolute Path with symlinks resolved."""
    if not isinstance(value, str | os.PathLike):
        raise InvalidTypeError(f"{argument} expects a str or os.PathLike. Received: {argument}={value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise InvalidArgumentError(f"{argument} expects a non-empty path. Received: {argument}={value!r}")
    return Path(os.path.realpath(os.path.expanduser(text)))
