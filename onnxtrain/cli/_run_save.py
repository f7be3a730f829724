"""A trained run's files written into its output folder (model/, history.csv, run.json, curves.png), and after Ctrl-C
or SIGTERM the model as its last finished epoch left it, so that `train --resume` continues it exactly."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from onnxtrain.cli._output_folder import HISTORY_FILE, RUN_FILE
from onnxtrain.cli._run_output import RunOutput, save_elsewhere
from onnxtrain.cli._stopping import finishing_the_save, stop_name, stop_status
from onnxtrain.distributed._launch import say_last
from onnxtrain.errors import OnnxtrainError
from onnxtrain.history import History
from onnxtrain.model_files import CONFIG_FILE


def _save_run(run: RunOutput, files: dict[str, bytes], note: dict[str, Any], written: list[tuple[str, str]]) -> None:
    """Write history.csv, run.json (updated by `note`), model/ (`files`: `RunOutput.save` writes them in that
    order) and curves.png into the output folder, adding to `written` what was written; model/ where the output
    folder refuses it (a full disk): into a folder of the temporary directory.

    Raises:
        OSError: the output folder refused the model (saying where it went instead).
    """
    assert run.folder is not None, "fit calls on_train_begin"
    try:
        run.save(files, note=note)
    except OSError as e:
        raise save_elsewhere(run, files, note, e) from e
    written.append(("model", f"{run.folder / 'model'}/"))
    if run.record is not None:
        written.append(("config", str(run.folder / RUN_FILE)))
    csv_path, png_path = run.folder / HISTORY_FILE, run.folder / "curves.png"
    written.append(("history", str(csv_path)))
    if not run.history.epochs:
        return
    try:
        History.from_csv(csv_path).plot(png_path)
        written.append(("curves", str(png_path)))
    except ImportError as e:
        print(f"onnxtrain train: curves skipped: {e}", file=sys.stderr)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _print_written(written: list[tuple[str, str]]) -> None:
    print("Wrote:")
    for label, path in written:
        print(f"  {label:<8} {path}")


def _save_interrupted(args: argparse.Namespace, run: RunOutput) -> int:
    """After Ctrl-C or SIGTERM in fit: save the model as it was when its last finished epoch ended (with the
    history and run.json up to it), so that `train --resume` continues it exactly as the run would have gone on.
    Returns 130 after Ctrl-C, 143 after SIGTERM."""
    assert run.folder is not None and run.boundary is not None, "an epoch has finished"
    output, target, status = run.folder, run.target, stop_status()
    done = int(json.loads(run.boundary[CONFIG_FILE])["epochs_trained"])
    how = stop_name()
    print(
        f"{_capitalized(how)} in epoch {done + 1} of {target}; saving the model as it was when epoch {done} ended",
        flush=True,
    )
    note = {"epochs": done, "interrupted": f"after epoch {done} of {target}" + (" (SIGTERM)" if status != 130 else "")}
    written: list[tuple[str, str]] = []
    try:
        with finishing_the_save(args.command):
            _save_run(run, run.boundary, note, written)
    except (KeyboardInterrupt, OnnxtrainError, OSError, ValueError) as e:
        cause = "again while saving" if isinstance(e, KeyboardInterrupt) else f"saving failed: {e}"
        kept = [path for label, path in written if label in ("model", "config")]
        saved = (
            f"only {' and '.join(kept)} {'was' if len(kept) == 1 else 'were'} saved" if kept else "nothing was saved"
        )
        print(
            f"onnxtrain {args.command}: {how} after epoch {done} of {target}, and {cause}: " + " ".join(saved.split()),
            file=sys.stderr,
        )
        return status
    _print_written(written)
    sys.stdout.flush()
    say_last(  # (under --workers, through the launcher: the job's abort could lose a line printed here)
        f"onnxtrain {args.command}: {how} after epoch {done} of {target}; saved the model as it was when epoch "
        f"{done} ended (the steps of epoch {done + 1} are not in it) to {output}/model: onnxtrain train --resume "
        f"{output} --epochs {max(target - done, 1)}{'' if run.record is not None else ' --data DATA'} continues it "
        "exactly as the run would have gone on"
    )
    return status
