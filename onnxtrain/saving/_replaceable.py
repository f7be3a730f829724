"""What an OVERRIDE save may delete: a folder's entries other than regular files of a saved model and onnxtrain's
scratch entries (`unreplaceable_entries`), and the refusal that names them. `_writing.check_replaceable` is the
public early check; `save_files` makes the same check again under the save lock.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path

from onnxtrain.errors import ModelExistsError, listing
from onnxtrain.saving._scratch import scratch_entries

LISTED_ENTRIES = 5  # a refusal names at most this many entries of a folder


def unreplaceable_entries(target: Path, replaceable: Collection[str]) -> list[str]:
    """The entries of the folder `target` that an OVERRIDE with `replaceable` would refuse to delete: all but
    regular files named in `replaceable` and onnxtrain's scratch entries, sorted, folders with a trailing "/".

    A missing `target`, or one that is not a folder, has none. Nothing is locked, created or changed.

    Raises:
        OSError: the folder cannot be listed.
    """
    if not target.is_dir():
        return []
    names = sorted(os.listdir(target))
    ours = {entry.path.name for entry in scratch_entries(target, None)}
    unexpected = []
    for name in names:
        if name in ours:
            continue
        try:
            mode = os.lstat(target / name).st_mode
        except FileNotFoundError:  # removed since the listing
            continue
        if name not in replaceable or not stat.S_ISREG(mode):
            unexpected.append(f"{name}/" if stat.S_ISDIR(mode) else name)
    return unexpected


def refuse_unreplaceable(target: Path, replaceable: Collection[str]) -> None:
    """`check_replaceable` on an absolute path; a failed listing raises the plain OSError."""
    unexpected = unreplaceable_entries(target, replaceable)
    if unexpected:
        raise ModelExistsError(
            f"Could not save to '{target}' with writing_mode=WritingMode.OVERRIDE: it holds "
            f"{listing(unexpected, LISTED_ENTRIES)}, which are "
            "not files of a saved model, and OVERRIDE would delete them with the rest of the directory. OVERRIDE "
            f"replaces only an empty directory or one holding nothing but {sorted(replaceable)}. Choose another "
            f"directory (e.g. a new folder inside it, '{target / 'saved_model'}'), or move or remove those entries "
            "first. Nothing was changed."
        )
