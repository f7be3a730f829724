"""Where the commands write: the output folder of an `onnxtrain train` run (--output, or a new runs/NAME-TIME),
what the run records there for --resume (run.json, history.csv) and how --resume finds them beside a saved model
(`find_saved_run`); and whether a save may write a place at all (`check_output`, `check_replaceable`,
`check_writable_place`), asked before the work whose result goes there."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any, NamedTuple

from onnxtrain._artifacts_folder import check_writable_folder
from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain.cli._config_keys import RECORD_KEYS
from onnxtrain.cli._data import LISTED_ENTRIES, SAVED_MODEL, DatasetLoader, check_saved_model
from onnxtrain.cli._run_config import read_config
from onnxtrain.errors import InvalidArgumentError, ModelExistsError, listing
from onnxtrain.model_files import SAVED_FILES
from onnxtrain.saving import unreplaceable_entries

RUN_FILE = "run.json"  # beside model/: the run's config, data paths absolute, epochs counting all the model trained
HISTORY_FILE = "history.csv"


# --- what a run records, and resuming it ---------------------------------------------------------------------
def run_record(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """`config` as OUTPUT/run.json records it: its data paths made absolute (taken from `base`), so that
    `onnxtrain train --resume` finds the data from anywhere."""
    record = copy.deepcopy({k: v for k, v in config.items() if k not in RECORD_KEYS})  # notes of another run
    if record.get("data"):
        loader = DatasetLoader(base)
        data = record["data"]
        record["data"] = {k: v if k == "validation" and v == "test" else loader.absolute(v) for k, v in data.items()}
    return record


class SavedRun(NamedTuple):
    """A saved model to resume, with the run config and history.csv of the run that wrote it (None: not found)."""

    directory: Path
    record: dict[str, Any] | None
    history: Path | None


def find_saved_run(path: str) -> SavedRun:
    """The saved model --resume names (a run's model/ folder, or the run's folder), and what its run left beside it.

    Raises:
        ModelFileError: not a saved model.
        InvalidArgumentError: a run.json beside it that is not a valid run config.
    """
    directory = saved_model_folder(Path(path))
    check_saved_model(directory, SAVED_MODEL)
    run_folder = directory.parent if directory.name == "model" else None  # the layout `onnxtrain train` writes
    if run_folder is None:
        return SavedRun(directory, None, None)
    record = read_config(run_folder / RUN_FILE, resuming=True) if (run_folder / RUN_FILE).is_file() else None
    history = run_folder / HISTORY_FILE if (run_folder / HISTORY_FILE).is_file() else None
    return SavedRun(directory, record, history)


# --- the output folder -------------------------------------------------------------------------------------
DEFAULT_RUNS = Path("runs")  # where a run without --output makes its folder


def output_dir(requested: str | None, name: str) -> Path:
    """The --output folder, or a new runs/NAME-TIME[-N] folder created atomically (so two runs started in
    the same second get different folders)."""
    if requested:
        Path(requested).mkdir(parents=True, exist_ok=True)
        return Path(requested)
    stem = DEFAULT_RUNS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = stem if n == 1 else stem.with_name(f"{stem.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise InvalidArgumentError(f"could not create a new folder next to '{stem}'; pass --output DIR")


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse an --output whose model/ folder the final save would refuse, before anything is trained or created.

    Raises:
        InvalidArgumentError: --output is a file, or OUTPUT/model exists without --overwrite or is not a folder, or
            --output (or the folder it would be created in) or OUTPUT/model cannot be written (a read-only file
            system, no permission, an immutable folder).
        ModelExistsError: OUTPUT/model holds entries that are not files of a saved model.
        OSError: OUTPUT/model cannot be listed.
    """
    if output.exists() and not output.is_dir():
        raise InvalidArgumentError(f"--output expects a folder. Received: '{output}', which is a file")
    check_replaceable(output / "model", overwrite, SAVED_FILES, "a saved model", "--output", "trained or changed")
    check_writable_folder(output, "--output", "trained")
    if (output / "model").is_dir():  # --overwrite swaps it for the new one: it must take writes too
        check_writable_folder(output / "model", "--output", "trained")


def check_replaceable(
    folder: Path, overwrite: bool, files: Collection[str], holding: str, other: str, untouched: str
) -> None:
    """Refuse a `folder` that a save of `files` (`holding`: "a saved model") would refuse, in the command line's
    words: --overwrite rather than the Python API's writing_mode, and `other` (the option naming another place).
    `untouched` ends the last message ("Nothing was <untouched>.").

    Raises:
        InvalidArgumentError: `folder` exists without --overwrite, or is not a folder.
        ModelExistsError: `folder` holds entries that are not among `files`.
        OSError: `folder` cannot be listed.
    """
    if not os.path.lexists(folder):
        return
    if not overwrite:
        raise InvalidArgumentError(f"'{folder}' already exists. Pass --overwrite to replace it, or another {other}.")
    if not folder.is_dir():
        raise InvalidArgumentError(
            f"'{folder}' is a file, not a folder of {holding}; --overwrite replaces only such a folder. Move it, or "
            f"pass another {other}."
        )
    foreign = unreplaceable_entries(folder, files)
    if foreign:
        raise ModelExistsError(
            f"--overwrite replaces '{folder}' only when it holds nothing but {holding} "
            f"({', '.join(sorted(files))}); it also holds {listing(foreign, LISTED_ENTRIES)}. Move or remove those, "
            f"or pass another {other}. Nothing was {untouched}."
        )


def check_writable_place(path: Path, argument: str, untouched: str) -> None:
    """Refuse a `path` (a file or a folder that a save creates, or replaces with --overwrite) whose folder cannot be
    written (`check_writable_folder`: a read-only file system, no permission, an immutable folder), before the work
    whose result goes there, so that the refusal is one line said once. A missing folder is asked of the nearest
    one above it, where it would be created."""
    if os.path.lexists(path):  # replaced: a save writes its new copy beside it, then swaps the two
        check_writable_folder(path.parent, argument, untouched, f" (the folder of '{path}')")
    else:
        check_writable_folder(path, argument, untouched)
