"""The weights-only file of `save_weights` / `load_weights`: an .npz of every parameter by its graph name
(`dense_1.kernel`), written crash-safely (`saving.write_atomically`), read with every array's header checked
before any array is allocated (`_npy_file.read_npz`, never a pickle), and matched to a model by name and shape.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from onnxtrain._npy_file import read_npz
from onnxtrain._onnx_tensors import MAX_MODEL_BYTES
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelExistsError, ModelFileError, listing
from onnxtrain.saving import write_atomically

SUFFIX = ".npz"


def weights_path(action: str, path: object) -> Path:
    """`path` as a Path ending in .npz; anything else refused, Keras' `.weights.h5` with why.

    Raises:
        InvalidTypeError: not a path.
        InvalidArgumentError: another suffix (Keras' HDF5 files included).
    """
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise InvalidTypeError(f"{action}(path=...) expects a file path ending in {SUFFIX}. Received: {path!r}")
    target = Path(os.path.expanduser(os.fspath(path)))
    if target.suffix == SUFFIX:
        return target
    if target.suffix.lower() in (".h5", ".hdf5", ".keras"):
        why = (
            "Keras writes HDF5 (.weights.h5) with h5py; onnxtrain writes numpy's .npz instead, with no h5py "
            "dependency (one array per parameter, keyed by its name, e.g. 'dense_1.kernel')"
        )
    elif target.is_dir():
        raise InvalidArgumentError(
            f"{action}(path=...) expects a file path ending in {SUFFIX}. Received: '{path}', a folder; the weights "
            "of a saved model directory are load_model(folder).get_weights(), which set_weights takes."
        )
    else:
        why = "the weights file is numpy's .npz, one array per parameter keyed by its name (e.g. 'dense_1.kernel')"
    name = target.name.removesuffix(target.suffix).removesuffix(".weights")
    raise InvalidArgumentError(
        f"{action}(path=...) expects a path ending in {SUFFIX}. Received: '{path}': {why}. Use e.g. "
        f"'{target.with_name(name + '.weights' + SUFFIX)}'."
    )


def write_weights(path: Path, weights: Mapping[str, np.ndarray], overwrite: bool) -> Path:
    """Write `weights` to `path` as an .npz (what `np.savez` writes), crash-safely: a reader sees the old file or
    the complete new one.

    Raises:
        ModelExistsError: `path` exists and `overwrite` is False.
        InvalidArgumentError: `path` is a folder.
    """
    if os.path.isdir(path):
        raise InvalidArgumentError(f"save_weights(path=...) expects a file path. Received: '{path}', a folder.")
    if not overwrite and os.path.lexists(path):
        raise ModelExistsError(
            f"Could not save weights to '{path}': it already exists and overwrite=False. Pass overwrite=True "
            "(the default) to replace it."
        )

    def write(stream: BinaryIO) -> None:
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in weights.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)

    return write_atomically(path, write)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the weights file `path`, by name.

    Raises:
        ModelFileError: missing, unreadable, not an .npz numpy wrote, or damaged.
    """
    if not path.exists():
        raise ModelFileError(f"load_weights found no file '{path}'. Write one with model.save_weights('{path}').")
    return read_npz(path, f"'{path}'", ModelFileError, limit=MAX_MODEL_BYTES)


def matching_weights(
    found: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray], path: Path, skip_mismatch: bool
) -> dict[str, np.ndarray]:
    """The arrays of `found` (the file's) that fit the model's parameters `current` by name and shape. Every
    parameter the file lacks, every array the model has no parameter for and every other shape is refused, or,
    with `skip_mismatch`, left out with a warning naming them (Keras' `skip_mismatch`).

    Raises:
        InvalidArgumentError: a mismatch, without `skip_mismatch`.
    """
    missing = [name for name in current if name not in found]
    unknown = [name for name in found if name not in current]
    shapes = [
        f"{name} {found[name].shape} (the model's: {current[name].shape})"
        for name in current
        if name in found and found[name].shape != current[name].shape
    ]
    problems = [
        f"{what}: {listing(names, 10, quote=quote)}"
        for what, names, quote in (
            ("parameters the file lacks", missing, True),
            ("arrays for no parameter of the model", unknown, True),
            ("other shapes", shapes, False),
        )
        if names
    ]
    if problems and not skip_mismatch:
        raise InvalidArgumentError(
            f"load_weights: '{path}' does not fit this model: {'; '.join(problems)}. Pass skip_mismatch=True to "
            "load the parameters that fit by name and shape and leave the others as they are."
        )
    if problems:
        warnings.warn(
            f"load_weights(skip_mismatch=True) left out of '{path}' what does not fit: {'; '.join(problems)}.",
            UserWarning,
            stacklevel=3,  # the caller of load_weights
        )
    return {name: value for name, value in found.items() if name in current and value.shape == current[name].shape}
