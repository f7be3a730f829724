"""Reading a whole file only when it is a regular file no larger than a bound, so a path to a FIFO, a device or
a forged huge file neither blocks nor exhausts memory.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from onnxtrain.errors import OnnxtrainError

MIB = 1 << 20
_CHUNK = MIB  # what is read at a time past the size fstat reports (a file that grows, /proc's files of size 0)


def _size_text(size: int) -> str:
    return f"{size:,} bytes" if size < MIB else f"{size:,} bytes ({size / MIB:,.1f} MiB)"


def open_regular(path: Path) -> io.BufferedReader:
    """`path` opened for reading when it is a regular file; ValueError when it is not. Opened without blocking,
    so a FIFO (which would wait for a writer) is refused, not waited on (OSError from the system)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ValueError("it is not a regular file (a folder, FIFO, device or socket?)")
    return os.fdopen(descriptor, "rb")


def read_bounded(path: Path, limit: int, error: type[OnnxtrainError], what: str = "file") -> bytes:
    """The bytes of the regular file `path`, refused with `error` (naming the path) when it is not a regular
    file, is larger than `limit` bytes, or cannot be read. The size is checked on the open file, before reading.
    """
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise error(
                    f"'{path}' is {_size_text(size)}, more than the {_size_text(limit)} {what} may have: it is "
                    "not one onnxtrain wrote, or it is damaged."
                )
            data = _read_at_most(file, size, limit + 1)
    except ValueError as e:
        if isinstance(e, error):
            raise
        raise error(f"'{path}' is not {what}: {e}.") from e
    except OSError as e:
        raise error(f"Cannot read '{path}': {e.strerror or e}. Check that it exists and its permissions.") from e
    if len(data) > limit:  # the file grew while it was read
        raise error(f"'{path}' grew past the {_size_text(limit)} {what} may have while it was read.")
    return data


def _read_at_most(file: io.BufferedReader, size: int, most: int) -> bytes:
    """The file's bytes up to `most`. The first read asks for the `size` fstat reported plus one byte (to see a
    file that grew), not `most`: a read reserves all it asks for, and `most` may be gigabytes. Past that, it reads
    in chunks, so a stream whose size fstat does not tell (/proc's files report 0) still stops at `most`."""
    chunks: list[bytes] = []
    total = 0
    request = min(size + 1, most)
    while total < most:
        chunk = file.read(request) or b""  # None: nothing available yet on a non-blocking stream
        chunks.append(chunk)
        total += len(chunk)
        if len(chunk) < request:  # a buffered read returns less only at the end (or when it would block)
            break
        request = min(_CHUNK, most - total)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_range(path: Path, offset: int, length: int) -> bytes:
    """`length` bytes of the regular file `path` from `offset` (OSError from the system; ValueError when it is
    not a regular file or is shorter than that now)."""
    with open_regular(path) as file:
        file.seek(offset)
        data = file.read(length)
    if len(data) != length:
        raise ValueError(f"it holds {len(data)} bytes from offset {offset}, not {length}")
    return data
