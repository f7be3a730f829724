"""Reading a saved model's files back with the checks that refuse damaged ones: config.json (size, nesting, format,
plain values), model.onnx (its checksum and weights) and the weights' shapes and finiteness.

`onnxtrain.model_files` writes these files and re-exports everything here; `onnxtrain.loading` and the CLI read
with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from onnx import numpy_helper

from onnxtrain._bounded_read import MIB, read_bounded
from onnxtrain._checks import as_real
from onnxtrain._finite_weights import describe_non_finite, non_finite_weights
from onnxtrain._onnx_file import check_onnx_tensors, onnx_file_problem, parse_onnx_file
from onnxtrain._onnx_tensors import MAX_MODEL_BYTES
from onnxtrain.errors import ModelFileError

CONFIG_FORMAT = "onnxtrain.sequential/1"
# config.json may keep an imported ONNX layer's weight-free graph (base64), so a few MB is normal.
MAX_CONFIG_BYTES = 64 * MIB
MAX_CONFIG_NESTING = 64


def check_saved_values(config: dict[str, Any], path: Path) -> None:
    """Refuse damaged values of the plain keys of config.json, naming the key, the value and what was expected."""

    def refuse(key: str, expected: str) -> ModelFileError:
        return ModelFileError(
            f"{path}: {key!r} expects {expected}. Received: {key}={config[key]!r}. The file is damaged or was "
            "edited: fix the value, or save the model again."
        )

    # Any finite positive scale loads (what earlier versions saved); new Datasets are held to float32's range.
    if "input_scale" in config and not is_finite_positive(config["input_scale"]):
        raise refuse("input_scale", "a finite positive number such as 1.0 or 0.00392156862745098 (1/255)")
    epochs = config.get("epochs_trained", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise refuse("epochs_trained", "a non-negative int")
    names = config.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise refuse("class_names", "null or a list of strings")


def is_finite_positive(value: object) -> bool:
    """Whether `value` is a real number (not a bool) above zero and below infinity."""
    number = as_real(value)
    return number is not None and 0 < number < math.inf  # NaN fails the comparison


def check_weights(
    expected: dict[str, np.ndarray], found: dict[str, np.ndarray], path: Path, trainable: Collection[str] = ()
) -> None:
    """Refuse weights `found` in the file `path` that lack a parameter of `expected`, have another shape, or hold
    NaN or inf (a model saved after its training diverged)."""
    missing = sorted(set(expected) - set(found))
    if missing:
        raise ModelFileError(f"{path} lacks the parameters {missing} that config.json's layers need.")
    for name, value in expected.items():
        if found[name].shape != value.shape:
            raise ModelFileError(
                f"{path}: parameter {name} has shape {found[name].shape}; config.json's layers need {value.shape}."
            )
    broken = non_finite_weights({name: found[name] for name in expected if name in trainable})  # see trained_weights
    if broken:
        raise ModelFileError(
            f"{path}: the model's {describe_non_finite(broken)} hold NaN or inf: it was saved after its training "
            "diverged (onnxtrain now refuses to save such weights), and no prediction or training can use it. Load "
            "an earlier save, or rebuild the model and train it again."
        )


def read_file(path: Path, limit: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of the regular file `path`; ModelFileError naming it when they cannot be read, or when it is
    larger than `limit` bytes (checked before reading: a FIFO or a forged huge file neither blocks nor fills
    memory)."""
    return read_bounded(path, limit, ModelFileError, f"the {path.name} of a saved model")


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a saved model, checked for its size (MAX_CONFIG_BYTES) and nesting (MAX_CONFIG_NESTING),
    format, layer list, seed and compile settings' type (check_saved_values checks the plain values).

    Raises:
        ModelFileError: naming the file and what is wrong with it.
    """
    data = read_file(path, MAX_CONFIG_BYTES)
    try:
        config = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError, too many digits, nesting
        raise ModelFileError(f"{path} is not readable JSON: {e}. The save is damaged; save the model again.") from e
    if _nesting(config) > MAX_CONFIG_NESTING:
        raise ModelFileError(
            f"{path} nests lists and objects more than {MAX_CONFIG_NESTING} levels deep, the most a model config "
            "has: the file is damaged or forged."
        )
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(
            f"{path} is not an onnxtrain model config: expected format {CONFIG_FORMAT!r}, found {found!r}."
        )
    if not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ModelFileError(f"{path} has no layer list.")
    if not isinstance(config.get("seed"), int):
        raise ModelFileError(f"{path} has no integer seed.")
    if config.get("compile") is not None and not isinstance(config["compile"], dict):
        raise ModelFileError(f"{path}: 'compile' must be an object or null. Found: {config['compile']!r}")
    return config


def _nesting(value: Any) -> int:
    """How deep lists and objects nest in parsed JSON `value` (0 for a plain value), without recursion; counting
    stops one level past MAX_CONFIG_NESTING."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_CONFIG_NESTING:  # deeper is refused anyway: stop counting
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_model_bytes(data: bytes, config: dict[str, Any], path: Path) -> None:
    """Raise ModelFileError when model.onnx's bytes differ from the SHA-256 its save recorded in config.json,
    saying what is wrong with them when they are not an ONNX model (empty, truncated...)."""
    expected = config.get("model_sha256")
    if expected is None or hashlib.sha256(data).hexdigest() == expected:
        return
    problem = onnx_file_problem(data)
    if problem is not None:
        raise ModelFileError(
            f"{path} does not match the SHA-256 that config.json recorded when it was saved, and it {problem}: "
            f"the file was damaged after the save. Save the model again, or restore {path.name} from a copy."
        )
    raise ModelFileError(
        f"{path} does not match the SHA-256 that config.json recorded when it was saved: the file was changed "
        "or damaged. Save the model again; if you edited model.onnx on purpose, remove 'model_sha256' from "
        "config.json."
    )


def onnx_weights(data: bytes, path: Path, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The initializers by name of the ONNX file `path` holding `data`; ModelFileError when it is not a readable
    ONNX model, saying so with the checksum config.json recorded, when it did."""
    try:
        proto = parse_onnx_file(data, str(path), "The save is damaged; save the model again.")
    except ModelFileError:
        check_model_bytes(data, config, path)  # names the damage: the file changed after the save
        raise  # a save made before config.json recorded model.onnx's SHA-256
    check_onnx_tensors(proto, str(path), path.parent)
    try:  # the gate above read external data in and checked every size: to_array reads nothing else
        return {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    except Exception as e:  # a tensor whose data does not fit its dims or type
        raise ModelFileError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e}).") from e
