"""Scratch entries of crash-safe saves: their names, who owns them, and when they are stale.

Every temporary file, staged directory and journal starts with SCRATCH_PREFIX and carries its owner's PID, so a
later save can tell a killed saver's leftovers from a live saver's work. The save lock's file, which exists only
while a save or load holds it, is `_lock.py`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

SCRATCH_PREFIX = ".onnxtrain-"
"""Every temporary file, staged directory and lock file made by a save starts with this."""

STALE_AFTER_SECONDS = 24 * 3600
"""Scratch entries older than this are removed even when their owner PID looks alive (PID reuse)."""

# tmp: garbage once its owner is gone; new: a complete directory to install if the target is missing;
# commit: inside a model directory, the journal of an APPEND save whose files are to be renamed in (_journal.py).
KINDS = ("tmp", "new", "commit")


def scratch_name(kind: str, name: str) -> str:
    return f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-{secrets.token_hex(4)}-{tag(name)}"


def tag(name: str) -> str:
    # Keeps scratch names under NAME_MAX (255 bytes) for long target names.
    if len(name.encode()) <= 200:
        return name
    return "sha1" + hashlib.sha1(name.encode()).hexdigest()


@dataclass(frozen=True)
class ScratchEntry:
    path: Path
    kind: str
    pid: int

    def is_stale(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user
            pass
        try:
            return time.time() - self.path.lstat().st_mtime > STALE_AFTER_SECONDS
        except FileNotFoundError:
            return False


def scratch_entries(folder: Path, name: str | None) -> list[ScratchEntry]:
    """Our scratch entries in `folder`; only those made for `name` unless it is None."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = []
    for entry_name in names:
        if not entry_name.startswith(SCRATCH_PREFIX):
            continue
        parts = entry_name[len(SCRATCH_PREFIX) :].split("-", 3)
        if len(parts) == 4 and parts[0] in KINDS and parts[1].isdigit() and int(parts[1]) > 0:
            if name is None or parts[3] == tag(name):
                entries.append(ScratchEntry(folder / entry_name, parts[0], int(parts[1])))
    return entries


def remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def remove_stale(folder: Path, name: str | None) -> None:
    for entry in scratch_entries(folder, name):
        if entry.kind == "tmp" and entry.is_stale():
            remove_entry(entry.path)


def remove_stale_beside(folder: Path) -> None:
    """Remove the stale "tmp" entries of every name in `folder` (the staged copies and temporary files of killed
    saves of its other entries, which would otherwise stay until those were saved again), unless `folder` holds an
    APPEND's journal: a killed APPEND into `folder` itself names some of them, and only its own recovery may go.
    "new" entries stay: each is a complete directory that its own target's recovery installs."""
    entries = scratch_entries(folder, None)
    if any(entry.kind == "commit" for entry in entries):
        return
    for entry in entries:
        if entry.kind == "tmp" and entry.is_stale():
            remove_entry(entry.path)
