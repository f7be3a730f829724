"""The keys of a run config (`onnxtrain train`'s TOML/JSON) and the default of each: the one table that a run reads
its settings from (`setting`) and that `onnxtrain train --help` lists (`defaults_help`), so the two cannot differ."""

from __future__ import annotations

from typing import Any, NamedTuple


class ConfigKey(NamedTuple):
    """A key of a run config: the value a run takes when the config leaves it out, and what that means in the words
    of `train --help` (after the value, in parentheses; alone where the default is None: no value to show)."""

    default: Any
    left_out: str = ""


# In the order `train --help` lists them.
CONFIG_KEYS: dict[str, ConfigKey] = {
    "layers": ConfigKey(None, "required (the model's layers, an Input table giving the shape of one example first)"),
    "data": ConfigKey(None, "required ([data] train; no test and no validation data unless [data] test and "
                           "validation name them)"),
    "name": ConfigKey("sequential", "the model's name, which names the run folder runs/NAME-TIME"),
    "seed": ConfigKey(None, "a random seed (printed, and recorded in run.json)"),
    "optimizer": ConfigKey("adam", "with its default settings"),
    "loss": ConfigKey("softmax_cross_entropy_with_logits", "the last layer's outputs are logits, one per class"),
    "metric": ConfigKey(None, "no metric (only the loss is logged: metric = 'accuracy' adds one)"),
    "metrics": ConfigKey(None, "none (a list such as metrics = ['accuracy'], in place of metric)"),
    "epochs": ConfigKey(1),
    "batch_size": ConfigKey(32),  # fit's
    "validation_split": ConfigKey(0.0, "nothing of the training data is held out for validation"),
    "threads": ConfigKey(None, "ONNX Runtime's default (a thread per core; cores // N in each of --workers N)"),
    "engine": ConfigKey("auto", "the portable engine"),
    "checkpoint_every": ConfigKey(None, "model/ is saved at the end only, and on Ctrl-C or SIGTERM"),
}  # fmt: skip
DATA_KEYS = {"train", "test", "validation"}
# What run.json notes about the run beside its config (how it ended, or the epoch of the checkpoint it describes; how
# many processes trained it, with how many threads each); training ignores it.
RECORD_KEYS = {"interrupted", "checkpoint", "workers"}
# The run.json of a model that no run config describes names where it came from instead of its layers: a resumed
# model saved by model.save() (`resumed_from`), an ONNX model fine-tuned by `onnxtrain finetune` (`finetuned_from`).
# --resume reads it (data, batch size); training a model from scratch from it is refused.
RESUMED_FROM = "resumed_from"
FINETUNED_FROM = "finetuned_from"

DEFAULT_LOSS: str = CONFIG_KEYS["loss"].default  # finetune's --loss too
DEFAULT_BATCH_SIZE: int = CONFIG_KEYS["batch_size"].default  # a resumed model that no run.json describes


def setting(config: dict[str, Any], key: str) -> Any:
    """The value of `key` in a run config (or a run.json), or its default where the config leaves it out."""
    return config.get(key, CONFIG_KEYS[key].default)


def defaults_help() -> str:
    """What `train --help` says of the keys a config leaves out: every key of `CONFIG_KEYS`, with its default."""
    parts = []
    for key, entry in CONFIG_KEYS.items():
        if entry.default is None:
            parts.append(f"{key}: {entry.left_out}")
        else:
            parts.append(f"{key} = {entry.default!r}" + (f" ({entry.left_out})" if entry.left_out else ""))
    return "A config's keys, and what each is when left out: " + "; ".join(parts) + "."
