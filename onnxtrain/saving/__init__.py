"""The crash-safe file layer: atomic files, atomic directory swaps, and recovery after a crash.

A model directory is only ever seen with a complete old or complete new file set, whatever kills the saver:
FAIL_IF_EXISTS and OVERRIDE install a staged directory with one atomic rename or exchange; APPEND into an existing
directory commits a journal before it renames its files in, and a save killed among those renames is finished by
the next save or load (a program reading the folder by other means could see that moment's mix). Scratch entries
start with `.onnxtrain-` and carry the owner's PID, so stale ones can be told from live ones.

Modules: `_writing` (the writing modes and saves), `_replaceable` (what OVERRIDE may delete), `_recovery` (finishing
killed saves, reading with saves held off), `_journal` (APPEND's commit point), `_scratch` (scratch names and
staleness), `_lock` (the save lock, a file that exists only while a save or load holds it), `_fsync` (durable
writes) and `_renameat2` (Linux's atomic exchange).
"""

from onnxtrain.saving._fsync import FileData
from onnxtrain.saving._recovery import (
    list_model_files,
    reading_model,
    recover_interrupted_save,
    resolve_model_directory,
)
from onnxtrain.saving._replaceable import unreplaceable_entries
from onnxtrain.saving._scratch import SCRATCH_PREFIX, STALE_AFTER_SECONDS
from onnxtrain.saving._writing import (
    WritingMode,
    check_replaceable,
    created_directories,
    save_files,
    write_atomically,
)

__all__ = [
    "SCRATCH_PREFIX",
    "STALE_AFTER_SECONDS",
    "FileData",
    "WritingMode",
    "check_replaceable",
    "created_directories",
    "list_model_files",
    "reading_model",
    "recover_interrupted_save",
    "resolve_model_directory",
    "save_files",
    "unreplaceable_entries",
    "write_atomically",
]
