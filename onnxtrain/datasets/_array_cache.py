"""Decoded-array cache: .npy copies of verified IDX files, each serving only the very file it was decoded from.

A copy is named by the SHA-256 of its source file's bytes as stored (.gz or plain), so a file that was truncated,
edited or replaced, even with its size and timestamps kept, finds no copy and is decoded and verified again; the
copy itself is re-verified against the content's SHA-256 on every load. Hashing the source costs a small part of
a warm load and far less than decoding the .gz again (docs/measurements.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from onnxtrain.errors import DataFormatError

from ._idx import idx_sha256

logger = logging.getLogger("onnxtrain.datasets")


def source_sha256(file: Path) -> str:
    """SHA-256 of ``file``'s bytes as stored: the identity of the file a decoded copy was made from."""
    with open(file, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def cached_array_path(folder: Path, stem: str, source: str) -> Path:
    """Where the decoded copy of the IDX file ``stem`` whose bytes have the SHA-256 ``source`` lives."""
    return folder / f"{stem}.{source}.npy"


def load_cached_array(path: Path, sha256: str) -> np.ndarray | None:
    """The array stored at ``path`` if it is the IDX content ``sha256``; else None (a bad copy is deleted)."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
        if idx_sha256(array) == sha256:
            return array
        reason = "its content differs from the verified file"
    except (OSError, ValueError, EOFError, DataFormatError) as error:
        reason = str(error)
    logger.warning("Discarding the decoded copy %s: %s.", path, reason)
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def store_cached_array(path: Path, array: np.ndarray, stem: str) -> None:
    """Write ``array`` to ``path`` atomically, and delete the other copies of ``stem`` (one copy per file name,
    however many sources: at most the size of the data set). An unwritable folder is skipped (logged at debug
    level).
    """
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        temporary = Path(name)
        os.chmod(temporary, 0o644)  # like a normally created file, not mkstemp's 0600
        with os.fdopen(descriptor, "wb") as output:
            np.save(output, array, allow_pickle=False)
        os.replace(temporary, path)
    except OSError as error:
        logger.debug("Not caching decoded arrays at %s: %s", path, error)
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return
    for other in path.parent.glob(f"{stem}.*.npy"):  # another source's copy, or one named by content (older)
        if other != path:
            with contextlib.suppress(OSError):
                other.unlink()
