"""Which folder training artifacts may be written into (`check_artifacts_folder`): a new or empty one, or one that
holds nothing but artifacts onnxtrain wrote before, so that writing them never replaces or mixes with other files
(a saved model's checkpoint above all)."""

from __future__ import annotations

import os
from pathlib import Path

from onnxtrain._ort_training import CHECKPOINT, EVAL_MODEL, OPTIMIZER_MODEL, TRAINING_MODEL
from onnxtrain.errors import InvalidArgumentError, ModelExistsError, listing
from onnxtrain.saving import unreplaceable_entries

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
        InvalidArgumentError: `directory` is an existing file.
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
