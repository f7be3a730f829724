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

bundle.json's `inputs[].rescales_pixels` says that the model scales that input's raw pixels itself (a Keras-style
`Rescaling(1 / 255)` it reaches: `_integer_pixels.rescales_raw_pixels`), so integer pixels go in raw without the
warning of raw pixels, as in Python; absent in bundles written before it (read as false).

bundle.json's `metrics` lists the compiled metrics by their keys in the logs, with what onnxtrain-js needs to compute
them as Python does (`_metrics`; `"metric": null` for one it does not compute); absent in older bundles, where it
logs "accuracy".

bundle.json's `learning_rate` is the rate of the next update: under a learning-rate schedule, `schedule(step)` (as
Python's `model.learning_rate`), and `learning_rate_schedule` is the schedule as `schedules.serialize` writes it
({"class_name", "config"}; null for a fixed rate), which onnxtrain-js applies before each update as `fit` does (Keras'
six schedules; it refuses a class of one's own unless given its formula). Both were added within format 1 too.

Example:
    >>> model.export_training_bundle("bundle")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from onnxtrain import emit
from onnxtrain._bounded_read import read_bounded
from onnxtrain._compiled import Compiled
from onnxtrain._integer_pixels import rescales_raw_pixels
from onnxtrain._metric_base import reads_softmax
from onnxtrain._named_metrics import NamedMetric
from onnxtrain._token_ids import token_id_inputs
from onnxtrain._version import __version__
from onnxtrain.errors import InvalidArgumentError, ModelFileError, ModelStateError, UnsupportedError
from onnxtrain.model_files import SavedModel, exported_model
from onnxtrain.optimizers.schedules import LearningRateSchedule, rate_at, serialize
from onnxtrain.portable import PortableEngine, eval_model, train_step_model
from onnxtrain.portable._checkpoint import Checkpoint, write_checkpoint
from onnxtrain.portable._graphs import LEARNING_RATE, STEP, UPDATED
from onnxtrain.saving import WritingMode, save_files
from onnxtrain.training import Trainer

if TYPE_CHECKING:
    from onnxtrain.model import Model

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
    schedule = compiled.optimizer.learning_rate
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
                "rescales_pixels": rescales,
            }
            for name, x, ids, rescales in zip(
                emit.input_names(graph), graph.inputs, token_id_inputs(graph), rescales_raw_pixels(graph), strict=True
            )
        ],
        "labels": {"name": emit.LABELS_NAME, "dtype": np.dtype(label_dtype).name, "shape": list(label_shape)},
        "outputs": {"loss": emit.LOSS_NAME, "logits": emit.LOGITS_NAME},
        "output_shape": list(emit.output_shape(graph)),
        "input_scale": float(model.input_scale),
        "class_names": list(model.class_names) if model.class_names else None,
        "loss": compiled.loss.name,
        "metrics": _metrics(compiled),
        "optimizer": _optimizer_config(compiled.optimizer),
        # the rate of the next update: under a schedule, schedule(step) (Python's model.learning_rate), never the
        # engine's, which holds the last update's
        "learning_rate": rate_at(schedule, step)
        if isinstance(schedule, LearningRateSchedule)
        else float(engine.learning_rate),
        "learning_rate_schedule": serialize(schedule) if isinstance(schedule, LearningRateSchedule) else None,
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


def load_state(
    model: Model, directory: str | os.PathLike[str], state: bytes | str | os.PathLike[str] | None = None
) -> None:
    """Continue in Python a run that onnxtrain-js trained from the bundle at `directory`: give the compiled `model`
    (the model the bundle was written from, compiled with the same optimizer and the portable engine) the weights,
    optimizer state and step of `state`, so that Adam's moments, the bias correction, a schedule's position and
    Dropout's masks (drawn from the step) go on exactly where JavaScript stopped.

    Args:
        state: the bytes of JavaScript `trainer.stateBytes()`, or the path of a file holding them; None: the
            bundle's own state.bin. The trailer's learning rate becomes the model's, unless a schedule sets it.

    Example:
        >>> Path("js-state.bin").write_bytes(...)  # doctest: +SKIP   (fs.writeFileSync(path, trainer.stateBytes()))
        >>> onnxtrain.bundle.load_state(model, "bundle", "js-state.bin")  # doctest: +SKIP
        >>> model.fit(x, y)  # doctest: +SKIP

    Raises:
        ModelStateError: the model is not compiled, or compiled with the ort-training engine.
        ModelFileError: the bundle or state is not this model's (the names and shapes differ), or damaged.
        InvalidArgumentError: the model is compiled with another optimizer or other settings than the bundle's.
    """
    trainer = model._compiled_trainer("load_state")
    engine = trainer.engine
    if not isinstance(engine, PortableEngine):
        raise ModelStateError(
            "load_state needs a model compiled with the portable engine (the bundle's train step); the ort-training "
            "engine keeps its optimizer state in its own format. Compile with engine='portable'."
        )
    folder = Path(directory)
    metadata = read_metadata(folder)
    if state is None:
        data = read_bounded(folder / STATE_FILE, _MAX_STATE_BYTES, ModelFileError, "a bundle's state")
    elif isinstance(state, bytes | bytearray | memoryview):
        data = bytes(state)
    else:
        data = read_bounded(Path(state), _MAX_STATE_BYTES, ModelFileError, "state bytes")
    tensors = unpack_state(data, metadata["tensors"])
    rate = state_bytes_rate(data, metadata["tensors"])
    _check_same_model(trainer, engine, metadata, tensors, folder)
    carried = {t.name for t in engine.graph.state}
    checkpoint = Checkpoint(
        weights={name: value for name, value in tensors.items() if name not in carried and name != STEP},
        state={name: tensors[name] for name in carried},
        step=int(tensors[STEP]),
        optimizer=trainer.compiled.optimizer.name,
    )
    compiled = trainer.compiled
    config = compiled.get_config()
    model._compile(
        resume=write_checkpoint(checkpoint),
        optimizer=compiled.optimizer,
        loss=compiled.loss,
        metric=None,
        metrics=config["metrics"] or None,
        device=compiled.device,
        engine=compiled.engine,
        artifacts_dir=None,
        threads=trainer.threads,
        opset=compiled.opset,
        ir_version=compiled.ir_version,
        loss_weights=None,
        weighted_metrics=config.get("weighted_metrics") or None,
    )
    if not isinstance(compiled.optimizer.learning_rate, LearningRateSchedule):
        model.learning_rate = float(metadata["learning_rate"] if rate is None else rate)


def _check_same_model(
    trainer: Trainer, engine: PortableEngine, metadata: dict[str, Any], tensors: dict[str, np.ndarray], folder: Path
) -> None:
    """Refuse a bundle of another model, or one the model is compiled otherwise for (optimizer, loss).

    Raises:
        ModelFileError: names or shapes differ.
        InvalidArgumentError: the optimizer's settings (but its rate) or the loss differ.
    """
    own = {**engine.get_weights(), **engine.carried_state(), STEP: np.array(engine.step, np.int64)}
    lacking, unknown = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    reshaped = sorted(n for n in set(own) & set(tensors) if own[n].shape != tensors[n].shape)
    if lacking or unknown or reshaped:
        found = [
            f"{what}: {_listed(names)}"
            for what, names in (
                ("lacks", lacking),
                ("holds tensors the model does not have", unknown),
                ("shapes differ", reshaped),
            )
            if names
        ]
        raise ModelFileError(
            f"load_state expects the bundle of this model, compiled as it is. Received: '{folder}' (model "
            f"'{metadata.get('name')}'), which {'; '.join(found)}."
        )
    settings = {k: v for k, v in trainer.compiled.optimizer.get_config().items() if k != "learning_rate"}
    bundled = {k: v for k, v in metadata["optimizer"].items() if k != "learning_rate"}
    differing = sorted(k for k in {*settings, *bundled} if settings.get(k) != bundled.get(k))
    loss = trainer.compiled.loss.name
    if differing or loss != metadata["loss"]:
        raise InvalidArgumentError(
            f"load_state expects the model compiled as the bundle's: optimizer {bundled} and loss "
            f"{metadata['loss']!r}. Received: optimizer settings {settings} (differing: {differing}), loss "
            f"{loss!r}. Compile the model with the bundle's optimizer and loss first."
        )


def _listed(names: list[str], most: int = 4) -> str:
    """The first `most` names, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


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


# stateBytes' trailer (js/src/bundle.js): magic (8 bytes), layout fingerprint (uint32), zero (uint32), rate (float64)
_TRAILER_MAGIC = b"OTJSSTA1"
_TRAILER_BYTES = 24


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


def _metrics(compiled: Compiled) -> list[dict[str, Any]]:
    """Each compiled metric as onnxtrain-js computes it (js/src/metrics.js): its key in the logs, its `Metrics`
    value (None for one onnxtrain-js does not compute: AUC, Precision, a function of one's own, the weighted
    metrics, which need sample weights), its k and threshold (on probabilities), whether the outputs are logits
    (a binary accuracy compares them with the threshold's logit) and whether the errors read their softmax."""
    loss = compiled.loss
    entries: list[dict[str, Any]] = []
    for metric in compiled.metrics:
        if isinstance(metric, NamedMetric):
            entries.append(
                {
                    "name": metric.name,
                    "metric": metric.metric.value,
                    "k": metric.k,
                    "threshold": metric.threshold,
                    "logits": loss.trains_on_logits,
                    "softmax": reads_softmax(loss),
                }
            )
        else:
            entries.append({"name": metric.name, "metric": None})
    return entries + [{"name": m.name, "metric": None} for m in compiled.weighted_metrics]


def _optimizer_config(optimizer: Any) -> dict[str, Any]:
    """The optimizer's config, its schedule as `schedules.serialize` writes it (onnxtrain-js computes Keras' six
    schedules from it, and refuses another class unless given its formula).

    Raises:
        InvalidArgumentError: the learning rate is a schedule that cannot be written (an unregistered class).
    """
    try:
        return dict(optimizer.get_config())
    except InvalidArgumentError as e:
        raise InvalidArgumentError(
            f"export_training_bundle writes the optimizer's config, schedule included, into bundle.json: {e}"
        ) from e


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
