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
them as Python does (`_metrics`: a `Metrics` value, "equal_values" for Keras' `Accuracy` class, or `"metric": null`
for one it does not compute; a reader that does not know a value skips that metric); absent in older bundles,
where it logs "accuracy".

bundle.json's `learning_rate` is the rate of the next update: under a learning-rate schedule, `schedule(step)` (as
Python's `model.learning_rate`), and `learning_rate_schedule` is the schedule as `schedules.serialize` writes it
({"class_name", "config"}; null for a fixed rate), which onnxtrain-js applies before each update as `fit` does (Keras'
six schedules; it refuses a class of one's own unless given its formula). Both were added within format 1 too.

This module writes bundles (`write_training_bundle`); reading them is `_bundle_state`'s (`read_metadata`,
`read_state`, `unpack_state`, `state_bytes_rate`) and continuing a JavaScript run in Python `_bundle_resume`'s
(`load_state`), all importable from here.

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
from onnxtrain._accuracy_metrics import Accuracy
from onnxtrain._bundle_resume import load_state
from onnxtrain._bundle_state import (
    BUNDLE_FILE,
    BUNDLE_FILES,
    EVAL_FILE,
    FORMAT,
    MODEL_FILE,
    STATE_FILE,
    TRAIN_STEP_FILE,
    pack_state,
    read_metadata,
    read_state,
    state_bytes_rate,
    unpack_state,
)
from onnxtrain._compiled import Compiled
from onnxtrain._integer_pixels import rescales_raw_pixels
from onnxtrain._metric_base import Metric, reads_softmax
from onnxtrain._named_metrics import TOP_K, Metrics, NamedMetric
from onnxtrain._regression_metrics import MeanSquaredLogarithmicError
from onnxtrain._token_ids import token_id_inputs
from onnxtrain._version import __version__
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.model_files import SavedModel, exported_model
from onnxtrain.optimizers.schedules import LearningRateSchedule, rate_at, serialize
from onnxtrain.portable import PortableEngine, eval_model, train_step_model
from onnxtrain.portable._graphs import LEARNING_RATE, STEP, UPDATED
from onnxtrain.saving import WritingMode, save_files
from onnxtrain.training import Trainer

__all__ = [
    "BUNDLE_FILE",
    "BUNDLE_FILES",
    "EVAL_FILE",
    "FORMAT",
    "MODEL_FILE",
    "STATE_FILE",
    "TRAIN_STEP_FILE",
    "load_state",
    "read_metadata",
    "read_state",
    "state_bytes_rate",
    "unpack_state",
    "write_training_bundle",
]


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
    blob, index = pack_state(tensors)
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


def _metrics(compiled: Compiled) -> list[dict[str, Any]]:
    """Each compiled metric as onnxtrain-js computes it (js/src/metrics.js): its key in the logs, what it computes
    (`_computed`; None for one onnxtrain-js does not compute: AUC, Precision, a function of one's own, the weighted
    metrics, which need sample weights), its k and threshold (on probabilities), whether the outputs are logits
    (a binary accuracy compares them with the threshold's logit) and whether the errors read their softmax."""
    loss = compiled.loss
    entries: list[dict[str, Any]] = []
    for metric in compiled.metrics:
        computed = _computed(metric)
        if computed is None:
            entries.append({"name": metric.name, "metric": None})
            continue
        kind, k, threshold = computed
        entries.append(
            {
                "name": metric.name,
                "metric": kind,
                "k": k,
                "threshold": threshold,
                "logits": loss.trains_on_logits,
                "softmax": reads_softmax(loss),
            }
        )
    return entries + [{"name": m.name, "metric": None} for m in compiled.weighted_metrics]


def _computed(metric: Metric) -> tuple[str, int, float] | None:
    """What onnxtrain-js computes for `metric` (bundle.json's `metric`), its k and threshold: a `Metrics` value for
    the named metrics and the classes that compute the same (MeanSquaredLogarithmicError, which "msle" makes, is
    Metrics.MSLE's mean over each example's elements); "equal_values" for Keras' Accuracy (the share of values equal
    to their targets); None for the others. A subclass of one's own of those classes may compute otherwise: None."""
    if isinstance(metric, NamedMetric):
        return metric.metric.value, metric.k, metric.threshold
    if type(metric) is MeanSquaredLogarithmicError:
        return Metrics.MSLE.value, TOP_K, 0.5
    if type(metric) is Accuracy:
        return "equal_values", TOP_K, 0.5
    return None


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
