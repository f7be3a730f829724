"""What an exported model's metadata and outputs tell `InferenceModel`: its input_scale, class names and loss (each
output's, for a model of several), and which of the graph's outputs are the model's own rather than the
probabilities that follow a classifier's output."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from onnxtrain import losses
from onnxtrain.errors import ModelFileError, OnnxtrainError
from onnxtrain.model_files import META_CLASS_NAMES, META_LOSS

LOGITS = "logits"
PROBABILITIES = "probabilities"


def predicted_outputs(names: tuple[str, ...]) -> tuple[str, ...]:
    """The model's own outputs among the graph's `names`: not `probabilities` after `logits`, nor the
    `<output>_probabilities` that follows an output of a model of several (`emit.inference_graph`)."""
    companions = {f"{name}_{PROBABILITIES}" for name in names}
    if LOGITS in names:
        companions.add(PROBABILITIES)
    return tuple(name for name in names if name not in companions)


def output_losses(metadata: Mapping[str, str]) -> dict[str, losses.Loss]:
    """The loss of each output of a model of several, by output name, from the `onnxtrain.loss` metadata
    (`multi_output.OutputLosses.get_config`); an output whose loss this version does not know is left out (its
    outputs are then given raw)."""
    try:
        config = json.loads(metadata.get(META_LOSS, ""))
    except ValueError:
        return {}
    if (
        not isinstance(config, dict)
        or config.get("name") != "output_losses"
        or not isinstance(config.get("outputs"), list)
    ):
        return {}
    found = {}
    for output in config["outputs"]:
        try:
            found[str(output["name"])] = losses.get(output["loss"])
        except (OnnxtrainError, KeyError, TypeError, ValueError):
            continue
    return found


def float_metadata(metadata: Mapping[str, str], key: str, source: str) -> float:
    if key not in metadata:
        return 1.0
    try:
        value = float(metadata[key])
    except ValueError as e:
        raise ModelFileError(f"{source}: metadata {key!r} must be a number. Found: {metadata[key]!r}") from e
    if not np.isfinite(value) or value <= 0:
        raise ModelFileError(f"{source}: metadata {key!r} must be a positive number. Found: {metadata[key]!r}")
    return value


def metadata_class_names(metadata: Mapping[str, str], source: str) -> tuple[str, ...] | None:
    if META_CLASS_NAMES not in metadata:
        return None
    try:
        names = json.loads(metadata[META_CLASS_NAMES])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{source}: metadata {META_CLASS_NAMES!r} is not a JSON list: {e}") from e
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{source}: metadata {META_CLASS_NAMES!r} must be a JSON list of strings.")
    return tuple(names)


def metadata_loss(metadata: Mapping[str, str]) -> losses.Loss | None:
    try:
        if META_LOSS not in metadata:
            return None
        value = metadata[META_LOSS]  # a name, or a config with more than the name (model_files.exported_model)
        return losses.get(json.loads(value) if value.startswith("{") else value)
    except (OnnxtrainError, ValueError):  # a loss this version does not know: fall back to the graph's outputs
        return None
