"""Downloading one file: stream to a temporary file beside the target, show progress, verify, rename.

A failed or unverified download leaves nothing behind; network failures raise a DownloadError naming the URL.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from onnxtrain.errors import DownloadError

_CHUNK = 1 << 16


def download_file(
    url: str,
    target: Path,
    *,
    verify: Callable[[Path], None],
    timeout: float = 30.0,
    progress: bool = True,
    hint: str = "",
) -> None:
    """Fetch ``url`` into ``target`` (created atomically, only once ``verify`` accepted the bytes).

    Args:
        url: what to fetch (http, https or file).
        target: where the verified file goes; its folder is created.
        verify: raises (e.g. DataFormatError) when the downloaded file is not the expected one.
        timeout: seconds to wait for the connection and for each read.
        progress: show a progress bar (only when stderr is a terminal).
        hint: appended to a DownloadError, e.g. how to get the file another way.

    Raises:
        DownloadError: HTTP error, refused connection, time-out or connection closed early.
        Whatever ``verify`` raises; the temporary file is removed in every failure.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared cache_dir from other users
        with os.fdopen(descriptor, "wb") as output:
            _stream(url, output, timeout=timeout, progress=progress, label=target.name, hint=hint)
        verify(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _stream(url: str, output: BinaryIO, *, timeout: float, progress: bool, label: str, hint: str) -> None:
    suffix = f" {hint}" if hint else ""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"Could not download {url}: HTTP {error.code} {error.reason}.{suffix}") from error
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            reason = f"timed out after {timeout} s"
        raise DownloadError(f"Could not download {url}: {reason}.{suffix}") from error
    except (TimeoutError, OSError, http.client.HTTPException, ValueError) as error:
        raise DownloadError(f"Could not download {url}: {_describe(error, timeout)}.{suffix}") from error
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        show = progress and sys.stderr.isatty()
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not show, leave=False) as bar:
            try:
                while chunk := response.read1(_CHUNK):  # what has arrived: a time-out loses no count
                    output.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (TimeoutError, OSError, http.client.HTTPException) as error:
                raise DownloadError(
                    f"Could not download {url}: {_describe(error, timeout)} after {received} bytes.{suffix}"
                ) from error
    if total is not None and received != total:
        raise DownloadError(
            f"Could not download {url}: the connection closed after {received} of {total} bytes.{suffix}"
        )


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout} s"
    if isinstance(error, http.client.IncompleteRead):
        return "the connection closed early"
    return str(error) or type(error).__name__
