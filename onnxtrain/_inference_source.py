"""The bytes of the model `InferenceModel.load` reads, from what the user names (`read_model`): an exported .onnx
file, a saved model's folder (its model.onnx, checked against config.json beside it), or the output folder of a
training run (its model/); external data is read in from inside the model's folder through the checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from onnxtrain._bounded_read import read_bounded
from onnxtrain._onnx_file import check_onnx_tensors, parse_onnx_file
from onnxtrain._onnx_tensors import MAX_MODEL_BYTES, has_external_data, model_tensors
from onnxtrain._saved_model_folder import saved_model_folder
from onnxtrain.errors import InvalidTypeError, ModelFileError
from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE, check_model_bytes, read_config, read_file
from onnxtrain.saving import reading_model


def read_model(path: str | os.PathLike[str]) -> tuple[bytes, Path]:
    """(the bytes of the model at `path`, with every tensor inline; the file they come from, for messages).

    Raises:
        InvalidTypeError: `path` is no path.
        ModelFileError: nothing there, no model.onnx in the directory, or not a loadable ONNX model.
    """
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise InvalidTypeError(
            f"InferenceModel.load(path=...) expects a model directory or .onnx file path. Received: {path!r}"
        )
    target = Path(path)
    if target.is_dir():
        target = saved_model_folder(target)
        with reading_model(target) as files:
            if MODEL_FILE not in files:
                raise ModelFileError(
                    f"'{target}' has no {MODEL_FILE}: pass a directory written by model.save() (or the output folder "
                    f"of onnxtrain train) or a file written by model.export(). Found: {sorted(files) or 'nothing'}"
                )
            source = files[MODEL_FILE]
            data = read_file(source)
            config = _saved_config(files.get(CONFIG_FILE))
            if config is not None:  # first: it names the file that was damaged, and says how
                check_model_bytes(data, config, source)
            return _through_gate(data, source), source
    if not target.exists():
        raise ModelFileError(
            f"No model at '{target}': expected a directory written by model.save() or a .onnx file "
            "written by model.export()."
        )
    return _through_gate(read_bounded(target, MAX_MODEL_BYTES, ModelFileError, "an ONNX model"), target), target


def _saved_config(path: Path | None) -> dict[str, Any] | None:
    """config.json beside a saved model.onnx, or None when absent or damaged (inference needs only model.onnx;
    load_model is the one that reports a damaged config)."""
    if path is None:
        return None
    try:
        return read_config(path)
    except ModelFileError:
        return None


def _through_gate(data: bytes, source: Path) -> bytes:
    """The bytes of the model file `source` with its external data read in from inside its folder through the
    checks (the same bytes when it has none): ORT gets bytes with every tensor inline, never a path, since
    ORT 1.19.2 follows "../" locations when it loads a path."""
    proto = parse_onnx_file(data, str(source), "Export or save the model again.")
    external = any(has_external_data(tensor) for _, tensor in model_tensors(proto))
    check_onnx_tensors(proto, str(source), source.parent)
    return proto.SerializeToString() if external else data
