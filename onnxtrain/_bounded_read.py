"""Reading a whole file only when it is a regular file no larger than a bound, so a path to a FIFO, a device or
a forged huge file neither blocks nor exhausts memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from onnxtrain.errors import OnnxtrainError

MIB = 1 << 20


def _size_text(size: int) -> str:
    return f"{size:,} bytes" if size < MIB else f"{size / MIB:,.1f} MiB"


def read_bounded(path: Path, limit: int, error: type[OnnxtrainError], what: str = "file") -> bytes:
    """The bytes of the regular file `path`, refused with `error` (naming the path) when it is not a regular
    file, is larger than `limit` bytes, or cannot be read. The size is checked on the open file, before reading.
    """
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise error(f"'{path}' is not a regular file (a FIFO, device or socket?); expected a {what}.")
            if info.st_size > limit:
                raise error(
                    f"'{path}' is {_size_text(info.st_size)}, more than the {_size_text(limit)} a {what} may "
                    "have: it is not one onnxtrain wrote, or it is damaged."
                )
            data = file.read(limit + 1)
    except OSError as e:
        raise error(f"Cannot read '{path}': {e.strerror or e}. Check that it exists and its permissions.") from e
    if len(data) > limit:  # the file grew while it was read
        raise error(f"'{path}' grew past the {_size_text(limit)} a {what} may have while it was read.")
    return data


def read_range(path: Path, offset: int, length: int) -> bytes:
    """`length` bytes of the regular file `path` from `offset` (OSError from the system; ValueError when the file
    is shorter than that now)."""
    with open(path, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ValueError("it is not a regular file")
        file.seek(offset)
        data = file.read(length)
    if len(data) != length:
        raise ValueError(f"it holds {len(data)} bytes from offset {offset}, not {length}")
    return data
