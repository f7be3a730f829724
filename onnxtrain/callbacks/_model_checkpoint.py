"""ModelCheckpoint: the model (a saved directory) or its weights (a `save_weights` file) at each epoch's end, or
whenever the monitored figure improves; its target is checked when fit starts, before the first step."""

from __future__ import annotations

import math
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from onnxtrain._checks import as_real, check_bool
from onnxtrain._keyword_arguments import refuse_unknown
from onnxtrain.callbacks._callback import Callback, Logs, check_callback_verbose
from onnxtrain.callbacks._monitored import EarlyStoppingMode, _Monitor
from onnxtrain.errors import InvalidArgumentError, ModelExistsError
from onnxtrain.progress import print_once
from onnxtrain.saving import check_replaceable

WEIGHTS_SUFFIX = ".weights.npz"
_MODEL_DIRECTORY_FILES = frozenset({"model.onnx", "config.json", "checkpoint"})  # model_files.SAVED_FILES


class ModelCheckpoint(Callback):
    """Save the model at the end of each epoch, crash-safely: a model directory (`model.save`, which `load_model`
    reads), or with `save_weights_only` a weights file (`model.save_weights`, which `load_weights` reads).

    Args:
        directory: where to save (Keras' `filepath` is the same argument, by that name too); may contain format
            fields of the epoch and its figures, e.g. "checkpoints/epoch-{epoch:02d}-{val_loss:.3f}"; without
            fields one target is replaced each time. A model directory, or with `save_weights_only` a file ending
            in ".weights.npz". Keras' ".keras" and ".h5" files are refused: onnxtrain writes a directory (no
            suffix), or numpy's .npz weights (Keras' .weights.h5 needs h5py).
        monitor / mode / min_delta: the figure that decides "best" (with `save_best_only`); `mode` as
            EarlyStopping's ("auto": min for a loss, a compiled metric's own direction).
        save_best_only: save only when `monitor` improves on the best so far (which persists across fit calls).
        save_optimizer_state: include the optimizer state, so training can resume exactly (model directories).
        save_weights_only: Keras' argument: write `model.save_weights` files instead of model directories.
        verbose: 1 prints each save (and, with `save_best_only`, each epoch that does not improve), as Keras.
        save_freq: "epoch" (Keras' default) only; a number of batches is refused.
        initial_value_threshold: Keras' argument: the best value to beat at first (None: any value is better).

    `last_saved` holds the path written last (or None). What the fit's epoch logs will not hold (a monitored
    figure with `save_best_only`, a field of `directory`) and a target that cannot be written (a file where a
    directory goes, a folder holding other files, which a save would replace, a parent that is a file or not
    writable) are refused when `fit` starts, before its first step.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str | EarlyStoppingMode = "auto",
        min_delta: float = 0.0,
        save_optimizer_state: bool = False,
        *,
        filepath: str | Path | None = None,
        save_weights_only: bool = False,
        verbose: int = 0,
        save_freq: str = "epoch",
        initial_value_threshold: float | None = None,
        **unknown: Any,
    ):
        refuse_unknown("ModelCheckpoint", unknown, ModelCheckpoint.__init__, renamed={})  # saveBestOnly, ...
        if directory is not None and filepath is not None:
            raise InvalidArgumentError(
                "ModelCheckpoint takes directory=... or Keras' filepath=..., not both (they are the same argument)."
            )
        path = directory if filepath is None else filepath
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise InvalidArgumentError(
                f"ModelCheckpoint(directory=...) (Keras: filepath=...) expects a path. Received: {path!r}"
            )
        self.directory = os.fspath(path)
        self.save_weights_only = check_bool("ModelCheckpoint", "save_weights_only", save_weights_only)
        self.save_optimizer_state = check_bool("ModelCheckpoint", "save_optimizer_state", save_optimizer_state)
        _check_suffix(self.directory, self.save_weights_only, self.save_optimizer_state)
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, min_delta)
        self.monitor = monitor
        self.save_best_only = check_bool("ModelCheckpoint", "save_best_only", save_best_only)
        self.verbose = check_callback_verbose("ModelCheckpoint", verbose)
        if save_freq != "epoch":
            raise InvalidArgumentError(
                "ModelCheckpoint(save_freq=...) saves at each epoch's end only: 'epoch' (Keras' default). Received: "
                f"save_freq={save_freq!r}. To save more often, train shorter epochs."
            )
        threshold = as_real(initial_value_threshold)
        if initial_value_threshold is not None and (threshold is None or not math.isfinite(threshold)):
            raise InvalidArgumentError(
                "ModelCheckpoint(initial_value_threshold=...) expects a finite number or None. Received: "
                f"initial_value_threshold={initial_value_threshold!r}"
            )
        self.initial_value_threshold = threshold
        self.last_saved: Path | None = None
        # The best value persists across fit calls, like the model being trained; set once the mode is known.
        self.best: float | None = None
        self._set_initial_best()

    @property
    def filepath(self) -> str:
        """Keras' name of `directory`."""
        return self.directory

    @property
    def mode(self) -> str:
        """ "min" or "max"; "auto" (a figure other than the loss) until fit starts and reads the direction."""
        return self._monitor.mode

    def _set_initial_best(self) -> None:
        if self.best is None and self._monitor.mode != "auto":  # NaN never improves on an infinity
            start = math.inf if self._monitor.mode == "min" else -math.inf
            self.best = start if self.initial_value_threshold is None else self.initial_value_threshold

    def log_keys_read(self) -> list[tuple[str, str]]:
        reader = f"ModelCheckpoint(directory={self.directory!r})"
        named = [field.split(".")[0].split("[")[0] for field in _fields(self.directory)]
        keys = [(key, reader) for key in dict.fromkeys(named) if key and not key.isdigit() and key != "epoch"]
        return ([self._monitor.read()] if self.save_best_only else []) + keys

    def check_fit_start(self, directions: Mapping[str, str]) -> None:
        """The monitored figure's direction (mode "auto", with `save_best_only`), and the target: refused now
        rather than after the first epoch."""
        if self.save_best_only:
            self._monitor.resolve(directions)
            self._set_initial_best()
        _check_target(self.directory, self.save_weights_only)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.last_saved = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            value = self._monitor.value(logs)
            if value is None:  # an epoch without validation (validation_freq): nothing to compare
                return
            if not self._monitor.improves(value, self.best):
                if self.verbose:
                    print_once(f"Epoch {epoch}: {self.monitor} did not improve from {_figure(self.best)}")
                return
            previous, self.best = self.best, value
        try:
            target = Path(self.directory.format(epoch=epoch, **logs))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:  # the field, its format
            raise InvalidArgumentError(
                f"ModelCheckpoint(directory={self.directory!r}) has a field the epoch logs cannot "
                f"fill ({e}); available: {['epoch', *logs]}."
            ) from e
        if self.verbose:
            what = "weights" if self.save_weights_only else "model"
            change = (
                f"{self.monitor} improved from {_figure(previous)} to {_figure(value)}, " if self.save_best_only else ""
            )
            print_once(f"Epoch {epoch}: {change}saving {what} to {target}")
        if self.save_weights_only:
            self.last_saved = self.model.save_weights(target)
        else:
            self.last_saved = self.model.save(
                target, writing_mode="override", save_optimizer_state=self.save_optimizer_state
            )


def _figure(value: float | None) -> str:
    return "None" if value is None else f"{value:.5f}"


def _fields(path: str) -> list[str]:
    """The format fields of `path` ("epoch", "val_loss:.3f" ...); none for an unbalanced brace, which the first
    epoch's format names."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(path) if field is not None]
    except ValueError:
        return []


def _check_suffix(path: str, weights_only: bool, optimizer_state: bool) -> None:
    """Refuse, at construction, a target of another kind than what the checkpoint writes: Keras' .keras and .h5
    files, a weights file for a model directory, or the other way round."""
    lower = path.lower()
    keras_file = lower.endswith((".keras", ".h5", ".hdf5"))
    stem = path[: -len(Path(path).suffix)] if keras_file else path
    stem = stem[: -len(".weights")] if stem.lower().endswith(".weights") else stem
    if weights_only:
        if optimizer_state:
            raise InvalidArgumentError(
                "ModelCheckpoint(save_weights_only=True, save_optimizer_state=True) asks for two things: a weights "
                "file holds the weights only. Save model directories (save_weights_only=False) to keep the "
                "optimizer state."
            )
        if not lower.endswith(WEIGHTS_SUFFIX):
            why = (
                "Keras' HDF5 (.weights.h5) needs h5py, which onnxtrain does not use; "
                if lower.endswith((".h5", ".hdf5", ".keras"))
                else ""
            )
            raise InvalidArgumentError(
                f"ModelCheckpoint(filepath=..., save_weights_only=True) writes model.save_weights files, numpy's "
                f"{WEIGHTS_SUFFIX} ({why}one array per parameter, read back by load_weights). Received: "
                f"{path!r}. Use e.g. {stem + WEIGHTS_SUFFIX!r}."
            )
        return
    if keras_file or lower.endswith(".npz"):
        kind = "Keras' .keras (or .h5) model file" if keras_file else "a weights file (.npz)"
        raise InvalidArgumentError(
            f"ModelCheckpoint(filepath={path!r}) names {kind}, but onnxtrain checkpoints a model directory "
            "(model.onnx, config.json, checkpoint; load_model reads it). Name a directory, e.g. "
            f"{stem.removesuffix('.weights')!r}, or pass save_weights_only=True with a path ending in "
            f"{WEIGHTS_SUFFIX!r} to save the weights alone."
        )


def _check_target(path: str, weights_only: bool) -> None:
    """Refuse, when fit starts, a target a save at an epoch's end could not write: an existing file where a model
    directory goes (or a folder where a weights file goes), a folder holding other files than a saved model's
    (which the save would replace), or a parent that is a file or not writable. A path with format fields is
    checked up to its first field.

    Raises:
        InvalidArgumentError: a file or folder in the way, or a parent that cannot be written.
        ModelExistsError: a model directory target holding other files.
    """
    owner = f"fit: ModelCheckpoint(filepath={path!r})"
    fixed = not _fields(path) and "{" not in path
    target = Path(os.path.expanduser(path.split("{")[0]))
    if fixed:
        if weights_only and target.is_dir():
            raise InvalidArgumentError(
                f"{owner} writes a weights file there, but '{target}' is a folder. Name a file in it, e.g. "
                f"'{target / ('checkpoint' + WEIGHTS_SUFFIX)}'. Nothing was trained."
            )
        if not weights_only and os.path.lexists(target) and not target.is_dir():
            raise InvalidArgumentError(
                f"{owner} saves a model directory there, but '{target}' is an existing file. Remove it or name "
                "another directory. Nothing was trained."
            )
        if not weights_only and target.is_dir():
            try:
                check_replaceable(target, _MODEL_DIRECTORY_FILES)
            except ModelExistsError as e:  # what each epoch's save would refuse
                problem = str(e).removesuffix(" Nothing was changed.")
                raise ModelExistsError(
                    f"{owner} saves over '{target}' at each epoch's end. {problem} Nothing was trained."
                ) from None
    parent = target.parent if fixed or not path.split("{")[0].endswith(("/", os.sep)) else target
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidArgumentError(
            f"{owner} cannot create its target: '{parent}' is a file, not a folder. Name a path in a folder. "
            "Nothing was trained."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidArgumentError(
            f"{owner} cannot write in '{parent}' (no write permission). Name a path in a writable folder. Nothing "
            "was trained."
        )
