"""Saving, exporting and loading models.

A saved model is a directory with `model.onnx` (the clean inference graph), `config.json` (enough to rebuild
and recompile the model) and `checkpoint` (ONNX Runtime's training checkpoint: weights, plus optimizer state and
step when asked). Files are written crash-safely by `onnxtrain.saving`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain import emit
from onnxtrain.errors import ModelFileError, OnnxtrainError
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET
from onnxtrain.layers import Layer
from onnxtrain.saving import WritingMode, reading_model, save_files, write_atomically

if TYPE_CHECKING:
    from onnxtrain.model import Sequential

CONFIG_FORMAT = "onnxtrain.sequential/1"
MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint"


def build_inference_model(model: Sequential, opset: int | None = None, ir_version: int | None = None) -> onnx.ModelProto:
    """The deployable ModelProto of `model` with its current weights and descriptive metadata."""
    from onnxtrain import __version__

    model.sync_weights()
    compiled = model._trainer.compiled if model._trainer is not None else None
    opset = opset if opset is not None else (compiled.opset if compiled else DEFAULT_OPSET)
    ir_version = ir_version if ir_version is not None else (compiled.ir_version if compiled else DEFAULT_IR_VERSION)
    metadata = {
        "onnxtrain.version": __version__,
        "onnxtrain.model_name": model.name,
        "input_scale": repr(model.input_scale),
        "input_scaling": f"integer inputs are multiplied by {model.input_scale!r}; float inputs are used as is",
    }
    if compiled is not None:
        metadata["onnxtrain.loss"] = compiled.loss.name
    return emit.inference_model(
        model.layers,
        compiled.loss if compiled else None,
        opset=opset,
        ir_version=ir_version,
        metadata=metadata,
        class_names=model.class_names,
    )


def model_config(model: Sequential, optimizer_state_saved: bool = False) -> dict[str, Any]:
    from onnxtrain import __version__

    trainer = model._trainer
    return {
        "format": CONFIG_FORMAT,
        "onnxtrain_version": __version__,
        **model.get_config(),
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
        "class_names": list(model.class_names) if model.class_names is not None else None,
        "input_scale": model.input_scale,
        "compile": trainer.compiled.get_config() if trainer is not None else None,
        "epochs_trained": trainer.epochs_trained if trainer is not None else 0,
        "optimizer_state_saved": optimizer_state_saved,
    }


def save_model(
    model: Sequential, directory: str | Path, writing_mode: WritingMode | str, save_optimizer_state: bool
) -> Path:
    mode = WritingMode.get(writing_mode)
    inference = build_inference_model(model)
    if model._trainer is not None:
        checkpoint = model._trainer.engine.checkpoint_bytes(include_optimizer_state=save_optimizer_state)
    else:
        from onnxtrain._ort_training import checkpoint_bytes_from_weights

        checkpoint = checkpoint_bytes_from_weights(model.get_weights())
        save_optimizer_state = False
    config = model_config(model, optimizer_state_saved=save_optimizer_state)
    files = {
        MODEL_FILE: inference.SerializeToString(),
        CONFIG_FILE: (json.dumps(config, indent=2) + "\n").encode(),
        CHECKPOINT_FILE: checkpoint,
    }
    return save_files(directory, files, mode)


def export_model(
    model: Sequential, path: str | Path, opset: int | None, ir_version: int | None, writing_mode: WritingMode | str
) -> Path:
    from onnxtrain.errors import ModelExistsError

    mode = WritingMode.get(writing_mode)
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"export(path=...) expects a file path such as model.onnx. Received: directory '{path}'")
    if mode is WritingMode.FAIL_IF_EXISTS and path.exists():
        raise ModelExistsError(
            f"'{path}' already exists. Pass writing_mode=WritingMode.OVERRIDE to replace it."
        )
    return write_atomically(path, build_inference_model(model, opset, ir_version).SerializeToString())


def load_model(directory: str | Path, compile: bool = True, device: str = "cpu", **compile_options: Any) -> Sequential:
    """Rebuild a saved model; with `compile=True` (default) it is compiled with its saved settings and, when the
    optimizer state was saved, training resumes exactly where it stopped.

    Raises:
        ModelFileError: the directory or one of its files is missing, unreadable or not an onnxtrain model.
    """
    from onnxtrain.model import Sequential

    with reading_model(directory) as files:
        for required in (CONFIG_FILE, MODEL_FILE):
            if required not in files:
                raise ModelFileError(
                    f"'{Path(directory)}' is not a saved onnxtrain model: {required} is missing "
                    f"(found: {sorted(files) or 'nothing'})."
                )
        config = _read_config(files[CONFIG_FILE])
        weights = read_onnx_weights(files[MODEL_FILE])
        checkpoint = files[CHECKPOINT_FILE].read_bytes() if CHECKPOINT_FILE in files else None
    try:
        layers = [Layer.from_config(entry) for entry in config["layers"]]
        model = Sequential(layers, name=str(config.get("name", "sequential")), seed=int(config["seed"]))
    except (OnnxtrainError, KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{files[CONFIG_FILE]} describes a model that cannot be rebuilt: {e}") from e
    expected = model.get_weights()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ModelFileError(f"{files[MODEL_FILE]} lacks the parameters {missing} that config.json's layers need.")
    for name, value in expected.items():
        if weights[name].shape != value.shape:
            raise ModelFileError(
                f"{files[MODEL_FILE]}: parameter {name} has shape {weights[name].shape}; config.json's layers need "
                f"{value.shape}."
            )
    model.set_weights({name: weights[name] for name in expected})
    model.class_names = tuple(config["class_names"]) if config.get("class_names") else None
    model.input_scale = float(config.get("input_scale", 1.0))
    settings = config.get("compile")
    if compile and settings:
        resume = checkpoint if config.get("optimizer_state_saved") else None
        options = {
            "optimizer": settings["optimizer"],
            "loss": settings["loss"],
            "metrics": settings["metrics"],
            "opset": settings.get("opset", DEFAULT_OPSET),
            "ir_version": settings.get("ir_version", DEFAULT_IR_VERSION),
            "device": device,
            **compile_options,
        }
        model._resume_checkpoint = resume
        model.compile(**options)
        assert model._trainer is not None
        model._trainer.epochs_trained = int(config.get("epochs_trained", 0))
    return model


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path} is not readable JSON: {e}. The save is damaged; save the model again.") from e
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(f"{path} is not an onnxtrain model config: expected format {CONFIG_FORMAT!r}, found {found!r}.")
    if not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ModelFileError(f"{path} has no layer list.")
    if not isinstance(config.get("seed"), int):
        raise ModelFileError(f"{path} has no integer seed.")
    return config


def read_onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Initializers of an ONNX file by name, or ModelFileError when it is not a readable ONNX model."""
    try:
        proto = onnx.load_model_from_string(path.read_bytes())
        return {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    except Exception as e:  # protobuf raises DecodeError, RuntimeWarning-like errors and more on garbage
        raise ModelFileError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e}).") from e
