"""Tests of onnxtrain.datasets._fashion_mnist and _download.

Source order, verification, the decoded-array cache, downloads from a local HTTP server, and (when installed)
the real Fashion-MNIST files.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import logging
import os
import shutil
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from onnxtrain.datasets import FASHION_MNIST_CLASSES, fashion_mnist
from onnxtrain.datasets import _fashion_mnist as fm
from onnxtrain.errors import DataFormatError, DownloadError, InvalidArgumentError

LOGGER = "onnxtrain.datasets"
TRAIN_N, TEST_N = 20, 10


def _idx(array: np.ndarray) -> bytes:
    return bytes((0, 0, 0x08, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _small_fashion() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": _idx(rng.integers(0, 256, (TRAIN_N, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": _idx((np.arange(TRAIN_N) % 10).astype(np.uint8)),
        "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (TEST_N, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": _idx((np.arange(TEST_N) % 10).astype(np.uint8)),
    }


SMALL = _small_fashion()


def fill(folder: Path, *, compress: bool = True, skip: str | None = None, level: int = 9) -> Path:
    """Write the small data set's four files into ``folder`` (gzip at ``level``, or plain)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in SMALL.items():
        if stem != skip:
            if compress:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data, compresslevel=level, mtime=level))
            else:
                (folder / stem).write_bytes(data)
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Path:
    """Isolate the source search: small-file checksums, empty user cache, no system folder, no variables."""
    monkeypatch.setattr(fm, "FILES", {stem: hashlib.sha256(data).hexdigest() for stem, data in SMALL.items()})
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(fm.DATA_ENV, raising=False)
    monkeypatch.setenv(fm.URL_ENV, "http://127.0.0.1:9/unused/")  # discard port: a download would fail fast
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return tmp_path


def cache_of(root: Path) -> Path:
    return root / "xdg" / "onnxtrain" / "datasets" / "fashion-mnist"


def source_used(caplog: pytest.LogCaptureFixture) -> str:
    return next(r.getMessage() for r in reversed(caplog.records) if "loaded from" in r.getMessage())


def check_small(train: object, test: object) -> None:
    images = np.frombuffer(SMALL["train-images-idx3-ubyte"], np.uint8, offset=16).reshape(TRAIN_N, 28, 28)
    assert train.x.shape == (TRAIN_N, 28, 28, 1) and train.x.dtype == np.float32  # type: ignore[attr-defined]
    np.testing.assert_array_equal(train.x[..., 0], images.astype(np.float32) / np.float32(255))  # type: ignore[attr-defined]
    assert train.y.dtype == np.int64 and len(test) == TEST_N  # type: ignore[attr-defined, arg-type]
    assert train.class_names == FASHION_MNIST_CLASSES  # type: ignore[attr-defined]


# --- source order -------------------------------------------------------------------------------------------


def test_sources_are_tried_in_order(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    argument, variable, system = fill(env / "arg"), fill(env / "var"), fill(env / "system")
    fill(cache_of(env))
    monkeypatch.setenv(fm.DATA_ENV, str(variable))
    check_small(*fashion_mnist(argument, download=False, cache_arrays=False))
    assert f"path argument {argument}" in source_used(caplog)
    fashion_mnist(download=False, cache_arrays=False)
    assert f"{fm.DATA_ENV} {variable}" in source_used(caplog)
    monkeypatch.delenv(fm.DATA_ENV)
    fashion_mnist(download=False, cache_arrays=False)
    assert f"user cache {cache_of(env)}" in source_used(caplog)
    shutil.rmtree(cache_of(env))
    fashion_mnist(download=False, cache_arrays=False)
    assert f"system folder {system}" in source_used(caplog)
    assert fashion_mnist(download=False, system_dir=argument)[0].class_names  # the keyword overrides SYSTEM_DIR


def test_incomplete_source_is_skipped_with_a_warning(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    partial, system = fill(env / "partial", skip="t10k-labels-idx1-ubyte"), fill(env / "system")
    monkeypatch.setenv(fm.DATA_ENV, str(partial))
    fashion_mnist(download=False)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "lacks t10k-labels-idx1-ubyte" in warning.getMessage()
    assert f"system folder {system}" in source_used(caplog)


@pytest.mark.parametrize("exists", [True, False], ids=["incomplete folder", "no folder"])
def test_an_incomplete_path_without_download_is_an_error_naming_it_and_the_missing_files(
    env: Path, exists: bool
) -> None:
    fill(env / "system")  # complete, but path= must never fall back to it
    folder = fill(env / "partial", skip="t10k-labels-idx1-ubyte") if exists else env / "nonexistent"
    missing = "t10k-labels-idx1-ubyte" if exists else ", ".join(SMALL)
    with pytest.raises(FileNotFoundError, match=rf"path argument {folder} lacks {missing} .*download=False"):
        fashion_mnist(folder, download=False)
    with pytest.raises(FileNotFoundError, match=rf"path argument {folder} lacks"):
        fm.fashion_mnist_folder(folder, download=False)


def test_an_incomplete_path_is_completed_by_a_download_into_it(env: Path, mirror: tuple[Path, str]) -> None:
    folder = fill(env / "partial", skip="train-images-idx3-ubyte")
    check_small(*fashion_mnist(folder, base_url=mirror[1], timeout=5))
    assert (folder / "train-images-idx3-ubyte.gz").is_file()
    assert not [n for n in leftovers(cache_of(env)) if n.endswith(".gz")]  # not the user cache


def test_a_failed_download_into_a_path_names_it_and_leaves_no_folder_behind(env: Path) -> None:
    fill(env / "system")
    folder = env / "new" / "fashion"
    url = f"http://127.0.0.1:{_unused_port()}/"
    with pytest.raises(DownloadError, match=rf"path argument {folder} lacks .*downloading them into it failed.*{url}"):
        fashion_mnist(folder, base_url=url, timeout=5)
    assert not (env / "new").exists()


def test_plain_and_regzipped_files_verify_by_content(env: Path) -> None:
    check_small(*fashion_mnist(fill(env / "plain", compress=False), download=False))
    check_small(*fashion_mnist(fill(env / "debian", level=1), download=False))  # other .gz bytes, same content


def test_fashion_mnist_folder_names_the_source_used(env: Path) -> None:
    system = fill(env / "system")
    assert fm.fashion_mnist_folder(download=False) == system


def test_no_source_and_no_download_is_a_clear_error(env: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"not complete in any source.*download=False.*dataset-fashion-mnist"):
        fashion_mnist(download=False)


@pytest.mark.parametrize("flag", ["download", "progress", "cache_arrays"])
def test_flags_are_bools_so_download_no_does_not_download(env: Path, flag: str) -> None:
    with pytest.raises(
        InvalidArgumentError, match=rf"fashion_mnist\({flag}=\.\.\.\) expects a bool\. Received: {flag}='no'"
    ):
        fashion_mnist(**{flag: "no"})


@pytest.mark.parametrize(
    ("where", "fix"),
    [("system", r"apt-get install --reinstall dataset-fashion-mnist"), ("arg", r"pass another path=")],
)
def test_corrupt_file_in_a_foreign_folder_is_an_error_naming_file_and_fix(env: Path, where: str, fix: str) -> None:
    folder = fill(env / where)
    bad = folder / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-6])
    with pytest.raises(DataFormatError, match=rf"{bad}.*{fix}"):
        fashion_mnist(folder if where == "arg" else None, download=False)
    assert bad.exists()  # never deleted: not onnxtrain's folder


def test_corrupt_cached_file_is_deleted_and_the_next_source_used(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, system = fill(cache_of(env)), fill(env / "system")
    bad = cache / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(SMALL["t10k-images-idx3-ubyte"][:-1] + b"\x01"))  # same size, one byte off
    check_small(*fashion_mnist(download=False))
    assert not bad.exists()
    assert any("deleted the corrupt cached file" in r.getMessage() for r in caplog.records)
    assert f"system folder {system}" in source_used(caplog)


def test_corrupt_cached_file_that_cannot_be_deleted_is_a_clear_error(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = fill(cache_of(env)) / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"garbage")

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(DataFormatError, match=rf"{bad}.*cannot delete it.*writable cache_dir"):
        fashion_mnist(download=False, cache_arrays=False)


# --- decoded-array cache ------------------------------------------------------------------------------------


def test_decoded_copies_are_reused_and_reverified(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    fill(env / "system")
    first = fashion_mnist(download=False)
    copies = sorted(cache_of(env).glob("*.npy"))
    assert len(copies) == 4 and "decoded copies" not in source_used(caplog)
    second = fashion_mnist(download=False)
    assert "decoded copies" in source_used(caplog)
    np.testing.assert_array_equal(first[0].x, second[0].x)
    tampered = next(c for c in copies if c.name.startswith("train-images"))
    array = np.load(tampered)
    array[0, 0, 0] ^= 1
    np.save(tampered, array)
    check_small(*fashion_mnist(download=False))
    assert any("Discarding the decoded copy" in r.getMessage() for r in caplog.records)


def _cut(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-6])


def _regzip_other_label(file: Path) -> None:
    data = bytearray(gzip.decompress(file.read_bytes()))
    data[-1] = (data[-1] + 1) % 10
    file.write_bytes(gzip.compress(bytes(data), mtime=0))


def _alter_in_place(file: Path) -> None:
    """One label changed, size and timestamps kept: only the content tells the file apart."""
    before = file.stat()
    data = bytearray(file.read_bytes())
    data[-1] = (data[-1] + 1) % 10
    file.write_bytes(bytes(data))
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize(
    ("compress", "damage", "match"),
    [
        (True, _cut, r"is not a valid gzip stream"),
        (True, _regzip_other_label, r"fails verification"),
        (False, _alter_in_place, r"fails verification"),
    ],
    ids=["truncated gz", "other label re-gzipped", "other label in place, same size and mtime"],
)
def test_a_decoded_copy_serves_only_the_file_it_was_decoded_from(
    env: Path, caplog: pytest.LogCaptureFixture, compress: bool, damage: Callable[[Path], None], match: str
) -> None:
    folder = fill(env / "arg", compress=compress)
    fashion_mnist(folder, download=False)
    check_small(*fashion_mnist(folder, download=False))
    assert "decoded copies" in source_used(caplog)  # the copies exist and are used for the unchanged files
    labels = folder / ("t10k-labels-idx1-ubyte.gz" if compress else "t10k-labels-idx1-ubyte")
    damage(labels)
    with pytest.raises(DataFormatError, match=rf"{labels}.*{match}.*pass another path="):
        fashion_mnist(folder, download=False)


def test_a_copy_with_other_bytes_and_the_same_content_is_decoded_once_and_replaces_the_copies(
    env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upstream, debian = fill(env / "upstream"), fill(env / "debian", level=1)  # same content, other .gz bytes
    fashion_mnist(upstream, download=False)
    check_small(*fashion_mnist(debian, download=False))
    assert "decoded copies" not in source_used(caplog)
    check_small(*fashion_mnist(debian, download=False))
    assert "decoded copies" in source_used(caplog)
    assert len(list(cache_of(env).glob("*.npy"))) == 4  # one decoded copy per file name, not one per source


def test_cache_arrays_false_writes_no_copies(env: Path) -> None:
    fill(env / "system")
    fashion_mnist(download=False, cache_arrays=False)
    assert not cache_of(env).exists()


# --- downloads from a local server --------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler], **kwargs: object) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, **kwargs))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mirror(env: Path) -> Iterator[tuple[Path, str]]:
    folder = fill(env / "mirror")
    with serve(_QuietHandler, directory=str(folder)) as url:
        yield folder, url


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_fills_the_cache(env: Path, mirror: tuple[Path, str], caplog: pytest.LogCaptureFixture) -> None:
    check_small(*fashion_mnist(base_url=mirror[1], timeout=5))
    names = leftovers(cache_of(env))
    assert [n for n in names if n.endswith(".gz")] == sorted(f"{s}.gz" for s in SMALL)
    assert not [n for n in names if n.endswith(".part")]
    assert any(mirror[1] in r.getMessage() and "downloading" in r.getMessage() for r in caplog.records)


def test_base_url_comes_from_the_environment(
    env: Path, mirror: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fm.URL_ENV, mirror[1])
    check_small(*fashion_mnist(timeout=5))


def test_checksum_mismatch_leaves_nothing_in_the_cache(env: Path, mirror: tuple[Path, str]) -> None:
    other = np.zeros((TRAIN_N, 28, 28), np.uint8)
    (mirror[0] / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(other)))
    url = f"{mirror[1]}train-images-idx3-ubyte.gz"
    with pytest.raises(DataFormatError, match=rf"File {url} fails verification.*Nothing was saved"):
        fashion_mnist(base_url=mirror[1], timeout=5, cache_arrays=False)
    assert "train-images-idx3-ubyte.gz" not in leftovers(cache_of(env))
    assert not [n for n in leftovers(cache_of(env)) if n.endswith(".part")]


def test_every_corrupt_cached_file_is_fetched_again(env: Path, mirror: tuple[Path, str]) -> None:
    cache = fill(cache_of(env))
    for stem in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (cache / f"{stem}.gz").write_bytes(b"\x1f\x8b broken")
    check_small(*fashion_mnist(base_url=mirror[1], timeout=5))


def test_truncated_cached_file_is_fetched_again(
    env: Path, mirror: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    cache = fill(cache_of(env))
    cached = cache / "train-images-idx3-ubyte.gz"
    complete = cached.read_bytes()
    cached.write_bytes(complete[: len(complete) // 2])  # KotlinDL #291: an interrupted download
    check_small(*fashion_mnist(base_url=mirror[1], timeout=5))
    assert gzip.decompress(cached.read_bytes()) == SMALL["train-images-idx3-ubyte"]
    assert any("deleted the corrupt cached file" in r.getMessage() for r in caplog.records)


def test_http_404_names_the_url(env: Path, mirror: tuple[Path, str]) -> None:
    (mirror[0] / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DownloadError, match=rf"{mirror[1]}t10k-labels-idx1-ubyte.gz: HTTP 404.*{fm.URL_ENV}"):
        fashion_mnist(base_url=mirror[1], timeout=5)
    assert not [n for n in leftovers(cache_of(env)) if n.endswith(".part")]


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_names_the_url(env: Path) -> None:
    url = f"http://127.0.0.1:{_unused_port()}/"
    with pytest.raises(DownloadError, match=rf"Could not download {url}train-images-idx3-ubyte.gz: .*refused"):
        fashion_mnist(base_url=url, timeout=5)


@pytest.mark.slow
def test_silent_server_times_out(env: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DownloadError, match=rf"{url}train-images-idx3-ubyte.gz: timed out after 0.3 s"):
            fashion_mnist(base_url=url, timeout=0.3)


class _ShortHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + bytes(8))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Sends 100 bytes of a promised 1000, then nothing until the client gives up."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + bytes(98))
        self.wfile.flush()
        time.sleep(2)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_a_stalled_download_says_how_much_arrived(env: Path) -> None:
    with (
        serve(_StallingHandler) as url,
        pytest.raises(DownloadError, match=rf"{url}train-images.*timed out after 0.5 s after 100 bytes"),
    ):
        fashion_mnist(base_url=url, timeout=0.5)
    assert not [n for n in leftovers(cache_of(env)) if n.endswith(".part")]


def test_connection_closed_early_is_a_download_error(env: Path) -> None:
    with (
        serve(_ShortHandler) as url,
        pytest.raises(DownloadError, match=rf"{url}train-images.*(closed|10 of 1000)"),
    ):
        fashion_mnist(base_url=url, timeout=5)
    assert not [n for n in leftovers(cache_of(env)) if n.endswith(".part")]


# --- the real data ------------------------------------------------------------------------------------------

REAL = fm.SYSTEM_DIR
real_files = pytest.mark.skipif(
    not all((REAL / f"{stem}.gz").is_file() for stem in fm.FILES),
    reason=f"the real Fashion-MNIST files are not in {REAL} (apt-get install dataset-fashion-mnist, or "
    "python tools/get_data.py)",
)


@pytest.mark.realdata
@real_files
@pytest.mark.slow
def test_real_files_match_the_upstream_checksums() -> None:
    for stem, digest in fm.FILES.items():
        with gzip.open(REAL / f"{stem}.gz") as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == digest, stem


@pytest.mark.realdata
@real_files
@pytest.mark.slow
def test_real_fashion_mnist_counts_shapes_range_and_histogram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fm.DATA_ENV, raising=False)
    train, test = fashion_mnist(cache_dir=tmp_path, download=False)
    warm_train, _ = fashion_mnist(cache_dir=tmp_path, download=False)  # from the verified decoded copies
    for dataset, count in ((train, 60_000), (test, 10_000)):
        assert dataset.x.shape == (count, 28, 28, 1) and dataset.x.dtype == np.float32
        assert dataset.y.shape == (count,) and dataset.y.dtype == np.int64
        assert dataset.x.min() == 0.0 and dataset.x.max() == 1.0
        np.testing.assert_array_equal(np.bincount(dataset.y, minlength=10), [count // 10] * 10)
    assert train.class_names == FASHION_MNIST_CLASSES and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    np.testing.assert_array_equal(train.x, warm_train.x)


@pytest.mark.realdata
@real_files
@pytest.mark.slow
def test_real_load_peak_memory_stays_under_twice_the_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fm.DATA_ENV, raising=False)
    tracemalloc.start()
    try:
        train, test = fashion_mnist(cache_dir=tmp_path, download=False)  # the cold path: decode .gz, write copies
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    final = sum(array.nbytes for dataset in (train, test) for array in (dataset.x, dataset.y))
    assert peak <= 2 * final, f"peak {peak / 2**20:.0f} MiB for {final / 2**20:.0f} MiB of arrays"
