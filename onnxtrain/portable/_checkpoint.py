"""The portable engine's checkpoint: an uncompressed .npz of weights, and optionally optimizer state and step.

Keys: `format`, `optimizer` (the optimizer's registry name), `step`, `param/<name>`, `state/<state input
name>`. Readable with `numpy.load` alone (no pickle), so a checkpoint can be inspected without onnxtrain.

Format 2 stores optimizer state as the train-step graph carries it (times its slot's `scale`, e.g. Adam's
m / (1 - beta1)), so a resumed run continues bit for bit; format 1 stored unscaled state and is still read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from onnxtrain.errors import ModelFileError

FORMAT = "onnxtrain.portable/2"
_READABLE = {"onnxtrain.portable/1": 1, FORMAT: 2}
_PARAM, _STATE = "param/", "state/"


@dataclass
class Checkpoint:
    weights: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)
    step: int | None = None
    optimizer: str | None = None
    version: int = 2  # 1: `state` is unscaled (see the module docstring)


def write_checkpoint(checkpoint: Checkpoint) -> bytes:
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT)}
    if checkpoint.optimizer is not None:
        arrays["optimizer"] = np.array(checkpoint.optimizer)
    if checkpoint.step is not None:
        arrays["step"] = np.array(checkpoint.step, np.int64)
    arrays.update({_PARAM + name: np.asarray(v, np.float32) for name, v in checkpoint.weights.items()})
    arrays.update({_STATE + name: np.asarray(v, np.float32) for name, v in checkpoint.state.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read_checkpoint(data: bytes) -> Checkpoint:
    """Parse checkpoint bytes.

    Raises:
        ModelFileError: the bytes are not a portable-engine checkpoint (e.g. one written by ort-training).
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError(
            "The checkpoint is not a portable-engine checkpoint (.npz); it was probably written by the "
            'ort-training engine. Resume it with engine="ort-training" (which needs an onnxruntime-training '
            "build), or continue with a fresh optimizer from the weights in model.onnx: "
            "load_model(..., optimizer=...)."
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"The portable-engine checkpoint is damaged: {e}") from e
    found = str(arrays.get("format", ""))
    if found not in _READABLE:
        raise ModelFileError(f"The checkpoint has format {found!r}; this engine reads {sorted(_READABLE)}.")
    return Checkpoint(
        weights=_prefixed(arrays, _PARAM),
        state=_prefixed(arrays, _STATE),
        step=int(arrays["step"]) if "step" in arrays else None,
        optimizer=str(arrays["optimizer"]) if "optimizer" in arrays else None,
        version=_READABLE[found],
    )


def _prefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
