"""The files of a saved model: what `save` writes, what `export` writes, and reading them back with their checks.

A saved model is a directory with `model.onnx` (the clean inference graph with descriptive metadata), `config.json`
(enough to rebuild and recompile the model) and `checkpoint` (weights, plus optimizer state and step when asked: the
engine's format, ONNX Runtime's training checkpoint or the portable engine's .npz; an uncompiled model saved without
a training build has none). Files are written crash-safely by `onnxtrain.saving`.

Nothing here needs a `Sequential`: the functions take what they read of one (`SavedModel`) and its `Trainer`.
`load_model`, which builds a Sequential from these files, is in `onnxtrain.loading`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnx
from onnx import numpy_helper

from onnxtrain import emit, losses
from onnxtrain._bounded_read import MIB, read_bounded
from onnxtrain._checks import as_real
from onnxtrain._finite_weights import check_finite_weights, describe_non_finite, non_finite_weights, trained_weights
from onnxtrain._graph_names import rename_values
from onnxtrain._onnx_file import check_onnx_tensors, onnx_file_problem, parse_onnx_file
from onnxtrain._onnx_tensors import MAX_MODEL_BYTES
from onnxtrain._ort_training import checkpoint_bytes_from_weights
from onnxtrain._rebuildable import check_rebuildable
from onnxtrain._runtime import default_opset, runtime_refusal
from onnxtrain._token_ids import token_id_inputs
from onnxtrain._version import __version__
from onnxtrain.arrays import scale_divisor
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    ModelFileError,
    ModelStateError,
    OnnxtrainError,
    RuntimeSetupError,
)
from onnxtrain.foreign._export_names import export_renames
from onnxtrain.foreign._layer import compile_opset
from onnxtrain.functional import Functional
from onnxtrain.graph import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_opset_and_ir
from onnxtrain.layers import Layer, Shape
from onnxtrain.losses import Loss
from onnxtrain.saving import WritingMode, check_replaceable, save_files, write_atomically

if TYPE_CHECKING:
    from onnxtrain._compiled import Compiled
    from onnxtrain.training import Trainer

CONFIG_FORMAT = "onnxtrain.sequential/1"
MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint"
SAVED_FILES = frozenset({MODEL_FILE, CONFIG_FILE, CHECKPOINT_FILE})
"""Every file `save` writes: an OVERRIDE save replaces only a directory that holds nothing else."""
# config.json may keep an imported ONNX layer's weight-free graph (base64), so a few MB is normal.
MAX_CONFIG_BYTES = 64 * MIB
MAX_CONFIG_NESTING = 64

# Metadata properties of model.onnx, read back by onnxtrain.inference.InferenceModel.
META_VERSION = "onnxtrain.version"
META_MODEL_NAME = "onnxtrain.model_name"
META_LOSS = "onnxtrain.loss"
META_CLASS_NAMES = "class_names"
META_INPUT_SCALE = "input_scale"
META_INPUT_SCALING = "input_scaling"
META_TOKEN_IDS = "onnxtrain.token_ids"
"""JSON {input name: {"input_dim", "layer"}} of the inputs an Embedding reads (token ids, never scaled), written
only when there are any: for runtimes that do not trace the graph's Gather (examples/node/predict.mjs)."""


class SavedModel(Protocol):
    """What saving and exporting read of a model (a `Model` or `Sequential`)."""

    @property
    def name(self) -> str: ...

    @property
    def layers(self) -> Sequence[Layer]: ...

    @property
    def graph(self) -> Functional: ...

    @property
    def input_shape(self) -> Shape: ...

    @property
    def output_shape(self) -> Shape: ...

    @property
    def class_names(self) -> tuple[str, ...] | None: ...

    @property
    def input_scale(self) -> float: ...

    @property
    def trained_loss(self) -> Loss | None: ...

    def get_config(self) -> dict[str, Any]: ...

    def get_weights(self) -> dict[str, np.ndarray]: ...

    def sync_weights(self) -> None:
        """Copy the training engine's current weights into the layers."""
        ...


def inference_opset_and_ir(
    layers: Iterable[Any], compiled: Compiled | None, opset: int | None, ir_version: int | None
) -> tuple[int, int]:
    """The opset and IR version an export of a model of `layers` uses, unless given: the `compiled` ones, or for
    an uncompiled model the ones compile would choose (`compile_opset`: 17 / 8, or an imported graph's newer
    opset, which is never downgraded).

    A chosen opset without an IR version gets the oldest IR version that can hold it (never below 8), so the
    file loads in as many runtimes as possible.

    Raises:
        InvalidArgumentError: the opset / IR version is out of range.
        UnsupportedError: uncompiled, no opset given, and an imported graph's opset is newer than ONNX Runtime runs.
    """
    chosen = opset
    if chosen is None:  # uncompiled: as compile would, so an imported opset-20 graph exports at 20, not 17
        chosen = compiled.opset if compiled is not None else compile_opset(layers, None, None)[0]
    if ir_version is None:
        ir_version = compiled.ir_version if compiled is not None and compiled.opset == chosen else DEFAULT_IR_VERSION
        if isinstance(chosen, int) and not isinstance(chosen, bool):
            try:
                needed = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", chosen)])
            except ValueError:  # an opset onnx does not know: check_opset_and_ir says so below
                needed = ir_version
            ir_version = max(ir_version, needed)
    check_opset_and_ir(chosen, ir_version)
    return chosen, ir_version


def _loss_metadata(loss: Loss) -> str:
    """The loss as the export's metadata names it: its name where the name alone rebuilds it (its defaults), else
    its config as JSON (`from_logits`, `label_smoothing`, ...), which `InferenceModel` reads back."""
    try:
        if losses.get(loss.name) == loss:
            return loss.name
    except OnnxtrainError:  # a name the registry does not hold (several outputs' losses)
        pass
    return json.dumps(loss.get_config())


def exported_model(
    model: SavedModel,
    compiled: Compiled | None,
    opset: int | None = None,
    ir_version: int | None = None,
    *,
    file_names: bool = False,
) -> onnx.ModelProto:
    """The deployable ModelProto of `model` with its current weights and descriptive metadata: what `export`
    writes, and `save` as model.onnx.

    With `file_names` (what `export` and `save` write), a model `from_onnx` made (no new head) keeps the imported
    file's input and output names (`onnxtrain.foreign._export_names`). Without, and for every other model, the
    names are onnxtrain's (`emit.input_names`, `emit.output_names`), which predictions in training feed.

    Raises:
        InvalidArgumentError: the opset / IR version is out of range, or a layer cannot be expressed in it.
    """
    opset, ir_version = inference_opset_and_ir(model.graph.layers, compiled, opset, ir_version)
    loss = compiled.loss if compiled is not None else model.trained_loss
    model.sync_weights()
    renames = export_renames(model.graph, loss) if file_names else {}
    input_names = [renames.get(name, name) for name in emit.input_names(model.graph)]
    metadata = {
        META_VERSION: __version__,
        META_MODEL_NAME: model.name,
        META_INPUT_SCALE: repr(float(model.input_scale)),
        META_INPUT_SCALING: _input_scaling(float(model.input_scale), model.graph, input_names),
    }
    token_ids = {
        name: {"input_dim": ids.input_dim, "layer": ids.layer}
        for name, ids in zip(input_names, token_id_inputs(model.graph), strict=True)
        if ids is not None
    }
    if token_ids:
        metadata[META_TOKEN_IDS] = json.dumps(token_ids)
    if loss is not None:
        metadata[META_LOSS] = _loss_metadata(loss)
    try:
        proto = emit.inference_graph(
            model.graph,
            loss,
            opset=opset,
            ir_version=ir_version,
            metadata=metadata,
            class_names=model.class_names,
        )
        return rename_values(proto, renames) if renames else proto
    except onnx.checker.ValidationError as e:
        raise InvalidArgumentError(
            f"The model cannot be exported with opset={opset}, ir_version={ir_version}: the ONNX checker "
            f"refused the graph ({str(e).strip().splitlines()[0]}). Choose a newer opset, e.g. the default "
            f"{DEFAULT_OPSET}."
        ) from e


def _input_scaling(scale: float, graph: Functional, names: list[str]) -> str:
    """How to feed the model, for deployers in any language (the `input_scaling` metadata property); `names`: the
    export's input names."""
    integer = [f"{name} ({x.dtype})" for name, x in zip(names, graph.inputs, strict=True) if x.dtype.kind == "i"]
    ids = "feed integer token ids in the input's own type (int64: BigInt64Array in onnxruntime-web and -node); "
    ids += "they are never scaled"
    if len(integer) == len(names):
        return ids
    text = "feed float32 inputs as the model was trained on them; integer inputs (e.g. uint8 pixels) are first "
    divisor = scale_divisor(scale)
    if divisor is not None:
        text += f"converted to float32 and divided by {divisor!r} (input_scale={scale!r})"
    else:
        text += f"converted to float32 and multiplied by input_scale={scale!r}"
    return text + (f". Integer inputs {', '.join(integer)}: {ids}" if integer else "")


def model_config(model: SavedModel, trainer: Trainer | None, optimizer_state_saved: bool = False) -> dict[str, Any]:
    """The contents of config.json: layers, shapes, compile settings, class names, training progress."""
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


def saved_files(model: SavedModel, trainer: Trainer | None, save_optimizer_state: bool = False) -> dict[str, bytes]:
    """{file name: contents} of a saved model directory, as `save` writes them (`trainer`: the model's, if
    compiled)."""
    inference = exported_model(model, trainer.compiled if trainer is not None else None, file_names=True)
    files = {MODEL_FILE: inference.SerializeToString()}
    if trainer is not None:
        files[CHECKPOINT_FILE] = trainer.engine.checkpoint_bytes(include_optimizer_state=save_optimizer_state)
    else:
        try:
            files[CHECKPOINT_FILE] = checkpoint_bytes_from_weights(model.get_weights())
        except RuntimeSetupError:
            pass  # an inference-only install: the checkpoint is only for training, which compile() recreates
    config = model_config(model, trainer, optimizer_state_saved=save_optimizer_state)
    if CHECKPOINT_FILE in files:  # load_model checks it before ONNX Runtime parses the checkpoint
        config["checkpoint_sha256"] = hashlib.sha256(files[CHECKPOINT_FILE]).hexdigest()
    # A flipped bit in a weight still parses; loaders compare this first (see check_model_bytes).
    config["model_sha256"] = hashlib.sha256(files[MODEL_FILE]).hexdigest()
    files[CONFIG_FILE] = (json.dumps(config, indent=2) + "\n").encode()
    return files


def save_model(
    model: SavedModel,
    trainer: Trainer | None,
    directory: str | Path,
    writing_mode: WritingMode | str,
    save_optimizer_state: bool,
) -> Path:
    """See `Sequential.save`."""
    mode = WritingMode.get(writing_mode)
    if not isinstance(save_optimizer_state, bool):
        raise InvalidTypeError(f"save_optimizer_state expects a bool. Received: {save_optimizer_state!r}")
    if save_optimizer_state and trainer is None:
        raise ModelStateError(
            "save(save_optimizer_state=True) needs a compiled model: an uncompiled one has no optimizer state. "
            "Call compile() first, or save with save_optimizer_state=False."
        )
    _refuse_file_target(directory)
    if mode is WritingMode.OVERRIDE:  # before the files are built: a refusal is quick and changes nothing
        check_replaceable(directory, SAVED_FILES)
    check_finite_weights(trained_weights(model), "save")
    check_rebuildable(model.graph.layers)
    if trainer is not None:  # a loss of one's own that load_model could not rebuild: refused before writing
        losses.check_loadable(trainer.compiled.loss)
    # save_files checks again with the save lock held, just before the swap: an entry added meanwhile is seen.
    files = saved_files(model, trainer, save_optimizer_state)
    return save_files(directory, files, mode, replaceable=SAVED_FILES, argument="save(directory=...)")


def _refuse_file_target(directory: object) -> None:
    """Refuse `save` into an existing file, or to a name of Keras' model files, before any work, pointing to a
    directory or `export` (a Keras user saves to a file: `model.save("model.keras")`)."""
    if isinstance(directory, str | os.PathLike):
        path = os.path.expanduser(os.fspath(directory))
        if path.lower().endswith((".keras", ".h5", ".hdf5")):
            stem = path[: -len(os.path.splitext(path)[1])]
            raise InvalidArgumentError(
                f"save(directory=...) writes a model directory (model.onnx, config.json, checkpoint; load_model reads "
                f"it), not Keras' one-file format. Received: '{directory}', a name of a Keras .keras/.h5 file. Name "
                f"a directory, e.g. {stem!r}, or use export('{stem}.onnx') for the inference model as one file."
            )
        if os.path.lexists(path) and not os.path.isdir(path):
            raise InvalidArgumentError(
                f"save(directory=...) expects a directory path, but '{directory}' is an existing file: save writes "
                "a model directory (model.onnx, config.json, checkpoint). Remove the file or choose another "
                "directory, or use export(path) to write the inference model alone as one .onnx file."
            )


def export_model(
    model: SavedModel,
    compiled: Compiled | None,
    path: str | Path,
    opset: int | None,
    ir_version: int | None,
    writing_mode: WritingMode | str,
    transform: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None,
) -> Path:
    """See `Sequential.export`. APPEND means OVERRIDE for a single file. `transform` rewrites the model before
    it is written (`export(merge_adapters=True)` folds LoRA adapters)."""
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
    check_finite_weights(trained_weights(model), "export")
    proto = exported_model(model, compiled, opset, ir_version, file_names=True)
    data = (transform(proto) if transform is not None else proto).SerializeToString()
    written = write_atomically(target, data)
    refusal = runtime_refusal(default_opset(proto), proto.ir_version)
    if refusal:  # a file for another runtime is the user's call; that this one cannot run it is worth saying
        warnings.warn(
            f"Exported '{target}' at opset {default_opset(proto)} and IR version {proto.ir_version}, which the "
            f"installed ONNX Runtime cannot load ({refusal}): onnxtrain predict and InferenceModel cannot run it "
            "here. The defaults (opset 17, IR version 8) load in every ONNX Runtime since 1.13.",
            stacklevel=3,
        )
    return written


# --- reading back ---------------------------------------------------------------------------------------------
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
