"""Run configs for the command line: reading a TOML/JSON config and checking its keys, the built-in examples, and
the Sequential model and compile settings a config describes."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxtrain.errors import InvalidArgumentError, OnnxtrainError

if TYPE_CHECKING:
    from onnxtrain import Sequential

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
    }
}
CONFIG_KEYS = {
    "name", "seed", "layers", "optimizer", "loss", "metric", "metrics", "epochs", "batch_size",
    "validation_split", "data",
}  # fmt: skip
DATA_KEYS = {"train", "test", "validation"}
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LOSS = "softmax_cross_entropy_with_logits"


def example_config(name: str) -> dict[str, Any]:
    """A copy of the built-in config `name` (one of EXAMPLES), safe to override."""
    return copy.deepcopy(EXAMPLES[name])


def read_config(path: str | Path) -> dict[str, Any]:
    """A model config from a .toml or .json file, checked for unknown keys.

    Raises:
        InvalidArgumentError: another suffix, a file that does not parse, or a config `check_config` rejects.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            config = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            config = json.loads(text)
        else:
            raise InvalidArgumentError(f"the config must be a .toml or .json file. Received: '{path}'")
    except (ValueError, TypeError) as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        if isinstance(e, OnnxtrainError):
            raise
        raise InvalidArgumentError(f"'{path}' is not valid {path.suffix[1:].upper()}: {e}") from e
    return check_config(config, str(path))


def check_config(config: Any, source: str) -> dict[str, Any]:
    """`config` itself once it is a table of known keys with a non-empty `layers` list and a valid [data] table."""
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"{source} expects a table of settings. Received: {type(config).__name__}")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise InvalidArgumentError(f"{source} has unknown keys {unknown}. Valid keys: {sorted(CONFIG_KEYS)}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) and "type" in x for x in layers):
        raise InvalidArgumentError(
            f"{source} expects `layers`: a list of tables with a `type`, e.g. "
            '[[layers]] type = "Dense" units = 10. Received: ' + repr(layers)[:80]
        )
    data = config.get("data", {})
    if not isinstance(data, dict) or set(data) - DATA_KEYS:
        raise InvalidArgumentError(f"{source}: [data] takes the keys {sorted(DATA_KEYS)}. Received: {data!r}")
    return config


def build_model(config: dict[str, Any]) -> Sequential:
    """The Sequential model of a checked config's `layers`, `name` and `seed`."""
    from onnxtrain import Sequential
    from onnxtrain.layers import Layer

    layers = []
    for i, entry in enumerate(config["layers"]):
        settings = {k: v for k, v in entry.items() if k != "type"}
        try:
            layers.append(Layer.from_config({"class_name": entry["type"], "config": settings}))
        except TypeError as e:  # an unexpected or missing keyword of the layer's constructor
            raise InvalidArgumentError(f"layers[{i}] ({entry['type']}): {e}") from e
    return Sequential(layers, name=str(config.get("name", "sequential")), seed=config.get("seed"))


def compile_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `Sequential.compile` a config gives: optimizer, loss, and metric or metrics."""
    metric = {"metrics": config["metrics"]} if "metrics" in config else {"metric": config.get("metric")}
    return {
        "optimizer": config.get("optimizer", DEFAULT_OPTIMIZER),
        "loss": config.get("loss", DEFAULT_LOSS),
        **metric,
    }
