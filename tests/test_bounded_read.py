"""`_bounded_read.read_bounded`: a regular file's bytes up to a bound, read without reserving the bound itself."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest

from onnxtrain._bounded_read import MIB, _read_at_most, read_bounded
from onnxtrain._onnx_tensors import MAX_MODEL_BYTES
from onnxtrain.errors import ModelFileError


def test_a_small_file_is_read_without_reserving_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(bytes(range(100)))
    tracemalloc.start()
    try:
        data = read_bounded(path, MAX_MODEL_BYTES, ModelFileError, "an ONNX model")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data == bytes(range(100))
    assert MAX_MODEL_BYTES >= 1 << 30 and peak < 64 * 1024  # was 2,147,488,462: read(limit + 1) reserved it all


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 5])
def test_read_bounded_returns_the_whole_file(tmp_path: Path, size: int) -> None:
    expected = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(expected)
    assert read_bounded(path, size, ModelFileError) == expected  # a file exactly at the limit is not refused


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x" * 101)
    with pytest.raises(ModelFileError, match=r"model\.onnx' is 101 bytes, more than the 100 bytes an ONNX model"):
        read_bounded(path, 100, ModelFileError, "an ONNX model")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    path = tmp_path / "model.onnx"
    os.mkfifo(path)
    with pytest.raises(ModelFileError, match=r"model\.onnx' is not an ONNX model: it is not a regular file"):
        read_bounded(path, MAX_MODEL_BYTES, ModelFileError, "an ONNX model")


PROC_VERSION = Path("/proc/version")  # a regular file whose fstat size is 0, whatever it holds


@pytest.mark.skipif(not PROC_VERSION.is_file(), reason="needs Linux's /proc")
def test_a_file_whose_size_fstat_does_not_report_is_read_whole() -> None:
    expected = PROC_VERSION.read_bytes()
    assert os.stat(PROC_VERSION).st_size == 0 and expected
    assert read_bounded(PROC_VERSION, MIB, ModelFileError) == expected


@pytest.mark.skipif(not PROC_VERSION.is_file(), reason="needs Linux's /proc")
def test_a_file_whose_size_fstat_does_not_report_still_stops_at_the_limit() -> None:
    with pytest.raises(ModelFileError, match=r"grew past the 8 bytes file may have while it was read"):
        read_bounded(PROC_VERSION, 8, ModelFileError)


@pytest.mark.parametrize(
    ("reported", "most", "expected_size"),
    [
        (10, 4 * MIB, int(2.5 * MIB)),  # the stream holds more than reported: read on in chunks, to its end
        (10, 2 * MIB, 2 * MIB),  # ... but never past `most`
        (int(2.5 * MIB), int(2.5 * MIB) + 1, int(2.5 * MIB)),  # as reported: one read
    ],
)
def test_read_at_most_reads_past_the_reported_size_up_to_the_bound(
    reported: int, most: int, expected_size: int
) -> None:
    data = os.urandom(int(2.5 * MIB))
    assert _read_at_most(io.BufferedReader(io.BytesIO(data)), reported, most) == data[:expected_size]
