"""Saving, exporting and loading models.

A saved model is a directory with `model.onnx` (the clean inference graph), `config.json` (enough to
rebuild and recompile the model) and `checkpoint` (weights, plus optimizer state and step when asked: the
engine's format, ONNX Runtime's training checkpoint or the portable engine's .npz; an uncompiled model saved
without a training build has none). Files are written crash-safely by `onnxtrain.saving`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain import emit, engines, losses, metrics, optimizers
from onnxtrain._checks import as_real
from onnxtrain._onnx_file import onnx_file_problem, parse_onnx_file
from onnxtrain._version import __version__
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    ModelFileError,
    ModelStateError,
    OnnxtrainError,
    RuntimeSetupError,
)
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_opset_and_ir
from onnxtrain.inputs import scale_divisor
from onnxtrain.layers import Layer
from onnxtrain.saving import WritingMode, check_replaceable, reading_model, save_files, write_atomically

if TYPE_CHECKING:
    from onnxtrain.model import Sequential

CONFIG_FORMAT = "onnxtrain.sequential/1"
MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint"
SAVED_FILES = frozenset({MODEL_FILE, CONFIG_FILE, CHECKPOINT_FILE})
"""Every file `save` writes: an OVERRIDE save replaces only a directory that holds nothing else."""

# What rebuilding a layer, loss, optimizer or metric from a damaged config.json raises.
_REBUILD_ERRORS = (OnnxtrainError, AttributeError, KeyError, TypeError, ValueError, OverflowError, MemoryError)

# Metadata properties of model.onnx, read back by onnxtrain.inference.InferenceModel.
META_VERSION = "onnxtrain.version"
META_MODEL_NAME = "onnxtrain.model_name"
META_LOSS = "onnxtrain.loss"
META_CLASS_NAMES = "class_names"
META_INPUT_SCALE = "input_scale"
META_INPUT_SCALING = "input_scaling"


def inference_opset_and_ir(model: Sequential, opset: int | None, ir_version: int | None) -> tuple[int, int]:
    """The opset and IR version an export uses: the compiled ones (default 17 / 8) unless given.

    A chosen opset without an IR version gets the oldest IR version that can hold it (never below 8), so the
    file loads in as many runtimes as possible.
    """
    compiled = model._trainer.compiled if model._trainer is not None else None
    chosen = opset if opset is not None else (compiled.opset if compiled else DEFAULT_OPSET)
    if ir_version is None:
        same = compiled is not None and compiled.opset == chosen
        ir_version = compiled.ir_version if same else DEFAULT_IR_VERSION  # type: ignore[union-attr]
        if isinstance(chosen, int) and not isinstance(chosen, bool):
            try:
                needed = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", chosen)])
            except ValueError:  # an opset onnx does not know: check_opset_and_ir says so below
                needed = ir_version
            ir_version = max(ir_version, needed)
    check_opset_and_ir(chosen, ir_version)
    return chosen, ir_version


def build_inference_model(
    model: Sequential, opset: int | None = None, ir_version: int | None = None
) -> onnx.ModelProto:
    """The deployable ModelProto of `model` with its current weights and descriptive metadata.

    Raises:
        InvalidArgumentError: the opset / IR version is out of range, or a layer cannot be expressed in it.
    """
    opset, ir_version = inference_opset_and_ir(model, opset, ir_version)
    model.sync_weights()
    compiled = model._trainer.compiled if model._trainer is not None else None
    metadata = {
        META_VERSION: __version__,
        META_MODEL_NAME: model.name,
        META_INPUT_SCALE: repr(float(model.input_scale)),
        META_INPUT_SCALING: _input_scaling(float(model.input_scale)),
    }
    if compiled is not None:
        metadata[META_LOSS] = compiled.loss.name
    try:
        return emit.inference_model(
            model.layers,
            compiled.loss if compiled else None,
            opset=opset,
            ir_version=ir_version,
            metadata=metadata,
            class_names=model.class_names,
        )
    except onnx.checker.ValidationError as e:
        raise InvalidArgumentError(
            f"The model cannot be exported with opset={opset}, ir_version={ir_version}: the ONNX checker "
            f"refused the graph ({str(e).strip().splitlines()[0]}). Choose a newer opset, e.g. the default "
            f"{DEFAULT_OPSET}."
        ) from e


def _input_scaling(scale: float) -> str:
    """How to feed the model, for deployers in any language (the `input_scaling` metadata property)."""
    text = "feed float32 inputs as the model was trained on them; integer inputs (e.g. uint8 pixels) are first "
    divisor = scale_divisor(scale)
    if divisor is not None:
        return text + f"converted to float32 and divided by {divisor!r} (input_scale={scale!r})"
    return text + f"converted to float32 and multiplied by input_scale={scale!r}"


def model_config(model: Sequential, optimizer_state_saved: bool = False) -> dict[str, Any]:
    """The contents of config.json: layers, shapes, compile settings, class names, training progress."""
    trainer = model._trainer
    config = {
        "format": CONFIG_FORMAT,
        "onnxtrain_version": __version__,
        **model.get_config(),
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
        "class_names": list(model.class_names) if model.class_names is not None else None,
        "input_scale": float(model.input_scale),
        "compile": trainer.compiled.get_config() if trainer is not None else None,
        "epochs_trained": trainer.epochs_trained if trainer is not None else 0,
        "optimizer_state_saved": optimizer_state_saved,
    }
    if trainer is not None:  # a callback may have changed it since compile
        config["current_learning_rate"] = trainer.engine.learning_rate
    return config


def model_files(model: Sequential, save_optimizer_state: bool = False) -> dict[str, bytes]:
    """{file name: contents} of a saved model directory, as `save` writes them."""
    inference = build_inference_model(model)
    files = {MODEL_FILE: inference.SerializeToString()}
    if model._trainer is not None:
        files[CHECKPOINT_FILE] = model._trainer.engine.checkpoint_bytes(include_optimizer_state=save_optimizer_state)
    else:
        from onnxtrain._ort_training import checkpoint_bytes_from_weights

        try:
            files[CHECKPOINT_FILE] = checkpoint_bytes_from_weights(model.get_weights())
        except RuntimeSetupError:
            pass  # an inference-only install: the checkpoint is only for training, which compile() recreates
    config = model_config(model, optimizer_state_saved=save_optimizer_state)
    if CHECKPOINT_FILE in files:  # load_model checks it before ONNX Runtime parses the checkpoint
        config["checkpoint_sha256"] = hashlib.sha256(files[CHECKPOINT_FILE]).hexdigest()
    # A flipped bit in a weight still parses; loaders compare this first (see check_model_bytes).
    config["model_sha256"] = hashlib.sha256(files[MODEL_FILE]).hexdigest()
    files[CONFIG_FILE] = (json.dumps(config, indent=2) + "\n").encode()
    return files


def save_model(
    model: Sequential, directory: str | Path, writing_mode: WritingMode | str, save_optimizer_state: bool
) -> Path:
    """See `Sequential.save`."""
    mode = WritingMode.get(writing_mode)
    if not isinstance(save_optimizer_state, bool):
        raise InvalidTypeError(f"save_optimizer_state expects a bool. Received: {save_optimizer_state!r}")
    if save_optimizer_state and model._trainer is None:
        raise ModelStateError(
            "save(save_optimizer_state=True) needs a compiled model: an uncompiled one has no optimizer "
            "state. "
            "Call compile() first, or save with save_optimizer_state=False."
        )
    if mode is WritingMode.OVERRIDE:  # before the files are built: a refusal is quick and changes nothing
        check_replaceable(directory, SAVED_FILES)
    # save_files checks again with the save lock held, just before the swap: an entry added meanwhile is seen.
    return save_files(directory, model_files(model, save_optimizer_state), mode, replaceable=SAVED_FILES)


def export_model(
    model: Sequential,
    path: str | Path,
    opset: int | None,
    ir_version: int | None,
    writing_mode: WritingMode | str,
) -> Path:
    """See `Sequential.export`. APPEND means OVERRIDE for a single file."""
    mode = WritingMode.get(writing_mode)
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise InvalidTypeError(f"export(path=...) expects a file path such as 'model.onnx'. Received: {path!r}")
    target = Path(path)
    if target.is_dir():
        raise InvalidArgumentError(
            f"export(path=...) expects a file path such as 'model.onnx'. Received: '{target}', a directory; "
            "use save() for a model directory."
        )
    if mode is WritingMode.FAIL_IF_EXISTS and os.path.lexists(target):
        raise ModelExistsError(
            f"Could not export to '{target}': it already exists and writing_mode=WritingMode.FAIL_IF_EXISTS "
            "forbids replacing it. Pass writing_mode=WritingMode.OVERRIDE to replace it."
        )
    data = build_inference_model(model, opset, ir_version).SerializeToString()
    return write_atomically(target, data)


def load_model(directory: str | Path, compile: bool = True, device: str = "cpu", **compile_options: Any) -> Sequential:
    """Rebuild a saved model; with `compile=True` (default) it is compiled with its saved settings.

    When the model was saved with `save_optimizer_state=True`, training resumes exactly where it stopped: the
    optimizer's moments, step and learning rate and the epoch count are restored, so fit(2) + save + load +
    fit(1) equals fit(3). Passing `optimizer=...` starts a fresh optimizer instead; other `compile_options`
    (threads, artifacts_dir, metrics...) are passed to `compile`. With `compile=False` the weights, class
    names and input scale are restored; compile() later starts a fresh optimizer at epoch 1.

    A model trained with the ort-training engine is compiled with the portable engine, which computes the same
    steps, where the installed onnxruntime has no training API (an inference-only install), with a UserWarning.

    Raises:
        ModelFileError: the directory or one of its files is missing, unreadable or not an onnxtrain model.
        RuntimeSetupError: the saved optimizer state is ONNX Runtime training's, which only its training build
            reads, and this install has none: pass `optimizer=...` to start a fresh optimizer instead.
    """
    from onnxtrain.model import Sequential

    with reading_model(directory) as files:
        for required in (CONFIG_FILE, MODEL_FILE):
            if required not in files:
                raise ModelFileError(
                    f"'{Path(directory)}' is not a saved onnxtrain model: {required} is missing "
                    f"(found: {sorted(files) or 'nothing'})."
                )
        config = read_config(files[CONFIG_FILE])
        _check_saved_values(config, files[CONFIG_FILE])
        model_bytes = _read_file(files[MODEL_FILE])
        weights = _onnx_weights(model_bytes, files[MODEL_FILE], config)
        checkpoint = _read_file(files[CHECKPOINT_FILE]) if CHECKPOINT_FILE in files else None
        checkpoint_path = files.get(CHECKPOINT_FILE, Path(directory) / CHECKPOINT_FILE)
    config_path = files[CONFIG_FILE]
    unbuildable = f"{config_path} describes a model that cannot be rebuilt"
    layers = []
    for index, entry in enumerate(config["layers"]):
        with _config_entry(unbuildable, f"layers[{index}]", entry):
            layers.append(Layer.from_config(entry))
    with _config_entry(unbuildable):
        model = Sequential(layers, name=str(config.get("name", "sequential")), seed=config["seed"])
    model.class_names = tuple(config["class_names"]) if config.get("class_names") else None
    model.input_scale = float(config.get("input_scale", 1.0))
    _check_weights(model.get_weights(), weights, files[MODEL_FILE])
    # Last for a file that parses: one holding another model already got a more precise message above.
    check_model_bytes(model_bytes, config, files[MODEL_FILE])
    model.set_weights({name: weights[name] for name in model.get_weights()})
    settings = config.get("compile")
    if compile and settings:
        _compile_loaded(model, config, config_path, checkpoint, checkpoint_path, device, compile_options)
    return model


def _check_saved_values(config: dict[str, Any], path: Path) -> None:
    """Refuse damaged values of the plain keys of config.json, naming the key, the value and what was expected."""

    def refuse(key: str, expected: str) -> ModelFileError:
        return ModelFileError(
            f"{path}: {key!r} expects {expected}. Received: {key}={config[key]!r}. The file is damaged or was "
            "edited: fix the value, or save the model again."
        )

    # Any finite positive scale loads (what earlier versions saved); new Datasets are held to float32's range.
    if "input_scale" in config and not _is_finite_positive(config["input_scale"]):
        raise refuse("input_scale", "a finite positive number such as 1.0 or 0.00392156862745098 (1/255)")
    epochs = config.get("epochs_trained", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise refuse("epochs_trained", "a non-negative int")
    names = config.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise refuse("class_names", "null or a list of strings")


def _is_finite_positive(value: object) -> bool:
    number = as_real(value)
    return number is not None and 0 < number < math.inf  # NaN fails the comparison


@contextlib.contextmanager
def _config_entry(problem: str, entry: str | None = None, value: Any = None) -> Iterator[None]:
    """Re-raise what rebuilding `entry` of config.json raises as a ModelFileError that names the entry."""
    try:
        yield
    except ModelFileError:
        raise
    except _REBUILD_ERRORS as e:
        cause = str(e) if isinstance(e, OnnxtrainError) else f"{type(e).__name__}: {e}"
        if entry is None:
            raise ModelFileError(f"{problem}: {cause}") from e
        text = json.dumps(value, default=repr)
        text = text if len(text) <= 200 else text[:199] + "…"
        raise ModelFileError(f"{problem}: {entry} = {text}: {cause}") from e


def _check_weights(expected: dict[str, np.ndarray], found: dict[str, np.ndarray], path: Path) -> None:
    missing = sorted(set(expected) - set(found))
    if missing:
        raise ModelFileError(f"{path} lacks the parameters {missing} that config.json's layers need.")
    for name, value in expected.items():
        if found[name].shape != value.shape:
            raise ModelFileError(
                f"{path}: parameter {name} has shape {found[name].shape}; config.json's layers need {value.shape}."
            )


def _engine_here(saved_engine: str, resume: bool, directory: Path) -> str:
    """The engine to compile a loaded model with: the saved one, or the portable engine where the saved one is
    ort-training and this onnxruntime has no training API. Both compute the same steps; only ORT's own optimizer
    state cannot move, so resuming it needs the training build or an explicit fresh optimizer.
    """
    from onnxtrain._ort_training import training_available

    if saved_engine != "ort-training" or training_available():
        return saved_engine
    if resume:
        raise RuntimeSetupError(
            f"{directory} was trained with the ort-training engine and saved with its optimizer state, which only an "
            "ONNX Runtime training build reads; the installed onnxruntime is inference-only. Load it with "
            'load_model(..., engine="portable", optimizer=...) to continue with a fresh optimizer, or install '
            "`onnxtrain[cpu]` to resume exactly."
        )
    warnings.warn(
        f"{directory} was trained with the ort-training engine, which the installed (inference-only) onnxruntime "
        "cannot run: it is compiled with the portable engine, which computes the same steps.",
        UserWarning,
        stacklevel=4,
    )
    return "portable"


def _compile_loaded(
    model: Sequential,
    config: dict[str, Any],
    config_path: Path,
    checkpoint: bytes | None,
    checkpoint_path: Path,
    device: str,
    compile_options: dict[str, Any],
) -> None:
    resume = bool(config.get("optimizer_state_saved")) and "optimizer" not in compile_options
    if resume and checkpoint is None:
        raise ModelFileError(
            f"{checkpoint_path} is missing although config.json says the optimizer state was saved. "
            "Load with load_model(..., optimizer=...) to start a fresh optimizer, or save the model again."
        )
    expected_sha256 = config.get("checkpoint_sha256")
    if (
        resume
        and checkpoint is not None
        and expected_sha256 is not None
        and hashlib.sha256(checkpoint).hexdigest() != expected_sha256
    ):
        raise ModelFileError(
            f"Resuming from the optimizer state of {checkpoint_path} failed: its SHA-256 differs from the one "
            "config.json recorded at save time, so the checkpoint is damaged. Load with load_model(..., "
            "optimizer=...) to start a fresh optimizer from the weights in model.onnx, or save the model again."
        )
    settings = config["compile"]
    unusable = f"{config_path} has compile settings that cannot be used"
    # An optimizer, loss, metric(s) or engine the caller passes replaces the saved one, which is then not read:
    # load_model(..., optimizer=...) is the way round a damaged saved optimizer, and metric= (or metrics=) alone
    # must not meet the saved metrics= in compile().
    saved: dict[str, Any] = {}
    if "optimizer" not in compile_options:
        with _config_entry(unusable, "compile.optimizer", settings.get("optimizer")):
            saved["optimizer"] = optimizers.get(settings["optimizer"])
    if "loss" not in compile_options:
        with _config_entry(unusable, "compile.loss", settings.get("loss")):
            saved["loss"] = losses.get(settings["loss"])
    if "metric" not in compile_options and "metrics" not in compile_options:
        saved_metrics = settings.get("metrics", [])
        with _config_entry(unusable, "compile.metrics", saved_metrics):
            if not isinstance(saved_metrics, list):
                raise InvalidTypeError(f"metrics must be a list. Found: {type(saved_metrics).__name__}")
            saved["metrics"] = [metrics.get(m) for m in saved_metrics]
    with _config_entry(unusable):
        if "engine" not in compile_options:
            saved["engine"] = str(settings.get("engine", engines.AUTO))
            if saved["engine"] not in engines.names():
                raise InvalidArgumentError(f"engine must be one of {list(engines.names())}. Found: {saved['engine']!r}")
        check_opset_and_ir(settings.get("opset", DEFAULT_OPSET), settings.get("ir_version", DEFAULT_IR_VERSION))
        learning_rate = config.get("current_learning_rate")
        if learning_rate is not None and not _is_finite_positive(learning_rate):
            raise InvalidArgumentError(f"current_learning_rate must be a positive number. Found: {learning_rate!r}")
    if "engine" in saved:
        saved["engine"] = _engine_here(saved["engine"], resume, config_path.parent)
    epochs_trained: int = config.get("epochs_trained", 0)  # checked by _check_saved_values
    options = {
        **saved,
        "opset": settings.get("opset", DEFAULT_OPSET),
        "ir_version": settings.get("ir_version", DEFAULT_IR_VERSION),
        "device": device,
        **compile_options,
    }
    try:
        # compile's defaults for what is not given; an option compile does not take raises compile's TypeError.
        arguments = inspect.signature(model.compile).bind(**options)
        arguments.apply_defaults()
        model._compile(**arguments.arguments, resume=checkpoint if resume else None)
    except OnnxtrainError:
        raise
    except Exception as e:  # ORT's own exception types: a damaged checkpoint is the likely cause
        if not resume:
            raise
        raise ModelFileError(
            f"Compiling the loaded model with the optimizer state of {checkpoint_path} failed "
            f"({type(e).__name__}: {str(e).strip()[:300]}). The checkpoint may be damaged: load with "
            "load_model(..., optimizer=...) to start a fresh optimizer, or save the model again."
        ) from e
    trainer = model._trainer
    assert trainer is not None
    trainer.epochs_trained = epochs_trained
    if resume and learning_rate is not None:
        trainer.engine.learning_rate = float(learning_rate)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"Cannot read '{path}': {e.strerror or e}. Check its permissions.") from e


def read_config(path: Path) -> dict[str, Any]:
    data = _read_file(path)
    try:
        config = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError, too many digits, nesting
        raise ModelFileError(f"{path} is not readable JSON: {e}. The save is damaged; save the model again.") from e
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


def _onnx_weights(data: bytes, path: Path, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The initializers by name of the ONNX file `path` holding `data`; ModelFileError when it is not a readable
    ONNX model, saying so with the checksum config.json recorded, when it did."""
    try:
        proto = parse_onnx_file(data, str(path), "The save is damaged; save the model again.")
    except ModelFileError:
        check_model_bytes(data, config, path)  # names the damage: the file changed after the save
        raise  # a save made before config.json recorded model.onnx's SHA-256
    try:
        return {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    except Exception as e:  # a tensor whose data does not fit its dims or type
        raise ModelFileError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e}).") from e
