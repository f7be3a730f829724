"""A training bundle's files on disk as readers see them: the names and format (`FORMAT`, `BUNDLE_FILES`),
bundle.json (`read_metadata`), and state.bin's layout: packed by `pack_state`, read back by `unpack_state` from a
bundle's state.bin or from the bytes onnxtrain-js' `stateBytes()` writes (their trailer checked against the layout's
fingerprint, its learning rate read by `state_bytes_rate`). `onnxtrain.bundle` re-exports the public names."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from onnxtrain._bounded_read import read_bounded
from onnxtrain.errors import ModelFileError

FORMAT = "onnxtrain.training_bundle/1"
BUNDLE_FILE = "bundle.json"
TRAIN_STEP_FILE = "train_step.onnx"
EVAL_FILE = "eval.onnx"
MODEL_FILE = "model.onnx"
STATE_FILE = "state.bin"
BUNDLE_FILES = frozenset({BUNDLE_FILE, TRAIN_STEP_FILE, EVAL_FILE, MODEL_FILE, STATE_FILE})
MAX_STATE_BYTES = 4 << 30  # the 2 GiB protobuf limit on the model, twice: weights and optimizer state
_MAX_INDEX_BYTES = 64 << 20
_ALIGNMENT = 8  # BigInt64Array (the int64 step) needs offsets that are multiples of 8; Float32Array of 4
# stateBytes' trailer (js/src/bundle.js): magic (8 bytes), layout fingerprint (uint32), zero (uint32), rate (float64)
_TRAILER_MAGIC = b"OTJSSTA1"
_TRAILER_BYTES = 24


def read_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed bundle.json of a bundle folder.

    Raises:
        ModelFileError: it is missing, not JSON, or of another format.
    """
    path = Path(directory) / BUNDLE_FILE
    try:
        metadata = json.loads(read_bounded(path, _MAX_INDEX_BYTES, ModelFileError, "bundle.json").decode("utf-8"))
    except ModelFileError:
        raise
    except ValueError as e:
        raise ModelFileError(f"'{path}' is not a readable training bundle index: {e}") from e
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ModelFileError(f"'{path}' expects format {FORMAT!r}. Received: {found!r}")
    return metadata


def read_state(directory: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a bundle's state.bin (or of state bytes JS wrote in the same layout) by name.

    Raises:
        ModelFileError: bundle.json is not a bundle's, or state.bin does not hold what its index says.
    """
    folder = Path(directory)
    metadata = read_metadata(folder)
    files = metadata.get("files")
    named = files.get("state") if isinstance(files, dict) else None
    if named != STATE_FILE:  # never a path the index chose: it could name a file outside the folder
        raise ModelFileError(f"'{folder / BUNDLE_FILE}' expects files.state {STATE_FILE!r}. Received: {named!r}")
    return unpack_state(
        read_bounded(folder / STATE_FILE, MAX_STATE_BYTES, ModelFileError, "a bundle's state"), metadata["tensors"]
    )


def unpack_state(data: bytes, index: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The tensors `index` (bundle.json's "tensors") describes in `data`: a bundle's state.bin, or the bytes the
    JavaScript trainer's `stateBytes()` writes, which append a trailer (a magic, a fingerprint of the layout and the
    learning rate; js/src/bundle.js), checked as `stateFromBytes` checks it (`state_bytes_rate` reads the rate).

    Raises:
        ModelFileError: `data` is not this layout's (another length, or another model's trailer), or an entry names
            a dtype other than float32 / int64.
    """
    _check_layout(data, index)
    tensors = {}
    for entry in index:
        dtype = np.dtype(entry["dtype"]).newbyteorder("<")
        count = int(np.prod(entry["shape"], dtype=np.int64))
        array = np.frombuffer(data, dtype, count, entry["offset"]).reshape(entry["shape"])
        tensors[entry["name"]] = array.astype(dtype.newbyteorder("="))
    return tensors


def state_bytes_rate(data: bytes, index: list[dict[str, Any]]) -> float | None:
    """The learning rate the trailer of JavaScript `stateBytes()` holds (the next update's), or None for bytes
    without one (a bundle's state.bin).

    Raises:
        ModelFileError: as `unpack_state`.
    """
    length = _check_layout(data, index)
    return None if len(data) == length else float(np.frombuffer(data, "<f8", 1, length + 16)[0])


def pack_state(tensors: Mapping[str, np.ndarray]) -> tuple[bytes, list[dict[str, Any]]]:
    """One little-endian buffer of `tensors` (state.bin) and its index (bundle.json's "tensors"): name, dtype,
    shape, byte offset, each tensor starting at a multiple of 8 bytes."""
    parts, index, offset = [], [], 0
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, value.dtype.newbyteorder("<")).tobytes()
        index.append({"name": name, "dtype": value.dtype.name, "shape": list(value.shape), "offset": offset})
        padding = -len(data) % _ALIGNMENT
        parts.append(data + b"\0" * padding)
        offset += len(data) + padding
    return b"".join(parts), index


def _check_layout(data: bytes, index: list[dict[str, Any]]) -> int:
    """The bytes the tensors of `index` take, once `data` is found to be those bytes, or those followed by a
    trailer of this layout's fingerprint.

    Raises:
        ModelFileError: naming the length or fingerprint received and expected.
    """
    ends = []
    for entry in index:
        dtype = np.dtype(entry["dtype"])
        if dtype.name not in ("float32", "int64"):
            raise ModelFileError(f"state tensor {entry['name']} expects dtype float32 or int64. Received: {dtype}")
        ends.append(int(entry["offset"]) + int(np.prod(entry["shape"], dtype=np.int64)) * dtype.itemsize)
    length = max(ends, default=0)
    length += -length % _ALIGNMENT
    trailer = bytes(data[length : length + 8]) == _TRAILER_MAGIC and len(data) == length + _TRAILER_BYTES
    if trailer:
        received, expected = int(np.frombuffer(data, "<u4", 1, length + 8)[0]), _fingerprint(index)
        if received != expected:
            raise ModelFileError(
                f"The state bytes expect the layout of this bundle's model (fingerprint {expected:x}: {len(index)} "
                f"tensors). Received: another model's stateBytes() (fingerprint {received:x}): read them with the "
                "bundle.json of the model that wrote them."
            )
    elif len(data) != length:
        raise ModelFileError(
            f"The state bytes expect {length} bytes (state.bin of this bundle's {len(index)} tensors) or "
            f"{length + _TRAILER_BYTES} (JavaScript stateBytes() of this model). Received: {len(data)} bytes: "
            "another model's state, or a damaged file."
        )
    return length


def _fingerprint(index: list[dict[str, Any]]) -> int:
    """FNV-1a (32 bits) over the UTF-16 code units of JSON.stringify([[name, dtype, shape, offset], ...]), as
    js/src/bundle.js computes it."""
    text = json.dumps(
        [[e["name"], e["dtype"], list(e["shape"]), e["offset"]] for e in index],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    units = np.frombuffer(text.encode("utf-16-le"), "<u2")
    value = 0x811C9DC5
    for unit in units.tolist():
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    return value
