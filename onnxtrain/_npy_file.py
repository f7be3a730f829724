""".npy and .npz files from an untrusted source: each array's header (dtype, shape) checked against the bytes
the file holds and against a bound before the array is allocated, and never a pickle.

`np.load` allocates what a header declares before it reads the data (for a .npz member it trusts the shape),
so a 1 KB file claiming a terabyte array costs that much memory; these readers refuse it first.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from onnxtrain._bounded_read import open_regular
from onnxtrain.errors import OnnxtrainError

MAX_DATA_BYTES = 1 << 32
"""The most a .npy or .npz file given to the command line may declare (4 GiB); load bigger data with numpy."""
_MAX_HEADER = 10_000  # numpy's own default limit on a header's length


class ArrayHeader(NamedTuple):
    """What a .npy header declares, and the bytes of data that follow it in the file or archive member."""

    dtype: np.dtype
    shape: tuple[int, ...]
    data_bytes: int

    @property
    def declared_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def read_header(stream: IO[bytes], size: int, source: str, error: type[OnnxtrainError]) -> ArrayHeader:
    """The header at the start of `stream` (a .npy of `size` bytes), refusing an object dtype (a pickle), a
    header numpy cannot read, and a declared size other than the bytes that follow the header."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_HEADER)
        else:
            raise ValueError(f"format version {version} is not one this reader takes (1.0 or 2.0)")
    except Exception as e:  # numpy's header parser raises ValueError, SyntaxError, tokenize.TokenError, ...
        raise error(f"{source} is not a readable .npy array: {type(e).__name__}: {e}.") from e
    if dtype.hasobject:
        raise error(
            f"{source} holds an array of Python objects (dtype {dtype}), which only a pickle can read; onnxtrain "
            "never unpickles a file. Save numeric or string arrays."
        )
    if any(int(d) < 0 for d in shape):
        raise error(
            f"{source} declares shape {tuple(shape)}, with a negative dimension: the file is damaged or forged."
        )
    header = ArrayHeader(dtype, tuple(int(d) for d in shape), size - stream.tell())
    if header.declared_bytes != header.data_bytes:
        raise error(
            f"{source} declares shape {header.shape} of {dtype} ({header.declared_bytes:,} bytes), but holds "
            f"{header.data_bytes:,} bytes of data: the file is truncated, damaged or forged."
        )
    return header


def read_npy(path: Path, error: type[OnnxtrainError], limit: int = MAX_DATA_BYTES) -> np.ndarray:
    """The array in the .npy file `path`, its header checked against the file's size and `limit` first."""
    try:
        with open_regular(path) as file:
            header = read_header(file, os.fstat(file.fileno()).st_size, f"'{path}'", error)
            _check_limit(header.declared_bytes, limit, f"'{path}'", error)
            file.seek(0)
            return np.lib.format.read_array(file, allow_pickle=False)
    except OnnxtrainError:
        raise
    except (OSError, ValueError) as e:  # ValueError: not a regular file, or it shrank while it was read
        raise error(f"Cannot read '{path}' as a .npy array: {getattr(e, 'strerror', None) or e}.") from e


def npz_headers(archive: zipfile.ZipFile, source: str, error: type[OnnxtrainError]) -> dict[str, ArrayHeader]:
    """{array name: header} of every member of a .npz archive, read from the members' first bytes only."""
    headers: dict[str, ArrayHeader] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise error(f"{source} holds {info.filename!r}, which is not a .npy array: not a .npz numpy wrote.")
        name = info.filename[: -len(".npy")]
        try:
            with archive.open(info) as member:
                headers[name] = read_header(member, info.file_size, f"{source} (array {name!r})", error)
        except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
            raise error(f"{source} has an unreadable member {info.filename!r}: {e}.") from e
    return headers


def open_npz(data: bytes | Path, source: str, error: type[OnnxtrainError]) -> zipfile.ZipFile:
    """The zip archive of a .npz file or its bytes."""
    try:
        if isinstance(data, bytes):
            return zipfile.ZipFile(io.BytesIO(data))
        open_regular(data).close()  # refuses a FIFO or device without blocking on it
        return zipfile.ZipFile(data)
    except (OSError, zipfile.BadZipFile, ValueError) as e:  # ValueError: not a regular file
        raise error(f"{source} is not a readable .npz archive: {getattr(e, 'strerror', None) or e}.") from e


def read_npz(
    data: bytes | Path, source: str, error: type[OnnxtrainError], limit: int = MAX_DATA_BYTES
) -> dict[str, np.ndarray]:
    """{name: array} of a .npz archive, every header checked (and the total against `limit`) before any array
    is read."""
    with open_npz(data, source, error) as archive:
        headers = npz_headers(archive, source, error)
        _check_limit(sum(h.declared_bytes for h in headers.values()), limit, source, error)
        arrays = {}
        for name in headers:
            try:
                with archive.open(name + ".npy") as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:  # a bad CRC, a short member
                raise error(f"{source}: array {name!r} is damaged: {e}.") from e
    return arrays


def _check_limit(declared: int, limit: int, source: str, error: type[OnnxtrainError]) -> None:
    if declared > limit:
        raise error(
            f"{source} declares {declared:,} bytes of arrays, more than the {limit:,} allowed here; load such "
            "data with numpy and pass the arrays instead."
        )
