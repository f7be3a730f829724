"""Writing a model directory crash-safely: `WritingMode`, `save_files`, `write_atomically` and their checks.

FAIL_IF_EXISTS and OVERRIDE install a staged directory with one atomic rename or exchange; APPEND into an existing
directory commits a journal (`_journal.py`) before it renames its files in. Every save first finishes or removes
what earlier killed saves left (`_recovery.py`). What an OVERRIDE may delete is decided in `_replaceable.py`.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    OnnxtrainError,
    UnknownIdentifierError,
)
from onnxtrain.saving._fsync import FileData
from onnxtrain.saving._fsync import fsync_directory as _fsync_directory
from onnxtrain.saving._fsync import write_new_file as _write_new_file  # a module global, so tests can fill the disk
from onnxtrain.saving._journal import is_plain_name, rename_in
from onnxtrain.saving._lock import locked
from onnxtrain.saving._recovery import as_path, recover
from onnxtrain.saving._renameat2 import RENAME_EXCHANGE, RENAME_NOREPLACE
from onnxtrain.saving._renameat2 import renameat2 as _renameat2  # a module global, so tests can simulate old kernels
from onnxtrain.saving._replaceable import refuse_unreplaceable
from onnxtrain.saving._scratch import SCRATCH_PREFIX, remove_entry, remove_stale, scratch_name

_EXCHANGE_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM})
_FIXES = {
    errno.ENOSPC: "The disk is full: free some space or save somewhere else.",
    errno.EDQUOT: "The disk quota is exceeded: free some space or save somewhere else.",
    errno.EACCES: "Permission denied: save to a folder you can write to, or fix its permissions.",
    errno.EPERM: "Operation not permitted: save to a folder you can write to, or fix its permissions.",
    errno.EROFS: "The file system is read-only: save somewhere else.",
}


class WritingMode(enum.Enum):
    """What `save_files` does when the target directory already exists (KotlinDL's WritingMode)."""

    FAIL_IF_EXISTS = "fail_if_exists"
    OVERRIDE = "override"
    APPEND = "append"

    @classmethod
    def get(cls, value: WritingMode | str) -> WritingMode:
        """Return the mode for a WritingMode or a case-insensitive name such as "override"."""
        if isinstance(value, WritingMode):
            return value
        if not isinstance(value, str):
            raise InvalidTypeError(
                f"writing_mode expects a WritingMode or one of {[m.value for m in cls]}. "
                f"Received: writing_mode={value!r} ({type(value).__name__})"
            )
        try:
            return cls(value.strip().lower().replace("-", "_"))
        except ValueError:
            raise UnknownIdentifierError(
                f"Could not interpret writing_mode {value!r}. Valid names: {[m.value for m in cls]}"
            ) from None


def write_atomically(path: str | os.PathLike[str], data: FileData) -> Path:
    """Write one file so that readers see either its old contents or the complete new ones.

    The data goes to a temporary file in the same folder, is flushed and fsynced, renamed onto `path`, and the
    folder is fsynced. Missing parent folders are created. For the files of a model directory use
    `save_files(..., WritingMode.APPEND)`, which also waits for concurrent saves of that directory.

    Returns:
        The absolute path written.
    Raises:
        OSError: (same errno subclass, e.g. PermissionError) naming the path; the old file is untouched and no
            temporary file remains. Other errors from a writer callable propagate unchanged.
    """
    target = as_path(path, "path")
    _check_data(target.name, data)
    try:
        _make_directories(target.parent)
        remove_stale(target.parent, target.name)
        _replace_file(target.parent, target.name, data)
    except OSError as e:
        raise _write_error(target, e) from e
    return target


def save_files(
    directory: str | os.PathLike[str],
    files: Mapping[str, FileData],
    writing_mode: WritingMode | str = WritingMode.FAIL_IF_EXISTS,
    *,
    replaceable: Collection[str] | None = None,
    argument: str = "save_files(directory=...)",
) -> Path:
    """Save a complete set of files as a model directory.

    FAIL_IF_EXISTS refuses any existing directory (even an empty one). OVERRIDE builds the new directory
    beside the old one and swaps it in with one atomic exchange, so the directory holds exactly `files` after:
    whatever else it held is deleted, so pass `replaceable` (see `check_replaceable`) unless the caller owns
    the whole directory. APPEND replaces same-named files one atomic rename at a time and keeps the others.
    Saves to one directory are serialised by a lock file beside it, which exists only while a save or load
    holds it (`_lock.py`), and each save first cleans up after earlier killed saves. A save, refused or not,
    leaves no lock file; one refused before writing creates nothing at all.

    Args:
        replaceable: with OVERRIDE, the file names the old directory may hold; anything else refuses the save.
            Checked before anything is created, and again with the lock held just before the swap, so an entry
            added while the new directory was staged is seen too (that refusal leaves the folder as it was). A
            writer that takes no lock can still add one between that check and the swap. Other modes ignore it.
        argument: `directory` as the caller's caller gave it, for messages ("save(directory=...)").

    Returns:
        The absolute directory path.
    Raises:
        ModelExistsError: FAIL_IF_EXISTS and the directory exists; OVERRIDE and it holds what `replaceable`
            does not name (the old directory is left as it was and the staged one removed).
        InvalidArgumentError / InvalidTypeError: bad `files`, `writing_mode` or `replaceable`, `directory` is
            a file, or OVERRIDE of a directory that holds the working directory (its swap would delete it).
        OSError: disk full, permission denied, ... naming the path; the previous directory is left intact.
    """
    target = as_path(directory, "directory")
    mode = WritingMode.get(writing_mode)
    _check_files(files)
    if replaceable is not None and (isinstance(replaceable, str) or not isinstance(replaceable, Collection)):
        raise InvalidTypeError(
            "replaceable expects a collection of file names such as {'model.onnx'}, or None. "
            f"Received: replaceable={replaceable!r}"
        )
    if target.name.startswith(SCRATCH_PREFIX):
        raise InvalidArgumentError(f"directory names starting with {SCRATCH_PREFIX!r} are reserved. Received: {target}")
    if os.path.lexists(target) and not target.is_dir():
        raise InvalidArgumentError(
            f"{argument} expects a directory path, but '{target}' is an existing file. "
            "Remove the file or choose another directory."
        )
    if mode is WritingMode.OVERRIDE and _holds_working_directory(target):
        raise InvalidArgumentError(
            f"{argument} with writing_mode=OVERRIDE would replace '{target}', which holds this process's working "
            f"directory ('{Path.cwd()}'): OVERRIDE swaps in a new folder and deletes the old one, and the process "
            "would be left in a deleted folder. Pass writing_mode=APPEND (it replaces the model's files in place), "
            "or save from another working directory."
        )
    guarded = replaceable if mode is WritingMode.OVERRIDE else None
    try:
        if mode is WritingMode.FAIL_IF_EXISTS:  # refused before anything, even the lock file, is created
            _refuse_existing(target)
        if guarded is not None:  # likewise; checked again below, under the lock
            refuse_unreplaceable(target, guarded)
        _make_directories(target.parent)
        if mode is WritingMode.APPEND:
            with locked(target, exclusive=True):
                recover(target)
                _append(target, files)
            return target
        with locked(target, exclusive=True):
            recover(target)
            if mode is WritingMode.FAIL_IF_EXISTS:
                _refuse_existing(target)
        staged = _stage_directory(target, files)  # outside the lock: it can take long and nobody else sees it
        with locked(target, exclusive=True):
            if guarded is not None:  # what the swap would delete, as it stands now that no other save can run
                try:
                    refuse_unreplaceable(target, guarded)
                except BaseException:
                    remove_entry(staged)
                    raise
            displaced = _commit(staged, target, mode)
        if displaced is not None:
            remove_entry(displaced)
    except OSError as e:
        if isinstance(e, OnnxtrainError):
            raise
        raise _write_error(target, e) from e
    return target


def check_replaceable(directory: str | os.PathLike[str], replaceable: Collection[str]) -> None:
    """Refuse an OVERRIDE of a directory that holds anything but regular files named in `replaceable`.

    OVERRIDE swaps the whole directory and deletes the old one, so only an empty directory or one holding
    nothing but what a save wrote (and onnxtrain's scratch entries) may be replaced. A missing directory passes;
    so does a file, which `save_files` refuses with its own message. Nothing is created or changed. This is a
    quick early answer, without the save lock: `save_files(..., replaceable=...)` checks again under the lock.

    Raises:
        ModelExistsError: naming the directory and its first unexpected entries.
        OSError: the directory cannot be listed.
    """
    target = as_path(directory, "directory")
    try:
        refuse_unreplaceable(target, replaceable)
    except OSError as e:
        if isinstance(e, OnnxtrainError):
            raise
        raise _write_error(target, e) from e


@contextlib.contextmanager
def created_directories(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Create the folder `path` and its missing parents for the block that fills it; if the block raises, remove
    again, deepest first, those this call created while they are empty: never one that existed before, nor one
    that holds anything.

    Yields `path` as a Path. A folder that cannot be created raises the OSError, after the same clean-up.

    Example:
        with created_directories("artifacts/run1") as folder:
            (folder / "eval.onnx").write_bytes(data)  # a failure here leaves no empty artifacts/run1/
    """
    folder = Path(path)
    created: list[Path] = []
    try:
        _make_directories(folder.absolute(), created)
        yield folder
    except BaseException:
        for made in reversed(created):
            with contextlib.suppress(OSError):  # it holds something (or is gone): keep it
                os.rmdir(made)
        raise


def _holds_working_directory(target: Path) -> bool:
    """Whether `target` is the working directory or one of its parents (False when there is none to resolve)."""
    try:
        here, folder = Path.cwd().resolve(), target.resolve()
    except OSError:  # the working directory was deleted already, or a link loops
        return False
    return folder == here or folder in here.parents


def _check_data(name: str, data: object) -> None:
    if not (isinstance(data, bytes | bytearray | memoryview) or callable(data)):
        raise InvalidTypeError(
            f"The contents of {name!r} must be bytes or a callable writing to a binary stream. "
            f"Received: {type(data).__name__}"
        )


def _check_files(files: object) -> None:
    if not isinstance(files, Mapping):
        raise InvalidTypeError(
            f"files expects a mapping of file name to bytes or writer. Received: files={type(files).__name__}"
        )
    if not files:
        raise InvalidArgumentError("files expects at least one file: an empty directory is no model. Received: {}")
    for name, data in files.items():
        if not is_plain_name(name) or name.startswith(SCRATCH_PREFIX):
            raise InvalidArgumentError(
                f"files keys must be plain file names (no folders, not starting with {SCRATCH_PREFIX!r}). "
                f"Received: {name!r}"
            )
        _check_data(name, data)


def _write_error(target: Path, error: OSError) -> OSError:
    if error.errno is None:
        return error
    where = f" ({error.filename})" if error.filename and str(error.filename) != str(target) else ""
    fix = _FIXES.get(error.errno)
    message = str(error.strerror or error)
    # A fix restates the system's own message in plain words ("Permission denied: save to ..."): say it once.
    restated = fix is not None and (message == os.strerror(error.errno) or fix.startswith(message))
    parts = [f"Could not save '{target}'{where}" + ("." if restated else f": {message}."), fix or ""]
    parts.append("The previous contents are intact and no temporary files remain.")
    return OSError(error.errno, " ".join(p for p in parts if p))


def _refuse_existing(target: Path) -> None:
    if os.path.lexists(target):
        raise ModelExistsError(
            f"Could not save to '{target}': it already exists and writing_mode=WritingMode.FAIL_IF_EXISTS "
            "forbids touching it. Pass writing_mode=WritingMode.OVERRIDE to replace it, or "
            "WritingMode.APPEND to add and replace files in it."
        )


def _make_directories(folder: Path, created: list[Path] | None = None) -> None:
    """Create `folder` and its missing parents, durably; `created` gets each one this call made, outermost
    first, as it is made (so a caller sees them when a deeper one fails)."""
    missing = []
    # os.path.lexists, unlike Path.exists, answers False for an unreadable path instead of raising.
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path)
            if created is not None:
                created.append(path)
        except FileExistsError:  # made meanwhile by someone else: theirs
            pass
        _fsync_directory(path.parent)


def _replace_file(folder: Path, name: str, data: FileData) -> None:
    temp = folder / scratch_name("tmp", name)
    try:
        _write_new_file(temp, data)
        os.replace(temp, folder / name)
        _fsync_directory(folder)
    except BaseException:
        remove_entry(temp)
        raise


def _append(target: Path, files: Mapping[str, FileData]) -> None:
    """Lock held: put `files` into `target`, keeping its other entries; all of them or none, whatever kills us.

    The new files are written beside the old ones under scratch names, then renamed in by the journal's protocol
    (`_journal.py`). A new directory appears complete, as with OVERRIDE.
    """
    if not os.path.lexists(target):
        _commit(_stage_directory(target, files), target, WritingMode.FAIL_IF_EXISTS)
        return
    temps = {name: target / scratch_name("tmp", name) for name in files}
    try:
        for name, data in files.items():
            _write_new_file(temps[name], data)
    except BaseException:
        for temp in temps.values():
            remove_entry(temp)
        raise
    rename_in(target, {temp.name: name for name, temp in temps.items()})


def _stage_directory(target: Path, files: Mapping[str, FileData]) -> Path:
    staged = target.parent / scratch_name("tmp", target.name)
    os.mkdir(staged)
    try:
        for name, data in files.items():
            _write_new_file(staged / name, data)
        _fsync_directory(staged)
    except BaseException:
        remove_entry(staged)
        raise
    return staged


def _commit(staged: Path, target: Path, mode: WritingMode) -> Path | None:
    """With the lock held: put `staged` at `target`. Returns the displaced old directory, to delete."""
    displaced = None
    try:
        if mode is WritingMode.FAIL_IF_EXISTS:
            _refuse_existing(target)
            _rename_no_replace(staged, target)
        elif not os.path.lexists(target):
            os.rename(staged, target)
        else:
            displaced = _swap(staged, target)
        _fsync_directory(target.parent)
    except BaseException:
        remove_entry(staged)  # the new directory, or the old one when only the fsync failed
        raise
    return displaced


def _swap(staged: Path, target: Path) -> Path:
    try:
        _renameat2(staged, target, RENAME_EXCHANGE)
        return staged  # now holds the old directory
    except OSError as e:
        if e.errno not in _EXCHANGE_UNSUPPORTED:
            raise
    # No atomic exchange: mark the staged directory complete, move the old one aside, move the new one in.
    # A crash between the two moves leaves the target missing and a "new" entry that _recover installs.
    ready = target.parent / scratch_name("new", target.name)
    aside = target.parent / scratch_name("tmp", target.name)
    os.rename(staged, ready)
    try:
        _fsync_directory(target.parent)
        os.rename(target, aside)
    except BaseException:
        remove_entry(ready)
        raise
    try:
        os.rename(ready, target)
    except BaseException:
        os.rename(aside, target)
        remove_entry(ready)
        raise
    return aside


def _rename_no_replace(source: Path, target: Path) -> None:
    try:
        _renameat2(source, target, RENAME_NOREPLACE)
    except OSError as e:
        if e.errno == errno.EEXIST:
            _refuse_existing(target)
        if e.errno not in _EXCHANGE_UNSUPPORTED:
            raise
        os.rename(source, target)  # the lock and the check before make this safe between onnxtrain savers
