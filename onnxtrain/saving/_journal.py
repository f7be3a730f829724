"""The journal of an APPEND save: replacing some files of an existing model directory, all of them or none,
whatever kills the saver.

The new files are written beside the old ones under scratch names. Then a journal naming each scratch file and the
file it replaces appears with one atomic rename: the commit point. Before it, a killed save leaves only scratch
files (garbage, removed later); after it, the renames are finished by this saver or, if it is killed among them, by
the next save or load of the directory (`finish_appends`, under the lock). The journal is the scratch entry
`.onnxtrain-commit-<pid>-...` inside the directory: JSON mapping each scratch file name to the name it replaces.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from onnxtrain.errors import ModelFileError
from onnxtrain.saving._fsync import fsync_directory, write_new_file
from onnxtrain.saving._scratch import SCRATCH_PREFIX, remove_entry, scratch_entries, scratch_name


def is_plain_name(name: object) -> bool:
    """Whether `name` is a str naming an entry of a folder: not empty, "." or "..", without a separator or NUL."""
    if not isinstance(name, str) or name in ("", ".", ".."):
        return False
    return not any(c in name for c in ("/", "\0", os.sep, os.altsep or "/"))


def rename_in(target: Path, renames: Mapping[str, str]) -> None:
    """Lock held: rename each scratch file of `target` that `renames` names over the file it replaces, all of them
    or none, whatever kills us (see the module docstring).

    A failure before the commit point removes the journal's draft and the scratch files, so the directory is as
    it was; one after it leaves the journal for the next save or load to finish.
    """
    journal = target / scratch_name("commit", target.name)
    draft = target / scratch_name("tmp", journal.name)
    committed = False
    try:
        _refuse_folders(target, renames.values())  # a rename over a folder would fail after the commit point
        write_new_file(draft, json.dumps(dict(renames)).encode())
        os.rename(draft, journal)  # the commit point
        committed = True
        _finish(target, journal)
    finally:
        if not committed:
            for temp in (*renames, draft.name):
                remove_entry(target / temp)


def _refuse_folders(target: Path, names: Iterable[str]) -> None:
    """A rename over a folder fails (over a file, a symlink or a FIFO it does not): refuse one before committing."""
    for name in names:
        path = target / name
        if os.path.lexists(path) and stat.S_ISDIR(os.lstat(path).st_mode):
            raise IsADirectoryError(
                errno.EISDIR, f"a folder named '{name}' is in the way: move or remove it, or save elsewhere", str(path)
            )


def finish_appends(target: Path) -> bool:
    """Lock held: finish the APPEND saves killed after their commit point. Returns whether there were any."""
    journals = [e.path for e in scratch_entries(target, None) if e.kind == "commit"]
    for journal in journals:
        _finish(target, journal)
    return bool(journals)


def _finish(target: Path, journal: Path) -> None:
    """Lock held: rename the journal's scratch files over the files they replace, then drop the journal.

    Safe to repeat after a kill at any point: a scratch file already renamed is simply gone.
    """
    try:
        renames = json.loads(journal.read_bytes())
        # Only our own scratch files may be renamed, and only over plain names that are not scratch entries.
        valid = isinstance(renames, dict) and all(
            is_plain_name(k) and k.startswith(SCRATCH_PREFIX) and is_plain_name(v) and not v.startswith(SCRATCH_PREFIX)
            for k, v in renames.items()
        )
    except (ValueError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise ModelFileError(
            f"The journal of an interrupted save, '{journal}', is damaged, so '{target}' may hold a mix of old and "
            "new files. Delete the journal, then save the model again."
        )
    for temp, name in renames.items():
        if os.path.lexists(target / temp):
            os.replace(target / temp, target / name)
    fsync_directory(target)
    os.unlink(journal)
    fsync_directory(target)
