"""Linux renameat2(2) through ctypes: an atomic exchange of two paths, or a rename that never replaces.

Python's os module has neither; saves fall back to plain renames where this raises ENOSYS, EINVAL, ENOTSUP or
EPERM (`_writing._EXCHANGE_UNSUPPORTED`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}


def renameat2(source: Path, target: Path, flags: int) -> None:
    """Linux renameat2(2). Raises OSError: ENOSYS where unavailable, EINVAL where the file system lacks it."""
    function = _libc_renameat2()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(source))
    if function(os.fsencode(source), os.fsencode(target), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(source), None, str(target))


@cache
def _libc_renameat2() -> Callable[[bytes, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "renameat2"):  # glibc >= 2.28
        function = libc.renameat2
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        return lambda source, target, flags: function(_AT_FDCWD, source, _AT_FDCWD, target, flags)
    number = _SYS_RENAMEAT2.get(platform.machine().lower())
    if number is None or not hasattr(libc, "syscall"):
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    return lambda source, target, flags: syscall(
        ctypes.c_long(number),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(source),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(target),
        ctypes.c_uint(flags),
    )
