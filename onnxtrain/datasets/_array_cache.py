"""Decoded-array cache: .npy copies of verified IDX files, re-verified against the same SHA-256 on every load.

Loading a .npy and hashing it is about twice as fast as decompressing the .gz (see tools/bench_data.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from onnxtrain.errors import DataFormatError

from ._idx import idx_sha256

logger = logging.getLogger("onnxtrain.datasets")


def cached_array_path(folder: Path, stem: str, sha256: str) -> Path:
    """Where the decoded copy of the IDX file ``stem`` with content ``sha256`` lives."""
    return folder / f"{stem}.{sha256[:16]}.npy"


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


def store_cached_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically; an unwritable folder is skipped (logged at debug level)."""
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
