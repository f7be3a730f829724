"""A saved model's checkpoint checked against the model before an engine reads it: its size bounded by the
model's weights, and a portable-engine checkpoint's arrays (.npz) checked from their headers alone."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from onnxtrain._bounded_read import MIB
from onnxtrain._npy_file import npz_headers, open_npz
from onnxtrain.errors import ModelFileError


def checkpoint_limit(weights: Mapping[str, np.ndarray]) -> int:
    """The most bytes a checkpoint of a model with `weights` may have: the weights and up to four optimizer
    slots per weight (AMSGrad keeps three), plus names and headers."""
    return 5 * sum(int(w.nbytes) for w in weights.values()) + 16 * MIB


def check_checkpoint(data: bytes, weights: Mapping[str, np.ndarray], path: Path) -> None:
    """Refuse a portable-engine checkpoint (.npz) whose arrays do not fit the model with `weights`, from the
    arrays' headers alone, before any is allocated: a parameter of another shape or that the model lacks, an
    optimizer-state array larger than the largest weight, an unknown key. An ORT training checkpoint (not a zip)
    is left to ONNX Runtime's reader, after the SHA-256 that config.json records.

    Raises:
        ModelFileError: naming the file and the array.
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return
    with open_npz(data, str(path), ModelFileError) as archive:
        headers = npz_headers(archive, str(path), ModelFileError)
    largest = max((int(w.size) for w in weights.values()), default=0)
    states = 0
    for key, header in headers.items():
        name = key.removeprefix("param/")
        if key in ("format", "optimizer"):
            fits = header.dtype.kind in "US" and header.declared_bytes <= 4096
        elif key == "step":
            fits = header.shape == () and header.dtype.kind in "iu"
        elif key.startswith("param/"):
            fits = name in weights and header.shape == weights[name].shape and header.dtype == np.float32
        elif key.startswith("state/"):
            states += 1
            fits = math.prod(header.shape) <= largest and header.dtype == np.float32
        else:
            fits = False
        if not fits:
            raise ModelFileError(
                f"{path}: array {key!r} (shape {header.shape} of {header.dtype}) does not fit the model "
                "config.json describes: the checkpoint is damaged or forged. Load with load_model(..., "
                "optimizer=...) to start a fresh optimizer from the weights in model.onnx."
            )
    if states > 4 * len(weights) + 16:
        raise ModelFileError(f"{path} holds {states} optimizer-state arrays for {len(weights)} weights: forged?")
    missing = sorted({"format", "optimizer", "step"} - set(headers))
    if missing:
        raise ModelFileError(
            f"{path} lacks the arrays {missing} that a checkpoint with optimizer state holds: it is damaged or "
            "forged. Load with load_model(..., optimizer=...) to start a fresh optimizer."
        )
