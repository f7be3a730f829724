"""IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: a strict reader and SHA-256 check.

Every malformed file raises DataFormatError naming the file and what is wrong. Memory use is bounded by the
data actually present, never by the sizes a (possibly forged) header claims.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from onnxtrain._bounded_read import open_regular
from onnxtrain.errors import DataFormatError

# IDX element type codes (http://yann.lecun.com/exdb/mnist/); multi-byte values are big-endian.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_RANK = 32
# A header claiming more than this is refused before anything is read (the largest real IDX file is ~47 MB).
MAX_PAYLOAD_BYTES = 1 << 34

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain, detected from its first bytes).

    Args:
        path: the file, e.g. ``"train-images-idx3-ubyte.gz"``.

    Returns:
        An array of the file's shape and element type (native byte order), e.g. uint8 ``(60000, 28, 28)``.

    Raises:
        DataFormatError: the file is not a well-formed IDX file (bad magic number, unknown element type,
            bad rank, truncated header or payload, trailing bytes, corrupt gzip stream).
        FileNotFoundError: the file does not exist.

    Example:
        >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
    """
    return load_idx(path)


def load_idx(path: str | os.PathLike[str], *, sha256: str | None = None, name: str | None = None) -> np.ndarray:
    """Like read_idx, and when ``sha256`` is given also check the SHA-256 of the decompressed bytes.

    ``name`` replaces the path in error messages (e.g. the URL of a file being downloaded).

    Raises:
        DataFormatError: as read_idx, or the checksum differs (the array is never returned then).
    """
    path = Path(path)
    label = name or str(path)
    hasher = hashlib.sha256()
    with ExitStack() as stack:
        try:
            stream, size = _open(path, stack)
            header = _read_exact(stream, 4)
            dtype, rank = _parse_magic(label, header)
            dims_raw = _read_exact(stream, 4 * rank)
            if len(dims_raw) < 4 * rank:
                raise DataFormatError(
                    f"IDX file {label} has a truncated header: rank {rank} needs {4 + 4 * rank} "
                    f"header bytes, the file has {4 + len(dims_raw)}."
                )
            shape = struct.unpack(f">{rank}I", dims_raw)
            nbytes = _payload_bytes(label, shape, dtype)
            if size is not None:
                _check_plain_size(label, size, 4 + 4 * rank, nbytes, shape, dtype)
            if size is not None:
                payload = bytearray(nbytes)  # the size check above proved the file holds this many bytes
                if stream.readinto(payload) != nbytes:
                    raise DataFormatError(f"IDX file {label} shrank while it was read.")
            else:
                payload = _read_payload(label, stream, nbytes, shape, dtype)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise DataFormatError(f"IDX file {label} is not a valid gzip stream: {error}.") from error
    if sha256 is not None:
        hasher.update(header)
        hasher.update(dims_raw)
        hasher.update(payload)
        actual = hasher.hexdigest()
        if actual != sha256.lower():
            raise DataFormatError(
                f"File {label} fails verification: the SHA-256 of its decompressed content is {actual}, "
                f"expected {sha256.lower()} (the file is corrupt, truncated or a different version)."
            )
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


def idx_header(array: np.ndarray) -> bytes:
    """The IDX header (magic number and dimensions) describing ``array``; used to re-verify decoded copies."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= MAX_RANK:
        raise DataFormatError(f"An array of dtype {array.dtype} and rank {array.ndim} has no IDX header.")
    return bytes((0, 0, code, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)


def idx_sha256(array: np.ndarray) -> str:
    """SHA-256 of the (uncompressed) IDX file holding ``array``: the checksum of the original file."""
    hasher = hashlib.sha256(idx_header(array))
    big_endian = array.astype(array.dtype.newbyteorder(">"), copy=False)
    hasher.update(np.ascontiguousarray(big_endian).data.cast("B"))
    return hasher.hexdigest()


def _open(path: Path, stack: ExitStack) -> tuple[io.BufferedIOBase, int | None]:
    """Open ``path`` for reading decompressed bytes; also return its exact size when it is not compressed."""
    try:  # not a FIFO or device: one would block the read or never end
        raw = stack.enter_context(open_regular(path))
    except ValueError as e:
        raise DataFormatError(f"IDX file {path} {str(e).removeprefix('it ')}; expected an IDX file.") from e
    magic = raw.read(2)
    raw.seek(0)
    if magic == _GZIP_MAGIC:
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")), None
    return raw, os.fstat(raw.fileno()).st_size


def _read_exact(stream: io.BufferedIOBase, count: int) -> bytes:
    """Up to ``count`` bytes; fewer only at the end of the stream."""
    parts: list[bytes] = []
    remaining = count
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _parse_magic(label: str, header: bytes) -> tuple[np.dtype, int]:
    if len(header) < 4:
        raise DataFormatError(
            f"IDX file {label} is too short for an IDX header: it has {len(header)} bytes, expected at least 4."
        )
    if header[0] != 0 or header[1] != 0:
        raise DataFormatError(
            f"IDX file {label} has a bad magic number 0x{header.hex()}: its first two bytes must be zero "
            "(is it an IDX file?)."
        )
    code, rank = header[2], header[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in IDX_DTYPES.items())
        raise DataFormatError(
            f"IDX file {label} has an unknown element type code 0x{code:02X}; expected one of {known}."
        )
    if not 1 <= rank <= MAX_RANK:
        raise DataFormatError(f"IDX file {label} has rank {rank}; expected 1 to {MAX_RANK} dimensions.")
    return IDX_DTYPES[code], rank


def _payload_bytes(label: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
    # Python ints: no overflow. Zero dimensions are legal, so bound the non-zero ones too (numpy's limit).
    nbytes = math.prod(shape) * dtype.itemsize
    largest = math.prod(d for d in shape if d) * dtype.itemsize
    if max(nbytes, largest) > MAX_PAYLOAD_BYTES:
        raise DataFormatError(
            f"IDX file {label} claims shape {shape} of {dtype.name} ({largest} bytes), more than the "
            f"{MAX_PAYLOAD_BYTES}-byte limit: the header is corrupt."
        )
    return nbytes


def _describe(shape: tuple[int, ...], dtype: np.dtype, nbytes: int) -> str:
    return f"shape {shape} of {dtype.name} = {nbytes} payload bytes"


def _check_plain_size(
    label: str, size: int, header_bytes: int, nbytes: int, shape: tuple[int, ...], dtype: np.dtype
) -> None:
    actual = size - header_bytes
    if actual < nbytes:
        raise DataFormatError(
            f"IDX file {label} is truncated: its header claims {_describe(shape, dtype, nbytes)}, "
            f"the file holds {actual}."
        )
    if actual > nbytes:
        raise DataFormatError(
            f"IDX file {label} has {actual - nbytes} trailing bytes after the payload its header claims "
            f"({_describe(shape, dtype, nbytes)})."
        )


def _read_payload(
    label: str, stream: io.BufferedIOBase, nbytes: int, shape: tuple[int, ...], dtype: np.dtype
) -> bytearray:
    # Grows with the data actually read, so a forged size allocates nothing it cannot fill.
    payload = bytearray()
    while len(payload) < nbytes:
        part = stream.read(min(_CHUNK, nbytes - len(payload)))
        if not part:
            raise DataFormatError(
                f"IDX file {label} is truncated: its header claims {_describe(shape, dtype, nbytes)}, "
                f"the file holds {len(payload)}."
            )
        payload += part
    if stream.read(1):
        raise DataFormatError(
            f"IDX file {label} has trailing bytes after the payload its header claims "
            f"({_describe(shape, dtype, nbytes)})."
        )
    return payload
