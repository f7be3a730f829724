"""Tests of onnxtrain.datasets._idx: the reader against numpy, every malformed-file case, property tests."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onnxtrain.datasets import read_idx
from onnxtrain.datasets._idx import MAX_PAYLOAD_BYTES, idx_header, idx_sha256, load_idx
from onnxtrain.errors import DataFormatError


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, built independently of the reader (big-endian payload)."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.newbyteorder("=").str[1:]]
    header = bytes((0, 0, code, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


SAMPLE = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_matches_numpy_for_every_element_type(tmp_path: Path, dtype: str, compress: bool) -> None:
    expected = (np.arange(60).reshape(3, 4, 5) - 30).astype(dtype) if dtype != "u1" else SAMPLE
    path = write(tmp_path / "a.idx", idx_bytes(expected), compress)
    array = read_idx(path)
    assert array.dtype == np.dtype(dtype) and array.dtype.isnative
    np.testing.assert_array_equal(array, expected)


def test_read_idx_accepts_multi_member_gzip_and_zero_sized_dims(tmp_path: Path) -> None:
    data = idx_bytes(SAMPLE)
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(data[:10]) + gzip.compress(data[10:]))
    np.testing.assert_array_equal(read_idx(path), SAMPLE)
    empty = np.zeros((0, 28), np.uint8)
    assert read_idx(write(tmp_path / "empty", idx_bytes(empty))).shape == (0, 28)


def test_read_idx_returns_a_writable_array(tmp_path: Path) -> None:
    array = read_idx(write(tmp_path / "a", idx_bytes(SAMPLE), compress=True))
    assert array.flags.writeable  # no read-only buffer surprises for callers that normalise in place
    array[0, 0, 0] = 7
    assert array[0, 0, 0] == 7


def test_load_idx_checks_the_sha256_of_the_decompressed_bytes(tmp_path: Path) -> None:
    data = idx_bytes(SAMPLE)
    digest = hashlib.sha256(data).hexdigest()
    plain, packed = write(tmp_path / "a", data), write(tmp_path / "a.gz", data, compress=True)
    for path in (plain, packed):
        np.testing.assert_array_equal(load_idx(path, sha256=digest.upper()), SAMPLE)
        with pytest.raises(DataFormatError, match=re.escape(str(path)) + r".*fails verification.*expected 00"):
            load_idx(path, sha256="00" * 32)


@pytest.mark.parametrize("dtype", ["u1", "i4", "f8"])
def test_idx_sha256_equals_the_checksum_of_the_file(dtype: str) -> None:
    array = SAMPLE.astype(dtype)
    assert idx_sha256(array) == hashlib.sha256(idx_bytes(array)).hexdigest()
    assert idx_header(array) == idx_bytes(array)[: 4 + 4 * array.ndim]


HEADER = b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 3, 4)
BIG = 0xFFFFFFFF
BAD_FILES = [
    ("empty", b"", False, "too short for an IDX header: it has 0 bytes"),
    ("three bytes", b"\x00\x00\x08", False, "too short for an IDX header: it has 3 bytes"),
    ("text file", b"hello world", False, "bad magic number 0x68656c6c"),
    ("non-zero magic", b"\x00\x01\x08\x01" + struct.pack(">I", 1) + b"\x00", False, "bad magic number"),
    (
        "unknown element type",
        b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00",
        False,
        "element type code 0x0A",
    ),
    ("rank 0", b"\x00\x00\x08\x00", False, "rank 0; expected 1 to 32"),
    ("rank 200", b"\x00\x00\x08\xc8" + b"\x00" * 800, False, "rank 200"),
    (
        "truncated header",
        b"\x00\x00\x08\x03" + struct.pack(">2I", 2, 3),
        False,
        "truncated header: rank 3 needs 16",
    ),
    ("truncated payload", HEADER + bytes(23), False, "truncated: .*24 payload bytes, the file holds 23"),
    ("trailing bytes", HEADER + bytes(25), False, "1 trailing bytes"),
    ("truncated payload, gzip", HEADER + bytes(5), True, "truncated: .*the file holds 5"),
    ("trailing bytes, gzip", HEADER + bytes(30), True, "trailing bytes"),
    ("forged huge shape", b"\x00\x00\x08\x03" + struct.pack(">3I", BIG, BIG, BIG), False, "limit"),
    (
        "forged huge shape, gzip",
        b"\x00\x00\x0e\x03" + struct.pack(">3I", BIG, BIG, 9) + bytes(9),
        True,
        "limit",
    ),
    ("huge shape hidden by a zero", b"\x00\x00\x08\x03" + struct.pack(">3I", 0, BIG, BIG), False, "limit"),
]


@pytest.mark.parametrize(
    ("content", "compress", "message"), [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_malformed_file_raises_data_format_error_naming_file(
    tmp_path: Path, content: bytes, compress: bool, message: str
) -> None:
    path = write(tmp_path / "bad-file", content, compress)
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*" + message):
        read_idx(path)


def test_corrupt_gzip_streams_raise_data_format_error(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(SAMPLE))
    cases = {
        "cut": packed[: len(packed) // 2],
        "crc": packed[:-8] + bytes(b ^ 0xFF for b in packed[-8:-4]) + packed[-4:],
        "garbage after": packed + b"not gzip",
        "bad deflate": packed[:10] + b"\xff" * (len(packed) - 10),
    }
    for name, content in cases.items():
        path = write(tmp_path / f"{name}.gz", content)
        with pytest.raises(DataFormatError, match=re.escape(str(path))):
            read_idx(path)


def test_forged_header_allocates_only_what_the_file_holds(tmp_path: Path) -> None:
    # Claims Fashion-MNIST's 47 MB but holds 100 bytes: the reader must not allocate the claim.
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 28, 28)
    path = write(tmp_path / "forged.gz", header + bytes(100), compress=True)
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match="truncated"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


def _read_or_format_error(path: Path) -> None:
    try:
        array = read_idx(path)
    except DataFormatError:
        return
    assert isinstance(array, np.ndarray)
    assert array.nbytes <= MAX_PAYLOAD_BYTES


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=st.binary(max_size=80), compress=st.booleans())
def test_random_bytes_only_raise_data_format_error(tmp_path: Path, content: bytes, compress: bool) -> None:
    _read_or_format_error(write(tmp_path / "random", content, compress))


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0xFF]),
    dims=st.lists(st.one_of(st.integers(0, 5), st.just(BIG), st.integers(0, BIG)), max_size=5),
    rank_offset=st.integers(-2, 2),
    payload=st.binary(max_size=300),
    compress=st.booleans(),
)
def test_random_headers_only_raise_data_format_error(
    tmp_path: Path, code: int, dims: list[int], rank_offset: int, payload: bytes, compress: bool
) -> None:
    rank = max(0, min(255, len(dims) + rank_offset))
    content = bytes((0, 0, code, rank)) + struct.pack(f">{len(dims)}I", *dims) + payload
    _read_or_format_error(write(tmp_path / "header", content, compress))


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    compress=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 200)),
    extra=st.binary(max_size=8),
)
def test_mutated_valid_files_only_raise_data_format_error(
    tmp_path: Path, compress: bool, edits: list[tuple[int, int]], cut: int | None, extra: bytes
) -> None:
    content = bytearray(gzip.compress(idx_bytes(SAMPLE)) if compress else idx_bytes(SAMPLE))
    for position, value in edits:
        content[position % len(content)] = value
    content = content[:cut] + extra if cut is not None else content + extra
    _read_or_format_error(write(tmp_path / "mutated", bytes(content)))
