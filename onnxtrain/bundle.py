"""Training bundles: the portable train step, its eval graph, the inference model as a template, the weights and
optimizer state, and what a runtime needs to feed them, in one folder that onnxtrain-js (`js/`) trains from in a
browser (onnxruntime-web) or in Node.js (onnxruntime-node).

A bundle folder holds

    bundle.json       format, metadata and the index of state.bin
    train_step.onnx   the whole train step (`onnxtrain.portable.train_step_model`): weights and optimizer state in,
                      `loss`, `logits` and `updated.<name>` out
    eval.onnx         forward and loss (`onnxtrain.portable.eval_model`)
    model.onnx        the inference model (`Model.export`'s graph): the template the trained weights are written into
    state.bin         every tensor the train step carries, little-endian, each at an offset that is a multiple of 8

bundle.json's `inputs[].token_ids` ({"input_dim", "layer"}, or null) marks an input that an Embedding reads
(`_token_ids.token_id_inputs`): its values are token ids, never scaled, and a runtime refuses ids outside
[0, input_dim) as Python does. It was added within format 1, so readers ignore it; a bundle written before it has
no such key, and onnxtrain-js then reads that input as before (an int64/int32 input's ids unscaled and unchecked
against the table).

Example:
    >>> model.export_training_bundle("bundle")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnxtrain import emit
from onnxtrain._bounded_read import read_bounded
from onnxtrain._token_ids import token_id_inputs
from onnxtrain._version import __version__
from onnxtrain.errors import ModelFileError, UnsupportedError
from onnxtrain.model_files import SavedModel, exported_model
from onnxtrain.portable import PortableEngine, eval_model, train_step_model
from onnxtrain.portable._graphs import LEARNING_RATE, STEP, UPDATED
from onnxtrain.saving import WritingMode, save_files
from onnxtrain.training import Trainer

FORMAT = "onnxtrain.training_bundle/1"
BUNDLE_FILE = "bundle.json"
TRAIN_STEP_FILE = "train_step.onnx"
EVAL_FILE = "eval.onnx"
MODEL_FILE = "model.onnx"
STATE_FILE = "state.bin"
BUNDLE_FILES = frozenset({BUNDLE_FILE, TRAIN_STEP_FILE, EVAL_FILE, MODEL_FILE, STATE_FILE})
_MAX_STATE_BYTES = 4 << 30  # the 2 GiB protobuf limit on the model, twice: weights and optimizer state
_MAX_INDEX_BYTES = 64 << 20
_ALIGNMENT = 8  # BigInt64Array (the int64 step) needs offsets that are multiples of 8; Float32Array of 4


def write_training_bundle(
    model: SavedModel,
    trainer: Trainer,
    directory: str | os.PathLike[str],
    writing_mode: WritingMode | str = WritingMode.FAIL_IF_EXISTS,
) -> Path:
    """Write the training bundle of a compiled `model` into `directory` (see the module docstring).

    The weights are the model's current ones. The optimizer state and step are the engine's where it is the
    portable engine (so a bundle continues a run exactly); the ort-training engine keeps its state in ONNX
    Runtime's own format, so its bundle starts the optimizer afresh (`bundle.json`: "state_source").

    Args:
        writing_mode: as `Model.save`; "override" replaces a folder that holds a bundle and nothing else.

    Returns:
        The absolute path of the folder.
    Raises:
        UnsupportedError: a layer, loss or optimizer has no rule in the portable engine, or a parameter is not an
            initializer of the exported model.
        ModelExistsError: `directory` exists (FAIL_IF_EXISTS), or holds files that are not a bundle's (OVERRIDE).
        OSError: the files could not be written; a previous bundle is left as it was.
    """
    compiled = trainer.compiled
    graph = model.graph
    step_graph = train_step_model(graph, compiled.loss, compiled.optimizer, compiled.opset, compiled.ir_version)
    evaluation = eval_model(graph, compiled.loss, compiled.opset, compiled.ir_version)
    template = exported_model(model, compiled)  # syncs the engine's weights into the layers
    weights = {name: np.asarray(value, np.float32) for name, value in graph.params_by_name().items()}
    engine = trainer.engine
    if isinstance(engine, PortableEngine):
        state, step, source = engine.carried_state(), engine.step, "engine"
    else:
        state = {t.name: np.full(weights[t.parameter].shape, t.initial * t.scale, np.float32) for t in step_graph.state}
        step, source = 0, "fresh"
    tensors: dict[str, np.ndarray] = {name: weights[name] for name in step_graph.parameters}
    tensors.update({t.name: np.asarray(state[t.name], np.float32) for t in step_graph.state})
    tensors[STEP] = np.array(step, np.int64)
    blob, index = _pack(tensors)
    label_dtype, label_shape = compiled.loss.label_spec(emit.output_shape(graph))
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "onnxtrain_version": __version__,
        "name": model.name,
        "files": {"train_step": TRAIN_STEP_FILE, "eval": EVAL_FILE, "model": MODEL_FILE, "state": STATE_FILE},
        "opset": compiled.opset,
        "ir_version": compiled.ir_version,
        "inputs": [
            {
                "name": name,
                "dtype": x.dtype.name,
                "shape": [None, *x.shape],
                "token_ids": None if ids is None else {"input_dim": ids.input_dim, "layer": ids.layer},
            }
            for name, x, ids in zip(emit.input_names(graph), graph.inputs, token_id_inputs(graph), strict=True)
        ],
        "labels": {"name": emit.LABELS_NAME, "dtype": np.dtype(label_dtype).name, "shape": list(label_shape)},
        "outputs": {"loss": emit.LOSS_NAME, "logits": emit.LOGITS_NAME},
        "output_shape": list(emit.output_shape(graph)),
        "input_scale": float(model.input_scale),
        "class_names": list(model.class_names) if model.class_names else None,
        "loss": compiled.loss.name,
        "optimizer": compiled.optimizer.get_config(),
        "learning_rate": float(engine.learning_rate),
        "step_name": STEP,
        "learning_rate_name": LEARNING_RATE,
        "updated_prefix": UPDATED,
        "trainable": list(step_graph.trainable),
        "layer_state": list(step_graph.layer_state),
        "frozen": list(step_graph.frozen),
        "optimizer_state": [
            {"name": t.name, "parameter": t.parameter, "slot": t.slot, "scale": t.scale} for t in step_graph.state
        ],
        "state_source": source,
        "export_initializers": _template_initializers(template, weights),
        "tensors": index,
    }
    files = {
        BUNDLE_FILE: (json.dumps(metadata, indent=1) + "\n").encode("utf-8"),
        TRAIN_STEP_FILE: step_graph.model.SerializeToString(),
        EVAL_FILE: evaluation.SerializeToString(),
        MODEL_FILE: template.SerializeToString(),
        STATE_FILE: blob,
    }
    return save_files(
        directory, files, writing_mode, replaceable=BUNDLE_FILES, argument="export_training_bundle(directory=...)"
    )


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
        read_bounded(folder / STATE_FILE, _MAX_STATE_BYTES, ModelFileError, "a bundle's state"), metadata["tensors"]
    )


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


def unpack_state(data: bytes, index: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The tensors `index` (bundle.json's "tensors") describes in `data`. Bytes past the last tensor are not read:
    the JavaScript trainer's `stateBytes()` appends a trailer there (a magic, a fingerprint of the layout and the
    learning rate; js/src/bundle.js).

    Raises:
        ModelFileError: an entry reaches past the end of `data`, or names a dtype other than float32 / int64.
    """
    tensors = {}
    for entry in index:
        dtype = np.dtype(entry["dtype"]).newbyteorder("<")
        if dtype.name not in ("float32", "int64"):
            raise ModelFileError(f"state tensor {entry['name']} expects dtype float32 or int64. Received: {dtype}")
        count = int(np.prod(entry["shape"], dtype=np.int64))
        end = entry["offset"] + count * dtype.itemsize
        if end > len(data):
            raise ModelFileError(
                f"state tensor {entry['name']} expects bytes {entry['offset']}..{end}; the state holds {len(data)}"
            )
        array = np.frombuffer(data, dtype, count, entry["offset"]).reshape(entry["shape"])
        tensors[entry["name"]] = array.astype(dtype.newbyteorder("="))
    return tensors


def _pack(tensors: Mapping[str, np.ndarray]) -> tuple[bytes, list[dict[str, Any]]]:
    """One little-endian buffer of `tensors` and its index: name, dtype, shape, byte offset."""
    parts, index, offset = [], [], 0
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, value.dtype.newbyteorder("<")).tobytes()
        index.append({"name": name, "dtype": value.dtype.name, "shape": list(value.shape), "offset": offset})
        padding = -len(data) % _ALIGNMENT
        parts.append(data + b"\0" * padding)
        offset += len(data) + padding
    return b"".join(parts), index


def _template_initializers(template: onnx.ModelProto, weights: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Which initializer of the exported model holds each parameter (the same name: the builder keeps it).

    Raises:
        UnsupportedError: a parameter has no initializer of its name and shape in the exported graph.
    """
    shapes = {t.name: tuple(t.dims) for t in template.graph.initializer}
    missing = [name for name, value in weights.items() if shapes.get(name) != value.shape]
    if missing:
        raise UnsupportedError(
            f"A training bundle writes the trained weights into the exported model's initializers of the same "
            f"name and shape; the exported graph has none for {missing}."
        )
    return {name: name for name in weights}
