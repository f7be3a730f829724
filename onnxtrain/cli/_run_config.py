"""Runs of `onnxtrain train`: reading a TOML/JSON config and checking its keys, the built-in examples, what a run
records for --resume, and the output folder a run writes into (the model a config describes: `_config_model`)."""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import os
import re
import time
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any, NamedTuple

from onnxtrain import engines
from onnxtrain._artifacts_folder import check_writable_folder
from onnxtrain._bounded_read import open_regular, read_bounded
from onnxtrain._checks import check_positive_int, check_validation_split
from onnxtrain.cli._data import LISTED_ENTRIES, SAVED_MODEL, DatasetLoader, check_saved_model
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    listing,
)
from onnxtrain.model_files import CONFIG_FILE, MODEL_FILE, SAVED_FILES
from onnxtrain.saving import unreplaceable_entries

# The tutorial (README, tools/tutorial.py): KotlinDL's Fashion-MNIST MLP, with linear logits (the tutorial's
# Dense(10) is relu, which compile warns about: it can leave classes unlearnable, see tools/seed_study.py), a
# fixed seed and per-epoch figures on the test set. examples/fashion_mlp.toml is the same config.
EXAMPLES: dict[str, dict[str, Any]] = {
    "fashion-mlp": {
        "name": "fashion_mlp",
        "seed": 42,
        "layers": [
            {"type": "Input", "shape": [28, 28, 1]},
            {"type": "Flatten"},
            {"type": "Dense", "units": 300, "activation": "relu"},
            {"type": "Dense", "units": 100, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "linear"},
        ],
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "loss": "softmax_cross_entropy_with_logits",
        "metric": "accuracy",
        "epochs": 10,
        "batch_size": 100,
        "data": {"train": "fashion-mnist:train", "test": "fashion-mnist:test", "validation": "test"},
    },
    # The LeNet-style CNN of issue 20 (tools/_tutorial.py cnn_layers, which tools/bench_peers times against torch,
    # JAX and Keras), trained as the MLP is. examples/fashion_cnn.toml is the same config.
    "fashion-cnn": {
        "name": "fashion_cnn",
        "seed": 42,
        "layers": [
            {"type": "Input", "shape": [28, 28, 1]},
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Conv2D", "filters": 64, "kernel_size": 3, "padding": "valid", "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "units": 128, "activation": "relu"},
            {"type": "Dropout", "rate": 0.5},
            {"type": "Dense", "units": 10, "activation": "linear"},
        ],
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "loss": "softmax_cross_entropy_with_logits",
        "metric": "accuracy",
        "epochs": 10,
        "batch_size": 100,
        "data": {"train": "fashion-mnist:train", "test": "fashion-mnist:test", "validation": "test"},
    },
}
EXAMPLE_HELP = {"fashion-mlp": "the tutorial's MLP", "fashion-cnn": "a LeNet-style CNN"}  # for train --help
CONFIG_KEYS = {
    "name", "seed", "layers", "optimizer", "loss", "metric", "metrics", "epochs", "batch_size",
    "validation_split", "data", "threads", "engine", "checkpoint_every",
}  # fmt: skip
DATA_KEYS = {"train", "test", "validation"}
DEFAULT_BATCH_SIZE = 32  # fit's
DEFAULT_EPOCHS = 1  # a config's without `epochs`
# What run.json notes about the run beside its config (how it ended, or the epoch of the checkpoint it describes; how
# many processes trained it, with how many threads each); training ignores it.
RECORD_KEYS = {"interrupted", "checkpoint", "workers"}
# The run.json of a model that no run config describes names where it came from instead of its layers: a resumed
# model saved by model.save() (`resumed_from`), an ONNX model fine-tuned by `onnxtrain finetune` (`finetuned_from`).
# --resume reads it (data, batch size); training a model from scratch from it is refused.
RESUMED_FROM = "resumed_from"
FINETUNED_FROM = "finetuned_from"
MAX_NAME_LENGTH = 100
SAFE_NAME = re.compile(rf"\w[\w.-]{{0,{MAX_NAME_LENGTH - 1}}}")
MAX_RUN_CONFIG_BYTES = 1 << 20  # a run config is a few lines; a FIFO or a huge file is refused, not read
ONNX_PREFIX_BYTES = 4096  # what is read of a file too large for a config to tell an ONNX model
RUN_FILE = "run.json"  # beside model/: the run's config, data paths absolute, epochs counting all the model trained
HISTORY_FILE = "history.csv"
RESUME_EPOCHS = "with --epochs N, the number of epochs to add"
CONFIG_EXPECTED = "train expects a run config, a .toml or .json file (see examples/fashion_mlp.toml), or --example NAME"


def example_config(name: str) -> dict[str, Any]:
    """A copy of the built-in config `name` (one of EXAMPLES), safe to override."""
    return copy.deepcopy(EXAMPLES[name])


def positive_int(text: str) -> int:
    """argparse's `type` for options that take a positive integer (--epochs, --batch-size, ...)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def read_config(path: str | Path, resuming: bool = False) -> dict[str, Any]:
    """A model config from a .toml or .json file, checked for unknown keys.

    Raises:
        InvalidArgumentError: a folder, an ONNX model, another suffix, a binary or non-UTF-8 file, a file that
            does not parse, or a config `check_config` rejects.
    """
    path = Path(path)
    if path.is_dir():
        if _is_saved_model(path):
            raise InvalidArgumentError(
                f"'{path}' is a saved model directory, not a run config; to continue training a saved model use "
                f"--resume {path} ({RESUME_EPOCHS})"
            )
        if _is_saved_model(path / "model"):
            raise InvalidArgumentError(
                f"'{path}' is the output folder of a run, not a run config; to continue training its model use "
                f"--resume {path / 'model'} ({RESUME_EPOCHS})"
            )
        raise InvalidArgumentError(f"'{path}' is a folder, not a run config: {CONFIG_EXPECTED}")
    suffix = path.suffix.lower()
    if suffix == ".onnx" and path.is_file():  # whatever its size: a model is not a config that is too big
        raise _not_a_config_but_onnx(path)
    try:
        data = read_bounded(path, MAX_RUN_CONFIG_BYTES, InvalidArgumentError, "a run config")
    except InvalidArgumentError as e:
        if _starts_as_onnx_model(path):  # a large model under another name (model.json, model.bin)
            raise _not_a_config_but_onnx(path) from e
        raise
    if not _is_text(data) and _is_onnx_model(data):
        raise _not_a_config_but_onnx(path)
    if suffix not in (".toml", ".json"):
        raise InvalidArgumentError(
            f"the config must be a .toml or .json file (see examples/fashion_mlp.toml), or pass --example NAME. "
            f"Received: '{path}'"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(
            f"'{path}' is not a run config: it is not UTF-8 text (byte 0x{data[e.start]:02x} at position {e.start}). "
            f"{CONFIG_EXPECTED}"
        ) from e
    if "\x00" in text:
        raise InvalidArgumentError(
            f"'{path}' is not a run config: it is a binary file (a NUL byte at position {text.index(chr(0))}). "
            f"{CONFIG_EXPECTED}"
        )
    try:
        config = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (ValueError, TypeError, RecursionError) as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InvalidArgumentError(f"'{path}' is not valid {suffix[1:].upper()}: {e}") from e
    return check_config(config, str(path), resuming)


def _not_a_config_but_onnx(path: Path) -> InvalidArgumentError:
    resume = (
        f"; to continue training the saved model it belongs to: onnxtrain train --resume {path.parent} --epochs N"
        if _is_saved_model(path.parent)
        else ""
    )
    return InvalidArgumentError(
        f"'{path}' is an ONNX model, not a run config: `onnxtrain train` builds and trains a model that a "
        ".toml or .json config (see examples/fashion_mlp.toml) or --example NAME describes. To fine-tune this "
        f"one: onnxtrain finetune {path} --data DATA --output DIR; to inspect it: onnxtrain summary {path}{resume}"
    )


def _starts_as_onnx_model(path: Path) -> bool:
    """Whether the first bytes of the file `path` are those of an ONNX model (read without reading the rest)."""
    from onnxtrain._onnx_file import starts_as_onnx_model  # imports onnx: only for a file too large for a config

    try:
        with open_regular(path) as file:
            prefix = file.read(ONNX_PREFIX_BYTES) or b""
    except (OSError, ValueError):
        return False
    return starts_as_onnx_model(prefix)


def _is_saved_model(directory: Path) -> bool:
    return (directory / CONFIG_FILE).is_file() and (directory / MODEL_FILE).is_file()


def _is_text(data: bytes) -> bool:
    try:
        return "\x00" not in data.decode("utf-8")
    except UnicodeDecodeError:
        return False


def _is_onnx_model(data: bytes) -> bool:
    """Whether binary `data` parses as an ONNX model with a graph (a renamed model.onnx, say)."""
    import onnx

    try:
        proto = onnx.load_model_from_string(data)
    except Exception:  # protobuf raises DecodeError and more on other binary files
        return False
    return proto.ir_version > 0 and len(proto.graph.node) > 0


def check_config(config: Any, source: str, resuming: bool = False) -> dict[str, Any]:
    """`config` itself once it is a table of known keys with a non-empty `layers` list and a valid [data] table,
    and its plain settings (name, epochs, batch_size, validation_split, metric/metrics) have usable values: a
    run refuses a bad config before it prints or creates anything. `resuming`: the run.json that --resume reads,
    which may name the model it resumed (`resumed_from`) or fine-tuned (`finetuned_from`) instead of its layers."""
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"{source} expects a table of settings. Received: {type(config).__name__}")
    unknown = sorted(set(config) - CONFIG_KEYS - RECORD_KEYS - {RESUMED_FROM, FINETUNED_FROM})
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
    engine = config.get("engine", "auto")
    if engine not in engines.names():
        raise InvalidArgumentError(
            f"{source}: engine expects one of {list(engines.names())}. Received: engine={engine!r}"
        )
    for i, layer in enumerate(layers):
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
    split = config.get("validation_split", 0.0)
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


def _unknown_keys(unknown: list[str], known: set[str]) -> str:
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


# --- what a run records, and resuming it ---------------------------------------------------------------------
def run_record(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """`config` as OUTPUT/run.json records it: its data paths made absolute (taken from `base`), so that
    `onnxtrain train --resume` finds the data from anywhere."""
    record = copy.deepcopy({k: v for k, v in config.items() if k not in RECORD_KEYS})  # notes of another run
    if record.get("data"):
        loader = DatasetLoader(base)
        data = record["data"]
        record["data"] = {k: v if k == "validation" and v == "test" else loader.absolute(v) for k, v in data.items()}
    return record


class SavedRun(NamedTuple):
    """A saved model to resume, with the run config and history.csv of the run that wrote it (None: not found)."""

    directory: Path
    record: dict[str, Any] | None
    history: Path | None


def find_saved_run(path: str) -> SavedRun:
    """The saved model --resume names (a run's model/ folder, or the run's folder), and what its run left beside it.

    Raises:
        ModelFileError: not a saved model.
        InvalidArgumentError: a run.json beside it that is not a valid run config.
    """
    directory = Path(path)
    if not (directory / CONFIG_FILE).exists() and _is_saved_model(directory / "model"):
        directory = directory / "model"
    check_saved_model(directory, SAVED_MODEL)
    run_folder = directory.parent if directory.name == "model" else None  # the layout `onnxtrain train` writes
    if run_folder is None:
        return SavedRun(directory, None, None)
    record = read_config(run_folder / RUN_FILE, resuming=True) if (run_folder / RUN_FILE).is_file() else None
    history = run_folder / HISTORY_FILE if (run_folder / HISTORY_FILE).is_file() else None
    return SavedRun(directory, record, history)


# --- the output folder -------------------------------------------------------------------------------------
DEFAULT_RUNS = Path("runs")  # where a run without --output makes its folder


def output_dir(requested: str | None, name: str) -> Path:
    """The --output folder, or a new runs/NAME-TIME[-N] folder created atomically (so two runs started in
    the same second get different folders)."""
    if requested:
        Path(requested).mkdir(parents=True, exist_ok=True)
        return Path(requested)
    stem = DEFAULT_RUNS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = stem if n == 1 else stem.with_name(f"{stem.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise InvalidArgumentError(f"could not create a new folder next to '{stem}'; pass --output DIR")


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse an --output whose model/ folder the final save would refuse, before anything is trained or created.

    Raises:
        InvalidArgumentError: --output is a file, or OUTPUT/model exists without --overwrite or is not a folder, or
            --output (or the folder it would be created in) or OUTPUT/model cannot be written (a read-only file
            system, no permission, an immutable folder).
        ModelExistsError: OUTPUT/model holds entries that are not files of a saved model.
        OSError: OUTPUT/model cannot be listed.
    """
    if output.exists() and not output.is_dir():
        raise InvalidArgumentError(f"--output expects a folder. Received: '{output}', which is a file")
    check_replaceable(output / "model", overwrite, SAVED_FILES, "a saved model", "--output", "trained or changed")
    check_writable_folder(output, "--output", "trained")
    if (output / "model").is_dir():  # --overwrite swaps it for the new one: it must take writes too
        check_writable_folder(output / "model", "--output", "trained")


def check_replaceable(
    folder: Path, overwrite: bool, files: Collection[str], holding: str, other: str, untouched: str
) -> None:
    """Refuse a `folder` that a save of `files` (`holding`: "a saved model") would refuse, in the command line's
    words: --overwrite rather than the Python API's writing_mode, and `other` (the option naming another place).
    `untouched` ends the last message ("Nothing was <untouched>.").

    Raises:
        InvalidArgumentError: `folder` exists without --overwrite, or is not a folder.
        ModelExistsError: `folder` holds entries that are not among `files`.
        OSError: `folder` cannot be listed.
    """
    if not os.path.lexists(folder):
        return
    if not overwrite:
        raise InvalidArgumentError(f"'{folder}' already exists. Pass --overwrite to replace it, or another {other}.")
    if not folder.is_dir():
        raise InvalidArgumentError(
            f"'{folder}' is a file, not a folder of {holding}; --overwrite replaces only such a folder. Move it, or "
            f"pass another {other}."
        )
    foreign = unreplaceable_entries(folder, files)
    if foreign:
        raise ModelExistsError(
            f"--overwrite replaces '{folder}' only when it holds nothing but {holding} "
            f"({', '.join(sorted(files))}); it also holds {listing(foreign, LISTED_ENTRIES)}. Move or remove those, "
            f"or pass another {other}. Nothing was {untouched}."
        )
