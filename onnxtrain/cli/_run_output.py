"""The output folder of an `onnxtrain train` run, kept consistent: history.csv is written (atomically) right before
model/ is, so it lists the epochs model/ holds (after a kill between the two, one more, which --resume cuts); the
model's state at the end of its last finished epoch is kept in memory, so that an interrupted run saves that epoch
boundary (and `--resume` continues it exactly); with `--checkpoint-every N` it is saved every N epochs; and a save
the output folder refuses (a full disk) goes to a folder in the system's temporary directory instead, so that the
trained model is not lost."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain._artifacts_folder import check_writable_folder
from onnxtrain.callbacks import Callback, Logs
from onnxtrain.cli._advice import error_text
from onnxtrain.cli._output_folder import DEFAULT_RUNS, HISTORY_FILE, RUN_FILE, output_dir
from onnxtrain.errors import InvalidArgumentError, OnnxtrainError
from onnxtrain.history import History
from onnxtrain.model_files import CONFIG_FILE, SAVED_FILES, saved_files
from onnxtrain.saving import WritingMode, save_files, write_atomically

if TYPE_CHECKING:
    from onnxtrain.sequential import Sequential

SPACE_MARGIN = 1 << 20  # beyond the model's files: history.csv, run.json, curves.png, the file system's own blocks
_DEFAULT_NOTE = " (the default without --output)"


def resumed_history(path: Path | None, epochs_trained: int) -> History:
    """The history.csv at `path` (None: none) of a model that has trained `epochs_trained` epochs, cut to them: the
    last row of each epoch 1..epochs_trained, in epoch order. A history.csv that an older onnxtrain left ahead of its
    model (a killed resume-in-place), or with an epoch twice, reads as the model's own epochs."""
    if path is None:
        return History()
    found = History.from_csv(path)
    last_row = {epoch: i for i, epoch in enumerate(found.epochs) if epoch <= epochs_trained}
    history = History(history={key: [] for key in found.history})
    for epoch in sorted(last_row):
        history.append(epoch, {key: values[last_row[epoch]] for key, values in found.history.items()})
    return history


def model_files_now(model: Sequential) -> dict[str, bytes]:
    """{file name: contents} of model/ as `model.save(..., save_optimizer_state=True)` writes them now."""
    return saved_files(model, model._trainer, save_optimizer_state=True)


def _epochs_in(files: Mapping[str, bytes]) -> int:
    return int(json.loads(files[CONFIG_FILE]).get("epochs_trained", 0))


class RunOutput(Callback):
    """Creates the output folder when training begins, keeps the history and the state of the last epoch boundary,
    and writes model/ with history.csv.

    By then fit has accepted its settings and data, so a run it refuses prints nothing and leaves no folder. A
    resumed run's history continues `history`, that of the run it resumes (cut to the epochs its model has).
    """

    def __init__(
        self,
        requested: str | None,
        model_name: str,
        headline: str,
        history: History | None = None,
        *,
        record: dict[str, Any] | None = None,
        overwrite: bool = False,
        checkpoint_every: int | None = None,
    ):
        self.requested, self.model_name, self.headline = requested, model_name, headline
        self.history = history if history is not None else History()
        self.record = record  # run.json (None: a run that writes none)
        self.overwrite, self.checkpoint_every = overwrite, checkpoint_every
        self.folder: Path | None = None
        self.first_epoch: int | None = None  # the number of the first epoch fit trains (a resumed run's is k + 1)
        self.finished = 0  # the epochs that finished
        self.boundary: dict[str, bytes] | None = None  # model/'s files at the end of the last finished epoch
        self.model_written = False  # whether this run has written model/ (a checkpoint): later saves replace it

    @property
    def target(self) -> int:
        """The epoch count the run trains to."""
        assert self.first_epoch is not None, "fit calls on_epoch_begin first"
        return self.first_epoch - 1 + int(self.params.get("epochs", 0))

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.folder = output_dir(self.requested, self.model_name)
        print(f"{self.headline}; writing to {self.folder}/", flush=True)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        # The state first: a signal between the two leaves a boundary whose epoch is not in the history yet, and
        # history.csv is written up to the epochs of the model saved with it.
        self.boundary = model_files_now(self.model)  # type: ignore[arg-type]
        self.history.append(epoch, logs or {})
        self.finished += 1
        if self.checkpoint_every and self.finished % self.checkpoint_every == 0:
            done = _epochs_in(self.boundary)
            self.save(self.boundary, note={"epochs": done, "checkpoint": f"epoch {done} of {self.target}"})

    def save(
        self,
        files: Mapping[str, bytes] | None = None,
        folder: Path | None = None,
        note: dict[str, Any] | None = None,
    ) -> Path:
        """Write history.csv (its epochs up to those of the model saved) and run.json (the record, updated by
        `note`), then model/ (`files`, else the model as it is now) into `folder` (default: the output folder).
        Returns the model's folder.

        In that order, a kill between the writes leaves a history.csv ahead of model/, which --resume cuts to the
        model's epochs (`resumed_history`); model/ first could leave model/ ahead, with epochs no history.csv lists.

        Raises:
            OSError, OnnxtrainError: the save's (model/, history.csv and run.json are then as they were).
        """
        target = self.folder if folder is None else folder
        assert target is not None, "fit calls on_train_begin before anything is saved"
        files = model_files_now(self.model) if files is None else files  # type: ignore[arg-type]
        replace = self.overwrite or (self.model_written and folder is None)
        mode = WritingMode.OVERRIDE if replace else WritingMode.FAIL_IF_EXISTS
        before = {name: _contents(target / name) for name in (HISTORY_FILE, RUN_FILE)}
        try:
            self.write_history(target, _epochs_in(files))
            if self.record is not None:
                record = {k: v for k, v in self.record.items() if k not in ("checkpoint", "interrupted")}
                text = json.dumps({**record, **(note or {})}, indent=2) + "\n"
                write_atomically(target / RUN_FILE, text.encode())
            directory = save_files(target / "model", files, mode, replaceable=SAVED_FILES, argument="--output")
        except (OSError, OnnxtrainError, KeyboardInterrupt):  # a refused or abandoned save (a kill runs nothing)
            _restore(target, before)
            raise
        if folder is None:
            self.model_written = True
        return directory

    def write_history(self, folder: Path, epochs: int) -> Path:
        """history.csv in `folder`: the epochs up to `epochs` (those of the model saved beside it)."""
        kept = [i for i, epoch in enumerate(self.history.epochs) if epoch <= epochs]
        history = History(
            history={key: [values[i] for i in kept] for key, values in self.history.history.items()},
            epochs=[self.history.epochs[i] for i in kept],
        )
        return history.to_csv(folder / HISTORY_FILE)


def _contents(path: Path) -> bytes | None:
    """The bytes of the file at `path`, or None where there is none (or it cannot be read)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _restore(folder: Path, before: Mapping[str, bytes | None]) -> None:
    """Put back the files of `folder` named in `before` as they were (None: absent), as far as the folder lets us:
    a refused save leaves no history.csv or run.json that claims its epochs."""
    for name, data in before.items():
        try:
            if data is None:
                (folder / name).unlink(missing_ok=True)
            else:
                write_atomically(folder / name, data)
        except OSError:  # the disk that refused the model: its history.csv stays ahead, which --resume cuts
            pass


def check_free_space(output: Path, files: Mapping[str, bytes]) -> None:
    """Refuse a run whose output folder cannot be written (a read-only file system, no permission, an immutable
    folder) or lacks the space for the model it will save (`files`, the model's files now: a save writes as many
    bytes) before anything is trained.

    Raises:
        InvalidArgumentError: the folder (or, when missing, the folder it would be created in) cannot be written, or
            has less free space than the files and `SPACE_MARGIN`.
    """
    check_writable_folder(output, "--output", "trained", _DEFAULT_NOTE if output == DEFAULT_RUNS else "")
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:  # a file system that does not say: the save itself tells
        return
    model = sum(len(data) for data in files.values())
    if free < model + SPACE_MARGIN:
        raise InvalidArgumentError(
            f"--output '{output}' has {_megabytes(free)} free, and this run needs about "
            f"{_megabytes(model + SPACE_MARGIN)}: its model takes {_megabytes(model)} (with its optimizer state), "
            f"and {_megabytes(SPACE_MARGIN)} is kept for history.csv, run.json and curves.png. Free some space or "
            "pass another --output. Nothing was trained."
        )


def _megabytes(size: int) -> str:
    """`size` bytes for a message: MB with one decimal, or KB below a tenth of a MB (a small model is not 0.0 MB)."""
    return f"{size / (1 << 20):.1f} MB" if size >= (1 << 20) // 10 else f"{max(1, round(size / 1024))} KB"


def save_elsewhere(run: RunOutput, files: Mapping[str, bytes], note: dict[str, Any], error: OSError) -> OSError:
    """After the output folder refused the model (`error`: a full disk...), write it with history.csv and run.json
    into a new folder of the system's temporary directory. Returns the error to end the run with: where the model
    went, or that it is lost."""
    try:
        rescue = Path(tempfile.mkdtemp(prefix=f"onnxtrain-{run.model_name}-"))
        run.save(files, folder=rescue, note=note)
    except (OSError, OnnxtrainError) as e:
        return _with_errno(
            f"{error_text(error)} The trained model could not be saved in the temporary directory "
            f"{tempfile.gettempdir()} either ({error_text(e)}): it is lost.",
            error,
        )
    written = f"{HISTORY_FILE}{' and ' + RUN_FILE if run.record is not None else ''}"
    return _with_errno(
        f"{error_text(error)} The trained model was saved to {rescue}/model instead (with {written}): move that "
        "folder where the run belongs before the temporary directory is cleaned.",
        error,
    )


def _with_errno(message: str, error: OSError) -> OSError:
    """An OSError saying `message` with `error`'s errno (the error line shows no "[Errno N]")."""
    result = OSError(message)
    result.errno = error.errno
    return result
