"""fashion_mnist(): Zalando's Fashion-MNIST from the first complete source, every file verified by SHA-256.

Sources, in order: $ONNXTRAIN_DATA, the user cache, Debian's dataset-fashion-mnist package, then a download into
the user cache. A path argument replaces them all: its folder, with missing files downloaded into it, or an error.
Checksums cover the decompressed bytes, so re-gzipped copies verify too.
"""

from __future__ import annotations

import functools
import logging
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxtrain._checks import check_bool
from onnxtrain.errors import DataFormatError, DownloadError, InvalidArgumentError, InvalidTypeError
from onnxtrain.saving import created_directories

from ._array_cache import cached_array_path, load_cached_array, source_sha256, store_cached_array
from ._dataset import Dataset
from ._download import download_file
from ._idx import load_idx

logger = logging.getLogger("onnxtrain.datasets")

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEFAULT_BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = "ONNXTRAIN_DATA"
URL_ENV = "ONNXTRAIN_FASHION_MNIST_URL"

# SHA-256 of each file's decompressed content (the upstream files; Debian's re-gzipped copies match too).
FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

_DOWNLOAD_HINT = (
    f"Set {URL_ENV} (or base_url=) to a reachable mirror, install Debian's dataset-fashion-mnist package, "
    f"or put the four files in a folder and pass path= (or set {DATA_ENV})."
)


@dataclass(frozen=True)
class _Source:
    kind: str
    folder: Path
    owned: bool  # onnxtrain's own cache: bad files are deleted and fetched again
    explicit: bool  # named by the user: say so when it is incomplete
    fix: str  # what to do about a corrupt file here


def fashion_mnist(
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    base_url: str | None = None,
    system_dir: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    cache_arrays: bool = True,
) -> tuple[Dataset, Dataset]:
    """The Fashion-MNIST train (60,000) and test (10,000) sets.

    x is float32 in [0, 1] shaped ``(N, 28, 28, 1)``; y holds int64 class indices into ``class_names``
    (FASHION_MNIST_CLASSES). Logs the source used on the ``onnxtrain.datasets`` logger. A corrupt or
    truncated file in the cache is reported, deleted and fetched again; nothing unverified is returned.

    Args:
        path: a folder holding the four files (``train-images-idx3-ubyte.gz``..., .gz or plain). When given it
            is the only source: files it lacks are downloaded into it (or, with ``download=False``, an error).
        cache_dir: the download folder; default ``$XDG_CACHE_HOME`` (or ``~/.cache``)
            ``/onnxtrain/datasets/fashion-mnist``. Also holds the decoded copies.
        download: fetch missing files into ``cache_dir`` when no source is complete (into ``path`` when given).
        base_url: the mirror to download from; default ``$ONNXTRAIN_FASHION_MNIST_URL``, then Zalando's.
        system_dir: the system folder; default ``/usr/share/datasets/fashion-mnist`` (Debian's package).
        timeout: seconds to wait for a connection or a read.
        progress: show download progress bars (on a terminal).
        cache_arrays: keep verified decoded copies (.npy) in ``cache_dir`` for faster loads. A copy serves only
            the file it was decoded from, recognised by the SHA-256 of its bytes (not its name, size or time).

    Returns:
        ``(train, test)`` Datasets.

    Raises:
        DataFormatError: a file in a folder onnxtrain must not change fails verification (the message names it
            and the fix), or a download is not the expected file.
        DownloadError: the download failed (HTTP error, refused connection, time-out, or ``path`` not writable).
        FileNotFoundError: no complete source and ``download=False`` (``path`` lacks files, naming them).

    Example:
        >>> train, test = fashion_mnist()  # doctest: +SKIP
        >>> train.x.shape, train.class_names[9]  # doctest: +SKIP
        ((60000, 28, 28, 1), 'Ankle boot')
    """
    arrays, _ = _load_arrays(path, cache_dir, download, base_url, system_dir, timeout, progress, cache_arrays)
    train = _to_dataset(arrays.pop("train-images-idx3-ubyte"), arrays.pop("train-labels-idx1-ubyte"))
    test = _to_dataset(arrays.pop("t10k-images-idx3-ubyte"), arrays.pop("t10k-labels-idx1-ubyte"))
    return train, test


def fashion_mnist_folder(
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    base_url: str | None = None,
    system_dir: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """The folder of verified Fashion-MNIST files that fashion_mnist() would use (downloading when needed)."""
    _, source = _load_arrays(path, cache_dir, download, base_url, system_dir, timeout, progress, True)
    return source.folder


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/onnxtrain/datasets/fashion-mnist``, or under ``~/.cache`` when that is unset."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "onnxtrain" / "datasets" / "fashion-mnist"


def _load_arrays(
    path: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
    base_url: str | None,
    system_dir: str | os.PathLike[str] | None,
    timeout: float,
    progress: bool,
    cache_arrays: bool,
) -> tuple[dict[str, np.ndarray], _Source]:
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise InvalidTypeError(f"fashion_mnist(timeout=...) expects seconds. Received: {type(timeout).__name__}.")
    if not timeout > 0:
        raise InvalidArgumentError(f"fashion_mnist(timeout=...) expects a positive number. Received: {timeout}.")
    download = check_bool("fashion_mnist", "download", download)  # download="no" must not download
    progress = check_bool("fashion_mnist", "progress", progress)
    cache_arrays = check_bool("fashion_mnist", "cache_arrays", cache_arrays)
    sources = _sources(path, cache_dir, system_dir)
    cache = next(source for source in sources if source.owned)
    array_cache = cache.folder if cache_arrays else None
    url = base_url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    if path is not None:  # the caller's folder is authoritative: never data from another source
        return _load_path(sources[0], array_cache, download, url, timeout, progress), sources[0]
    for source in sources:
        arrays = _load_source(source, array_cache)
        if arrays is not None:
            return arrays, source
    if not download:
        searched = ", ".join(f"{source.kind} {source.folder}" for source in sources)
        raise FileNotFoundError(
            f"Fashion-MNIST is not complete in any source ({searched}) and download=False. "
            "Pass download=True, or install Debian's dataset-fashion-mnist package, "
            f"or pass path= or set {DATA_ENV} to a folder holding the four files."
        )
    _download_missing(cache.folder, url, timeout, progress)
    arrays = _load_source(cache, array_cache)
    if arrays is None:  # only if another process deleted the files meanwhile
        raise DataFormatError(f"The Fashion-MNIST files downloaded into {cache.folder} disappeared; try again.")
    return arrays, cache


def _load_path(
    source: _Source, array_cache: Path | None, download: bool, url: str, timeout: float, progress: bool
) -> dict[str, np.ndarray]:
    """The verified arrays of the path argument's folder, after downloading the files it lacks into it."""
    _, missing = _find_files(source.folder)
    if missing:
        lacks = f"Fashion-MNIST: the path argument {source.folder} lacks {', '.join(missing)}"
        if not download:
            raise FileNotFoundError(
                f"{lacks} (.gz or plain) and download=False. Put the four files there, pass download=True to "
                "download them into it, or leave path= out to search the other sources."
            )
        try:
            with created_directories(source.folder):  # a failed download leaves no empty folder behind
                _download_missing(source.folder, url, timeout, progress)
        except OSError as error:  # a DownloadError, or a folder that cannot be created or written
            raise DownloadError(
                f"{lacks}, and downloading them into it failed (leave path= out to use the other sources): {error}"
            ) from error
    arrays = _load_source(source, array_cache)
    if arrays is None:  # only if another process deleted the files meanwhile
        raise DataFormatError(f"The Fashion-MNIST files in {source.folder} disappeared while loading; try again.")
    return arrays


def _sources(
    path: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    system_dir: str | os.PathLike[str] | None,
) -> list[_Source]:
    for name, value in (("path", path), ("cache_dir", cache_dir), ("system_dir", system_dir)):
        if value is not None and not isinstance(value, str | os.PathLike):
            raise InvalidTypeError(
                f"fashion_mnist({name}=...) expects a folder path (str or PathLike). Received: {type(value).__name__}."
            )
    sources = []
    if path is not None:
        fix = "Replace it with a good copy or pass another path=."
        sources.append(_Source("path argument", Path(path), owned=False, explicit=True, fix=fix))
    if os.environ.get(DATA_ENV):
        fix = f"Replace it with a good copy or unset {DATA_ENV}."
        sources.append(_Source(DATA_ENV, Path(os.environ[DATA_ENV]), owned=False, explicit=True, fix=fix))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fix = "Delete it by hand, or pass a writable cache_dir=."
    sources.append(_Source("user cache", cache, owned=True, explicit=False, fix=fix))
    system = Path(system_dir) if system_dir is not None else SYSTEM_DIR
    fix = (
        "Reinstall Debian's package (apt-get install --reinstall dataset-fashion-mnist), or remove it so "
        "that onnxtrain downloads the data."
    )
    sources.append(_Source("system folder", system, owned=False, explicit=False, fix=fix))
    return sources


def _find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The file found for each name (.gz preferred, then plain), and the names with no file."""
    found: dict[str, Path] = {}
    for stem in FILES:
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                found[stem] = folder / name
                break
    return found, [stem for stem in FILES if stem not in found]


def _load_source(source: _Source, array_cache: Path | None) -> dict[str, np.ndarray] | None:
    """The verified arrays of a complete source; None when it is incomplete or (own cache) had a bad file."""
    found, missing = _find_files(source.folder)
    if missing:
        log = logger.warning if source.explicit else logger.debug
        log(
            "Fashion-MNIST: the %s %s lacks %s; trying the next source.",
            source.kind,
            source.folder,
            ", ".join(missing),
        )
        return None
    arrays: dict[str, np.ndarray] = {}
    decoded_copies = 0
    for stem, sha256 in FILES.items():
        try:
            arrays[stem], from_copy = _load_verified(found[stem], stem, sha256, array_cache)
        except DataFormatError as error:
            if not source.owned:
                raise DataFormatError(f"{error} {source.fix}") from error
            _discard(found[stem], error, source.fix)  # and check the others, so one download fixes all
            continue
        decoded_copies += from_copy
    if len(arrays) < len(FILES):
        return None
    note = f" (decoded copies from {array_cache})" if decoded_copies == len(FILES) else ""
    logger.info("Fashion-MNIST: loaded from the %s %s%s.", source.kind, source.folder, note)
    return arrays


def _load_verified(file: Path, stem: str, sha256: str, array_cache: Path | None) -> tuple[np.ndarray, bool]:
    """The content of ``file``, or its decoded copy: the one made from these very bytes, checked against the same
    checksum. A copy is never used for another file with the same name (see _array_cache)."""
    if array_cache is None:
        return load_idx(file, sha256=sha256), False
    source = source_sha256(file)
    copy = cached_array_path(array_cache, stem, source)
    array = load_cached_array(copy, sha256)
    if array is not None:
        return array, True
    array = load_idx(file, sha256=sha256)
    if source_sha256(file) == source:  # not rewritten while it was decoded: the copy is of these bytes
        store_cached_array(copy, array, stem)
    return array, False


def _discard(file: Path, error: DataFormatError, fix: str) -> None:
    try:
        file.unlink()
    except OSError as unlink_error:
        raise DataFormatError(f"{error} onnxtrain cannot delete it ({unlink_error}). {fix}") from error
    logger.warning("Fashion-MNIST: deleted the corrupt cached file %s (%s); fetching it again.", file, error)


def _download_missing(folder: Path, base_url: str, timeout: float, progress: bool) -> None:
    _, missing = _find_files(folder)
    for stem in missing:
        url = f"{base_url.rstrip('/')}/{stem}.gz"
        logger.info("Fashion-MNIST: downloading %s into %s.", url, folder)
        verify = functools.partial(_verify_download, url=url, sha256=FILES[stem])
        download_file(
            url, folder / f"{stem}.gz", verify=verify, timeout=timeout, progress=progress, hint=_DOWNLOAD_HINT
        )


def _verify_download(file: Path, *, url: str, sha256: str) -> None:
    try:
        load_idx(file, sha256=sha256, name=url)
    except DataFormatError as error:
        raise DataFormatError(f"{error} Nothing was saved; check the mirror (base_url= or {URL_ENV}).") from error


def _to_dataset(images: np.ndarray, labels: np.ndarray) -> Dataset:
    x = np.divide(images, np.float32(255), dtype=np.float32)
    x = x.reshape(*x.shape, 1)
    return Dataset._trusted(x, labels.astype(np.int64), FASHION_MNIST_CLASSES, input_scale=1 / 255)
