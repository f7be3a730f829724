"""Checking a run config's keys and plain settings (`check_config`): a run refuses a bad config, naming the key and
what it expects, before it prints or creates anything. The model its `layers` describe: `_config_model`."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from onnxtrain import engines
from onnxtrain._checks import check_positive_int, check_validation_split
from onnxtrain.cli._config_keys import (
    CONFIG_KEYS,
    DATA_KEYS,
    FINETUNED_FROM,
    RECORD_KEYS,
    RESUMED_FROM,
    setting,
)
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

# The top-level keys that no layer takes: written in a [[layers]] table (in TOML, after its header), they are misplaced.
RUN_KEYS = set(CONFIG_KEYS) - {"layers", "data", "name", "seed"}

MAX_NAME_LENGTH = 100
SAFE_NAME = re.compile(rf"\w[\w.-]{{0,{MAX_NAME_LENGTH - 1}}}")


def check_config(config: Any, source: str, resuming: bool = False) -> dict[str, Any]:
    """`config` itself once it is a table of known keys with a non-empty `layers` list and a valid [data] table,
    and its plain settings (name, epochs, batch_size, validation_split, metric/metrics) have usable values: a
    run refuses a bad config before it prints or creates anything. `resuming`: the run.json that --resume reads,
    which may name the model it resumed (`resumed_from`) or fine-tuned (`finetuned_from`) instead of its layers."""
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"{source} expects a table of settings. Received: {type(config).__name__}")
    unknown = sorted(set(config) - CONFIG_KEYS.keys() - RECORD_KEYS - {RESUMED_FROM, FINETUNED_FROM})
    misplaced = [key for key in unknown if key in DATA_KEYS]
    if misplaced:
        moves = "; ".join(f"[data] {key} = {_written(config[key])}" for key in misplaced)
        raise InvalidArgumentError(
            f"{source} has {_listed(misplaced)} at its top level, {_keys_of(misplaced)} the [data] table: move "
            f"{_it(misplaced)} there: {moves}{_toml_note(source, 'under the [data] header')}"
        )
    if unknown:
        raise InvalidArgumentError(
            f"{source} has {_unknown_keys(unknown, CONFIG_KEYS)}. Valid keys: {sorted(CONFIG_KEYS)}"
        )
    layers = config.get("layers")
    if layers is None and (RESUMED_FROM in config or FINETUNED_FROM in config):
        if not resuming:
            origin = (
                f"a resumed run of the saved model {config[RESUMED_FROM]!r}"
                if RESUMED_FROM in config
                else f"a fine-tuning of the ONNX model {config[FINETUNED_FROM]!r} (onnxtrain finetune)"
            )
            raise InvalidArgumentError(
                f"{source} records {origin}, whose layers no run config describes, so it cannot train a model from "
                f"scratch. Continue that run with onnxtrain train --resume {Path(source).parent} --epochs N"
            )
        layers = [{"type": "Input"}]  # (the [data] table and settings are checked below as a run config's)
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) and "type" in x for x in layers):
        raise InvalidArgumentError(
            f"{source} expects `layers`: a list of tables with a `type`, e.g. "
            '[[layers]] type = "Dense" units = 10. Received: ' + repr(layers)[:80]
        )
    engine = setting(config, "engine")
    if engine not in engines.names():
        raise InvalidArgumentError(
            f"{source}: engine expects one of {list(engines.names())}. Received: engine={engine!r}"
        )
    for i, layer in enumerate(layers):
        misplaced = [key for key in layer if key in RUN_KEYS]
        if misplaced:
            moves = "; ".join(f"{key} = {_written(layer[key])}" for key in misplaced)
            raise InvalidArgumentError(
                f"{source}: layers[{i}] ({layer['type']!r}) has {_listed(misplaced)}, {_keys_of(misplaced)} the "
                f"config's top level, not a layer argument: move {_it(misplaced)} there: {moves}"
                f"{_toml_note(source, 'above the first [table] or [[layers]] header')}"
            )
        if not isinstance(layer["type"], str):
            raise InvalidTypeError(
                f'{source}: layers[{i}] expects `type` to be a layer class name (a str such as "Dense"). '
                f"Received: type={layer['type']!r}"
            )
    if "layers" in config and all(layer["type"] == "Input" for layer in layers):
        raise InvalidArgumentError(  # else the loss refuses the Input's width, naming a layer the config lacks
            f"{source} has no layers after its Input: `layers` holds only {len(layers)} Input table"
            f"{'s' if len(layers) > 1 else ''}, so there is no model to train. Add the model's layers after it, e.g. "
            '[[layers]] type = "Flatten" then [[layers]] type = "Dense" units = 10'
        )
    if (
        "layers" in config
        and layers[0]["type"] != "Input"
        and not any(key in layers[0] for key in ("input_shape", "input_dim", "batch_input_shape"))
    ):
        raise InvalidArgumentError(  # else the Python API's advice (model.build(...)) would answer for the config
            f"{source} expects its `layers` to start with an Input table giving the shape of one example, e.g. "
            '[[layers]] type = "Input" shape = [28, 28, 1] (or input_shape = [...] on the first layer). Received: '
            f"layers[0] of type {layers[0]['type']!r}"
        )
    data = config.get("data", {})
    if not isinstance(data, dict):
        raise InvalidTypeError(
            f'{source}: [data] expects a table of the keys {sorted(DATA_KEYS)}, e.g. [data] train = "train.npz". '
            f"Received: data={data!r} ({type(data).__name__})"
        )
    unknown = sorted(set(data) - DATA_KEYS)
    misplaced = [key for key in unknown if key in CONFIG_KEYS]
    if misplaced:
        moves = "; ".join(f"{key} = {_written(data[key])}" for key in misplaced)
        raise InvalidArgumentError(
            f"{source}: [data] has {_listed(misplaced)}, {_keys_of(misplaced)} the config's top level, not of [data]: "
            f"move {_it(misplaced)} there: {moves}{_toml_note(source, 'above the first [table] or [[layers]] header')}"
        )
    if unknown:
        raise InvalidArgumentError(
            f"{source}: [data] has {_unknown_keys(unknown, DATA_KEYS)}. It takes the keys {sorted(DATA_KEYS)}"
        )
    _check_name(config, source)
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidArgumentError(  # Sequential's rule, in the config's words
            f"{source}: seed expects a non-negative int, e.g. seed = 42 (leave it out for a random one). "
            f"Received: seed={seed!r}"
        )
    # fit's and compile's checks, refused before a run starts
    for key in ("epochs", "batch_size", "threads", "checkpoint_every"):
        try:
            check_positive_int(key, config.get(key, 1))
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{source}: {e}") from e
    split = setting(config, "validation_split")
    try:
        check_validation_split(split)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(  # fit's rule, in the config's words
            f"{source}: validation_split expects a number in [0, 1), e.g. 0.1. Received: validation_split={split!r}"
        ) from e
    if split and data.get("validation") is not None:
        raise InvalidArgumentError(
            f"{source} sets both validation_split = {split!r} and [data] validation = {data['validation']!r}; "
            "a run validates on one of them: remove the other."
        )
    if "metric" in config and "metrics" in config:
        raise InvalidArgumentError(
            f"{source} sets both `metric` and `metrics`; compile() takes one of them: use metrics = [...] for "
            f"several. Received: metric={config['metric']!r}, metrics={config['metrics']!r}"
        )
    return config


def _listed(keys: list[str]) -> str:
    return f"the key {keys[0]!r}" if len(keys) == 1 else f"the keys {keys}"


def _keys_of(keys: list[str]) -> str:
    return "a key of" if len(keys) == 1 else "keys of"


def _it(keys: list[str]) -> str:
    return "it" if len(keys) == 1 else "them"


def _written(value: Any) -> str:
    """`value` as a config writes it (TOML's and JSON's literals agree for these: 0.2, "train.npz", true, [...])."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _toml_note(source: str, where: str) -> str:
    """Why a TOML config puts a key in the wrong table: every key after a table header belongs to that table."""
    if Path(source).suffix.lower() != ".toml":
        return ""
    return f" (in TOML, {where}: every key written after a [table] or [[layers]] header belongs to that table)"


def _unknown_keys(unknown: list[str], known: Collection[str]) -> str:
    """How an error names `unknown` keys, with the known keys close to them: "an unknown key 'trian' (did you
    mean 'train'?)", "unknown keys [...] (did you mean ...?)"."""
    matches = {key: difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6) for key in unknown}
    if len(unknown) == 1:
        match = matches[unknown[0]]
        return f"an unknown key {unknown[0]!r}" + (f" (did you mean {match[0]!r}?)" if match else "")
    close = [f"{match[0]!r} for {key!r}" for key, match in matches.items() if match]
    return f"unknown keys {unknown}" + (f" (did you mean {', '.join(close)}?)" if close else "")


def _check_name(config: dict[str, Any], source: str) -> None:
    """The model name also names the run folder (runs/NAME-TIME), so it must be one safe path component."""
    if "name" not in config:
        return
    name = config["name"]
    if not isinstance(name, str):
        raise InvalidTypeError(
            f'{source}: name expects a str such as "fashion_mlp". Received: name={name!r} ({type(name).__name__})'
        )
    if not SAFE_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"{source}: name names the run folder runs/NAME-TIME, so it takes 1 to {MAX_NAME_LENGTH} letters, "
            "digits, '_', '-' and '.', starting with a letter, digit or '_' (no '/', '\\' or spaces). "
            f"Received: name={name!r}"
        )
