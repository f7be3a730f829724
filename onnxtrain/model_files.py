"""The files of a saved model: what `save` writes, what `export` writes, and reading them back with their checks.

A saved model is a directory with `model.onnx` (the clean inference graph with descriptive metadata), `config.json`
(enough to rebuild and recompile the model) and `checkpoint` (weights, plus optimizer state and step when asked: the
engine's format, ONNX Runtime's training checkpoint or the portable engine's .npz; an uncompiled model saved without
a training build has none). Files are written crash-safely by `onnxtrain.saving`.

Nothing here needs a `Sequential`: the functions take what they read of one (`SavedModel`) and its `Trainer`.
`load_model`, which builds a Sequential from these files, is in `onnxtrain.loading`; reading the files back with
their checks is `onnxtrain._saved_model_checks`, re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnx

from onnxtrain import emit, losses
from onnxtrain._finite_weights import check_finite_weights, trained_weights
from onnxtrain._graph_names import rename_values
from onnxtrain._ort_training import checkpoint_bytes_from_weights
from onnxtrain._rebuildable import check_rebuildable
from onnxtrain._runtime import default_opset, runtime_refusal
from onnxtrain._saved_model_checks import (
    CONFIG_FORMAT,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_NESTING,
    check_model_bytes,
    check_saved_values,
    check_weights,
    is_finite_positive,
    onnx_weights,
    read_config,
    read_file,
)
from onnxtrain._token_ids import token_id_inputs
from onnxtrain._version import __version__
from onnxtrain.arrays import scale_divisor
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
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

__all__ = [  # reading the files back lives in _saved_model_checks; it is importable here too
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "CONFIG_FORMAT",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_NESTING",
    "META_CLASS_NAMES",
    "META_INPUT_SCALE",
    "META_INPUT_SCALING",
    "META_LOSS",
    "META_MODEL_NAME",
    "META_TOKEN_IDS",
    "META_VERSION",
    "MODEL_FILE",
    "SAVED_FILES",
    "SavedModel",
    "check_model_bytes",
    "check_saved_values",
    "check_weights",
    "export_model",
    "exported_model",
    "inference_opset_and_ir",
    "is_finite_positive",
    "model_config",
    "onnx_weights",
    "read_config",
    "read_file",
    "save_model",
    "saved_files",
]

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint"
SAVED_FILES = frozenset({MODEL_FILE, CONFIG_FILE, CHECKPOINT_FILE})
"""Every file `save` writes: an OVERRIDE save replaces only a directory that holds nothing else."""

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
