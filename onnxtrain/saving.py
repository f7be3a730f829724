"""Crash-safe writing of model directories: atomic files, atomic directory swaps and recovery after a crash.

A model directory is only ever seen with a complete old or complete new file set, whatever kills the saver.
Scratch entries start with `.onnxtrain-` and carry the owner's PID, so stale ones can be told from live ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import fcntl
import hashlib
import os
import platform
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO, TypeAlias

from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    ModelFileError,
    OnnxtrainError,
    UnknownIdentifierError,
)

FileData: TypeAlias = bytes | bytearray | memoryview | Callable[[BinaryIO], None]
"""The contents of one file: bytes, or a callable that writes them to a binary stream (without closing it)."""

SCRATCH_PREFIX = ".onnxtrain-"
"""Every temporary file, staged directory and lock file made by this module starts with this."""

STALE_AFTER_SECONDS = 24 * 3600
"""Scratch entries older than this are removed even when their owner PID looks alive (PID reuse)."""

# tmp: garbage once its owner is gone; new: a complete directory to install if the target is missing.
_KINDS = ("tmp", "new")
_EXCHANGE_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM})
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_SYS_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}
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
    target = _as_path(path, "path")
    _check_data(target.name, data)
    try:
        _make_directories(target.parent)
        _remove_stale(target.parent, target.name)
        _replace_file(target.parent, target.name, data)
    except OSError as e:
        raise _write_error(target, e) from e
    return target


def save_files(
    directory: str | os.PathLike[str],
    files: Mapping[str, FileData],
    writing_mode: WritingMode | str = WritingMode.FAIL_IF_EXISTS,
) -> Path:
    """Save a complete set of files as a model directory.

    FAIL_IF_EXISTS refuses any existing directory (even an empty one). OVERRIDE builds the new directory
    beside the old one and swaps it in with one atomic exchange, so the directory holds exactly `files` after.
    APPEND replaces same-named files one atomic rename at a time and keeps the others. Saves to one directory
    are serialised by a lock file beside it, and each save first cleans up after earlier killed saves.

    Returns:
        The absolute directory path.
    Raises:
        ModelExistsError: FAIL_IF_EXISTS and the directory exists.
        InvalidArgumentError / InvalidTypeError: bad `files` or `writing_mode`, or `directory` is a file.
        OSError: disk full, permission denied, ... naming the path; the previous directory is left intact.
    """
    target = _as_path(directory, "directory")
    mode = WritingMode.get(writing_mode)
    _check_files(files)
    if target.name.startswith(SCRATCH_PREFIX):
        raise InvalidArgumentError(
            f"directory names starting with {SCRATCH_PREFIX!r} are reserved. Received: {target}"
        )
    if os.path.lexists(target) and not target.is_dir():
        raise InvalidArgumentError(
            f"save_files(directory=...) expects a directory path, but '{target}' is an existing file. "
            "Remove the file or choose another directory."
        )
    try:
        _make_directories(target.parent)
        if mode is WritingMode.APPEND:
            with _locked(target, exclusive=True):
                _recover(target)
                _append(target, files)
            return target
        with _locked(target, exclusive=True):
            _recover(target)
            if mode is WritingMode.FAIL_IF_EXISTS:
                _refuse_existing(target)
        staged = _stage_directory(target, files)  # outside the lock: it can take long and nobody else sees it
        with _locked(target, exclusive=True):
            displaced = _commit(staged, target, mode)
        if displaced is not None:
            _remove_entry(displaced)
    except OSError as e:
        if isinstance(e, OnnxtrainError):
            raise
        raise _write_error(target, e) from e
    return target


def resolve_model_directory(directory: str | os.PathLike[str]) -> Path:
    """Return the absolute model directory, first finishing a save that was interrupted mid-swap.

    Raises:
        ModelFileError: the directory is missing, is a file, or cannot be read.
    """
    target = _as_path(directory, "directory")
    if not os.path.lexists(target):
        recover_interrupted_save(target)
    try:
        if not stat.S_ISDIR(os.stat(target).st_mode):
            raise ModelFileError(
                f"'{target}' is a file, not a model directory. Pass the folder that save() wrote."
            )
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
    """Install a complete new directory left beside a missing target by a save killed mid-swap.

    Returns:
        True when a directory was restored. Nothing happens where the folder is read-only.
    """
    target = _as_path(directory, "directory")
    if not target.parent.is_dir():
        return False
    try:
        with _locked(target, exclusive=True):
            return _recover(target)
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
    with _locked(target, exclusive=False):
        yield _list_files(target)  # no recovery in here: it needs the exclusive lock


def _as_path(value: object, argument: str) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise InvalidTypeError(f"{argument} expects a str or os.PathLike. Received: {argument}={value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise InvalidArgumentError(f"{argument} expects a non-empty path. Received: {argument}={value!r}")
    return Path(os.path.realpath(os.path.expanduser(text)))


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
        raise InvalidArgumentError(
            "files expects at least one file: an empty directory is no model. Received: {}"
        )
    for name, data in files.items():
        bad = not isinstance(name, str) or name in ("", ".", "..") or name.startswith(SCRATCH_PREFIX)
        if bad or any(c in name for c in ("/", "\0", os.altsep or "/")):
            raise InvalidArgumentError(
                f"files keys must be plain file names (no folders, not starting with {SCRATCH_PREFIX!r}). "
                f"Received: {name!r}"
            )
        _check_data(name, data)


def _write_error(target: Path, error: OSError) -> OSError:
    if error.errno is None:
        return error
    where = f" ({error.filename})" if error.filename and str(error.filename) != str(target) else ""
    parts = [f"Could not save '{target}'{where}: {error.strerror or error}.", _FIXES.get(error.errno, "")]
    parts.append("The previous contents are intact and no temporary files remain.")
    return OSError(error.errno, " ".join(p for p in parts if p))


def _refuse_existing(target: Path) -> None:
    if os.path.lexists(target):
        raise ModelExistsError(
            f"Could not save to '{target}': it already exists and writing_mode=WritingMode.FAIL_IF_EXISTS "
            "forbids touching it. Pass writing_mode=WritingMode.OVERRIDE to replace it, or "
            "WritingMode.APPEND to add and replace files in it."
        )


def _scratch_name(kind: str, name: str) -> str:
    return f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-{secrets.token_hex(4)}-{_tag(name)}"


def _tag(name: str) -> str:
    # Keeps scratch names under NAME_MAX (255 bytes) for long target names.
    if len(name.encode()) <= 200:
        return name
    return "sha1" + hashlib.sha1(name.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    path: Path
    kind: str
    pid: int

    def is_stale(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user
            pass
        try:
            return time.time() - self.path.lstat().st_mtime > STALE_AFTER_SECONDS
        except FileNotFoundError:
            return False


def _scratch_entries(folder: Path, name: str | None) -> list[_Entry]:
    """Our scratch entries in `folder`; only those made for `name` unless it is None."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = []
    for entry_name in names:
        if not entry_name.startswith(SCRATCH_PREFIX):
            continue
        parts = entry_name[len(SCRATCH_PREFIX) :].split("-", 3)
        if len(parts) == 4 and parts[0] in _KINDS and parts[1].isdigit() and int(parts[1]) > 0:
            if name is None or parts[3] == _tag(name):
                entries.append(_Entry(folder / entry_name, parts[0], int(parts[1])))
    return entries


def _remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _remove_stale(folder: Path, name: str | None) -> None:
    for entry in _scratch_entries(folder, name):
        if entry.kind == "tmp" and entry.is_stale():
            _remove_entry(entry.path)


def _recover(target: Path) -> bool:
    """Lock held: install an orphaned complete "new" directory if the target is gone, drop garbage."""
    stale = [e for e in _scratch_entries(target.parent, target.name) if e.is_stale()]
    restored = False
    ready = sorted((e for e in stale if e.kind == "new"), key=lambda e: e.path.lstat().st_mtime)
    if ready and not os.path.lexists(target):
        os.rename(ready[-1].path, target)
        _fsync_directory(target.parent)
        stale.remove(ready[-1])
        restored = True
    for entry in stale:
        _remove_entry(entry.path)
    if target.is_dir():
        _remove_stale(target, None)
    return restored


@contextlib.contextmanager
def _locked(target: Path, *, exclusive: bool) -> Iterator[None]:
    """flock a lock file beside `target` (never deleted: unlinking a lock file races with its users)."""
    lock_path = target.parent / f"{SCRATCH_PREFIX}lock-{_tag(target.name)}"
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        if exclusive:
            raise
        fd = None  # a read-only location: nobody can be saving there either
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _make_directories(folder: Path) -> None:
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):  # some file systems cannot fsync a directory
            raise
    finally:
        os.close(fd)


def _write_new_file(path: Path, data: FileData) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    with open(fd, "wb") as stream:
        if callable(data):
            data(stream)
        else:
            stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _replace_file(folder: Path, name: str, data: FileData) -> None:
    temp = folder / _scratch_name("tmp", name)
    try:
        _write_new_file(temp, data)
        os.replace(temp, folder / name)
        _fsync_directory(folder)
    except BaseException:
        _remove_entry(temp)
        raise


def _append(target: Path, files: Mapping[str, FileData]) -> None:
    if not os.path.lexists(target):  # a new directory appears complete, as with OVERRIDE
        _commit(_stage_directory(target, files), target, WritingMode.FAIL_IF_EXISTS)
        return
    temps = [target / _scratch_name("tmp", name) for name in files]
    try:
        for temp, data in zip(temps, files.values(), strict=True):
            _write_new_file(temp, data)
        for temp, name in zip(temps, files, strict=True):
            os.replace(temp, target / name)
        _fsync_directory(target)
    finally:
        for temp in temps:
            _remove_entry(temp)


def _stage_directory(target: Path, files: Mapping[str, FileData]) -> Path:
    staged = target.parent / _scratch_name("tmp", target.name)
    os.mkdir(staged)
    try:
        for name, data in files.items():
            _write_new_file(staged / name, data)
        _fsync_directory(staged)
    except BaseException:
        _remove_entry(staged)
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
        _remove_entry(staged)  # the new directory, or the old one when only the fsync failed
        raise
    return displaced


def _swap(staged: Path, target: Path) -> Path:
    try:
        _renameat2(staged, target, _RENAME_EXCHANGE)
        return staged  # now holds the old directory
    except OSError as e:
        if e.errno not in _EXCHANGE_UNSUPPORTED:
            raise
    # No atomic exchange: mark the staged directory complete, move the old one aside, move the new one in.
    # A crash between the two moves leaves the target missing and a "new" entry that _recover installs.
    ready = target.parent / _scratch_name("new", target.name)
    aside = target.parent / _scratch_name("tmp", target.name)
    os.rename(staged, ready)
    try:
        _fsync_directory(target.parent)
        os.rename(target, aside)
    except BaseException:
        _remove_entry(ready)
        raise
    try:
        os.rename(ready, target)
    except BaseException:
        os.rename(aside, target)
        _remove_entry(ready)
        raise
    return aside


def _rename_no_replace(source: Path, target: Path) -> None:
    try:
        _renameat2(source, target, _RENAME_NOREPLACE)
    except OSError as e:
        if e.errno == errno.EEXIST:
            _refuse_existing(target)
        if e.errno not in _EXCHANGE_UNSUPPORTED:
            raise
        os.rename(source, target)  # the lock and the check before make this safe between onnxtrain savers


def _renameat2(source: Path, target: Path, flags: int) -> None:
    """Linux renameat2(2). Raises OSError: ENOSYS where unavailable, EINVAL where the file system lacks it."""
    function = _renameat2_function()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(source))
    if function(os.fsencode(source), os.fsencode(target), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(source), None, str(target))


@cache
def _renameat2_function() -> Callable[[bytes, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "renameat2"):  # glibc >= 2.28
        function = libc.renameat2
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        return lambda source, target, flags: function(_AT_FDCWD, source, _AT_FDCWD, target, flags)
    number = _SYS_RENAMEAT2.get(platform.machine().lower())
    if number is None or not hasattr(libc, "syscall"):
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    return lambda source, target, flags: syscall(
        ctypes.c_long(number),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(source),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(target),
        ctypes.c_uint(flags),
    )


def _list_files(target: Path) -> dict[str, Path]:
    try:
        names = sorted(os.listdir(target))
    except OSError as e:
        raise ModelFileError(f"Cannot read the saved model at '{target}': {e.strerror or e}") from e
    return {n: target / n for n in names if not n.startswith(SCRATCH_PREFIX) and (target / n).is_file()}
