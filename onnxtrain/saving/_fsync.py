"""The durable steps of crash-safe saves: write a new file and fsync it, fsync a folder so that what changed in it
(a new entry, a rename) survives a crash."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeAlias

FileData: TypeAlias = bytes | bytearray | memoryview | Callable[[BinaryIO], None]
"""The contents of one file: bytes, or a callable that writes them to a binary stream (without closing it)."""


def write_new_file(path: Path, data: FileData) -> None:
    """Create `path` (refusing an existing one), write `data` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    with open(fd, "wb") as stream:
        if callable(data):
            data(stream)
        else:
            stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):  # some file systems cannot fsync a directory
            raise
    finally:
        os.close(fd)
