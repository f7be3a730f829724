"""Reading a run config of `onnxtrain train` from a file (`read_config`): a .toml or .json file of a bounded size,
told apart from what a user may pass by mistake (a saved model, a run's folder, an ONNX model, a binary file), then
checked (`_config_check`)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from onnxtrain._bounded_read import open_regular, read_bounded
from onnxtrain.cli._config_check import check_config
from onnxtrain.cli._data import is_saved_model
from onnxtrain.errors import InvalidArgumentError

MAX_RUN_CONFIG_BYTES = 1 << 20  # a run config is a few lines; a FIFO or a huge file is refused, not read
ONNX_PREFIX_BYTES = 4096  # what is read of a file too large for a config to tell an ONNX model
RESUME_EPOCHS = "with --epochs N, the number of epochs to add"
CONFIG_EXPECTED = "train expects a run config, a .toml or .json file (see examples/fashion_mlp.toml), or --example NAME"


def read_config(path: str | Path, resuming: bool = False) -> dict[str, Any]:
    """A model config from a .toml or .json file, checked for unknown keys.

    Raises:
        InvalidArgumentError: a folder, an ONNX model, another suffix, a binary or non-UTF-8 file, a file that
            does not parse, or a config `check_config` rejects.
    """
    path = Path(path)
    if path.is_dir():
        if is_saved_model(path):
            raise InvalidArgumentError(
                f"'{path}' is a saved model directory, not a run config; to continue training a saved model use "
                f"--resume {path} ({RESUME_EPOCHS})"
            )
        if is_saved_model(path / "model"):
            raise InvalidArgumentError(
                f"'{path}' is the output folder of a run, not a run config; to continue training its model use "
                f"--resume {path / 'model'} ({RESUME_EPOCHS})"
            )
        raise InvalidArgumentError(f"'{path}' is a folder, not a run config: {CONFIG_EXPECTED}")
    suffix = path.suffix.lower()
    if suffix == ".onnx" and path.is_file():  # whatever its size: a model is not a config that is too big
        raise _not_a_config_but_onnx(path)
    try:
        data = read_bounded(path, MAX_RUN_CONFIG_BYTES, InvalidArgumentError, "a run config")
    except InvalidArgumentError as e:
        if _starts_as_onnx_model(path):  # a large model under another name (model.json, model.bin)
            raise _not_a_config_but_onnx(path) from e
        raise
    if not _is_text(data) and _is_onnx_model(data):
        raise _not_a_config_but_onnx(path)
    if suffix not in (".toml", ".json"):
        raise InvalidArgumentError(
            f"the config must be a .toml or .json file (see examples/fashion_mlp.toml), or pass --example NAME. "
            f"Received: '{path}'"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(
            f"'{path}' is not a run config: it is not UTF-8 text (byte 0x{data[e.start]:02x} at position {e.start}). "
            f"{CONFIG_EXPECTED}"
        ) from e
    if "\x00" in text:
        raise InvalidArgumentError(
            f"'{path}' is not a run config: it is a binary file (a NUL byte at position {text.index(chr(0))}). "
            f"{CONFIG_EXPECTED}"
        )
    try:
        config = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (ValueError, TypeError, RecursionError) as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InvalidArgumentError(f"'{path}' is not valid {suffix[1:].upper()}: {e}") from e
    return check_config(config, str(path), resuming)


def _not_a_config_but_onnx(path: Path) -> InvalidArgumentError:
    resume = (
        f"; to continue training the saved model it belongs to: onnxtrain train --resume {path.parent} --epochs N"
        if is_saved_model(path.parent)
        else ""
    )
    return InvalidArgumentError(
        f"'{path}' is an ONNX model, not a run config: `onnxtrain train` builds and trains a model that a "
        ".toml or .json config (see examples/fashion_mlp.toml) or --example NAME describes. To fine-tune this "
        f"one: onnxtrain finetune {path} --data DATA --output DIR; to inspect it: onnxtrain summary {path}{resume}"
    )


def _starts_as_onnx_model(path: Path) -> bool:
    """Whether the first bytes of the file `path` are those of an ONNX model (read without reading the rest)."""
    from onnxtrain._onnx_file import starts_as_onnx_model  # imports onnx: only for a file too large for a config

    try:
        with open_regular(path) as file:
            prefix = file.read(ONNX_PREFIX_BYTES) or b""
    except (OSError, ValueError):
        return False
    return starts_as_onnx_model(prefix)


def _is_text(data: bytes) -> bool:
    try:
        return "\x00" not in data.decode("utf-8")
    except UnicodeDecodeError:
        return False


def _is_onnx_model(data: bytes) -> bool:
    """Whether binary `data` parses as an ONNX model with a graph (a renamed model.onnx, say)."""
    import onnx

    try:
        proto = onnx.load_model_from_string(data)
    except Exception:  # protobuf raises DecodeError and more on other binary files
        return False
    return proto.ir_version > 0 and len(proto.graph.node) > 0
