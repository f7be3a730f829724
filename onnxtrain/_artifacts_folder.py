"""Which folder training artifacts may be written into (`check_artifacts_folder`): a new or empty one, or one that
holds nothing but artifacts onnxtrain wrote before, so that writing them never replaces or mixes with other files
(a saved model's checkpoint above all); and whether a folder can be written at all (`check_writable_folder`, which
`onnxtrain train` runs on its --output too), asked before the work whose result would go there."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from onnxtrain._ort_training import CHECKPOINT, EVAL_MODEL, OPTIMIZER_MODEL, TRAINING_MODEL
from onnxtrain.errors import InvalidArgumentError, ModelExistsError, listing
from onnxtrain.saving import SCRATCH_PREFIX, unreplaceable_entries

ORT_TRAINING_FILES = (TRAINING_MODEL, EVAL_MODEL, OPTIMIZER_MODEL, CHECKPOINT)
"""What `generate_artifacts` and the ort-training engine write."""
RESUME_CHECKPOINT = "resume_checkpoint"
"""The ort-training engine's copy of the checkpoint it resumes from (`load_model` of a save with optimizer state)."""
TRAIN_STEP_GRAPH, EVAL_GRAPH = "train_step.onnx", "eval.onnx"
"""What the portable engine writes (`PortableEngine.save_graphs`)."""
ARTIFACT_FILES = frozenset({*ORT_TRAINING_FILES, RESUME_CHECKPOINT, TRAIN_STEP_GRAPH, EVAL_GRAPH})
"""Every file an artifacts folder may already hold: writing artifacts replaces only these."""

# What `load_model` reads a folder as a saved model by: model_files' CONFIG_FILE and MODEL_FILE, named here because
# model_files imports the engines, which import this module.
_SAVED_MODEL_FILES = ("config.json", "model.onnx")
_LISTED_ENTRIES = 5  # a refusal names at most this many entries of a folder


def check_artifacts_folder(directory: str | os.PathLike[str], argument: str) -> Path:
    """Refuse a `directory` that training artifacts must not be written into, before anything is written.

    It may be missing (it is created), empty, or hold nothing but regular files named in `ARTIFACT_FILES`
    (written there by an earlier compile or `generate_artifacts`; they are replaced). onnxtrain's scratch entries
    are ignored. `argument` names the path as the caller took it ("compile(artifacts_dir=...)", "OUTDIR").

    Returns:
        `directory` as a Path.
    Raises:
        InvalidArgumentError: `directory` is an existing file, or cannot be written (`check_writable_folder`).
        ModelExistsError: it holds anything else, e.g. a saved model (config.json, model.onnx, checkpoint), whose
            checkpoint the ort-training engine would overwrite; the message names the entries and what to do.
        OSError: the folder cannot be listed.
    """
    folder = Path(directory)
    if os.path.lexists(folder) and not folder.is_dir():
        raise InvalidArgumentError(
            f"{argument} expects a directory path, but '{folder}' is an existing file. Remove the file or choose "
            "another directory."
        )
    foreign = unreplaceable_entries(folder, ARTIFACT_FILES)
    if not foreign:
        check_writable_folder(folder, argument, "written")
        return folder
    held = sorted(os.listdir(folder))
    if all(name in held for name in _SAVED_MODEL_FILES):
        what = f"a saved model ({listing(held, _LISTED_ENTRIES)})"
    else:
        what = f"{listing(foreign, _LISTED_ENTRIES)}, which {'is' if len(foreign) == 1 else 'are'} not onnxtrain's"
        what += " training artifacts"
    elsewhere = folder.absolute()
    elsewhere = elsewhere.with_name(f"{elsewhere.name}_artifacts")
    raise ModelExistsError(
        f"{argument} got '{folder}', which holds {what}: writing training artifacts there would replace or mix with "
        "those files. It expects a new or empty directory, or one holding nothing but artifacts onnxtrain wrote "
        f"({', '.join(sorted(ARTIFACT_FILES))}), which are replaced. Pass another directory (e.g. '{elsewhere}'), "
        "or move or delete those entries first. Nothing was written."
    )


# Why a folder refuses writes, by the errno of the probe (or of a read-only mount), and what to do instead.
_UNWRITABLE = {
    errno.EROFS: ("is on a read-only file system", "pass a folder on a writable file system"),
    errno.EACCES: ("is not writable (permission denied)", "pass a folder you can write to, or fix its permissions"),
    errno.EPERM: (
        "is not writable (operation not permitted: an immutable folder, see lsattr, or a security policy)",
        "pass a folder you can write to",
    ),
    errno.ENOSPC: ("is on a full disk (no space left on device)", "free some space or pass another folder"),
    errno.EDQUOT: ("is on a disk whose quota is exceeded", "free some space or pass another folder"),
}


def check_writable_folder(folder: str | os.PathLike[str], argument: str, untouched: str, note: str = "") -> None:
    """Refuse a `folder` that cannot be written before the work whose result goes there: a read-only file system,
    no permission, an immutable folder. A missing folder is asked of the nearest existing folder above it, where it
    would be created. `argument` names the path as the caller took it ("--output"), `note` follows the path in the
    message (" (the default)"); `untouched` ends the message ("Nothing was <untouched>.").

    The probe (`_probe_write`) creates and removes one empty scratch folder there, as a save would create its
    staged folder: permission bits, ACLs, immutable flags and mounts all answer it, also for root.

    Raises:
        InvalidArgumentError: the folder cannot be written; the message names it and why (the OSError is its
            cause).
    """
    folder = Path(folder)
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():  # a file on the way: the callers' own checks name it
        return
    try:
        if _is_read_only_mount(existing):  # said before anything is tried (a probe could fail otherwise first)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(existing))
        _probe_write(existing)
    except OSError as e:
        why, fix = _UNWRITABLE.get(e.errno or 0, (f"cannot be written ({e.strerror or e})", "pass another folder"))
        place = f"the working folder '{Path.cwd()}'" if existing == Path(".") else f"'{existing}'"
        where = "" if existing == folder else f"cannot be created: {place} "
        raise InvalidArgumentError(
            f"{argument} got '{folder}'{note}, which {where}{why}; {fix}. Nothing was {untouched}."
        ) from e


def _is_read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows), or a file system that does not say: the probe tells
        return False


def _probe_write(folder: Path) -> None:
    """Create and remove an empty scratch folder in `folder` (a scratch name: a killed probe's leftover is
    onnxtrain's to clean up, and no check counts it as the user's). A module global, so tests can refuse it.

    Raises:
        OSError: the folder refused it.
    """
    probe = folder / f"{SCRATCH_PREFIX}tmp-{os.getpid()}-{secrets.token_hex(4)}-write-probe"
    os.mkdir(probe)
    os.rmdir(probe)
