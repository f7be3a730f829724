"""The keys of a run config and their defaults (`onnxtrain.cli._config_keys`): `train --help` lists every key that
`check_config` takes, each with the default that a run then uses, from the one table."""

from __future__ import annotations

import pytest

from onnxtrain.cli import main
from onnxtrain.cli._config_check import check_config
from onnxtrain.cli._config_keys import CONFIG_KEYS, DATA_KEYS, defaults_help, setting
from onnxtrain.cli._config_model import build_model, compile_settings
from onnxtrain.errors import InvalidArgumentError

LAYERS = [{"type": "Input", "shape": [4]}, {"type": "Dense", "units": 2}]
# A value of each key that check_config accepts, other than its default.
SOME_VALUES = {
    "layers": LAYERS,
    "data": {"train": "train.npz"},
    "name": "run",
    "seed": 7,
    "optimizer": "sgd",
    "loss": "mse",
    "metric": "accuracy",
    "metrics": ["accuracy"],
    "epochs": 2,
    "batch_size": 8,
    "validation_split": 0.25,
    "threads": 1,
    "engine": "portable",
    "checkpoint_every": 1,
}


def _train_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_train_help_lists_every_config_key_with_its_default(capsys):
    text = _train_help(capsys)
    assert " ".join(defaults_help().split()) in text
    for key, entry in CONFIG_KEYS.items():
        shown = f"{key}: {entry.left_out}" if entry.default is None else f"{key} = {entry.default!r}"
        assert " ".join(shown.split()) in text, key
    # the keys an earlier help left out, with their defaults
    for shown in ("name = 'sequential'", "validation_split = 0.0", "threads: ", "checkpoint_every: "):
        assert shown in text


def test_the_keys_the_help_lists_are_the_keys_a_config_takes():
    assert set(SOME_VALUES) == set(CONFIG_KEYS)
    for key, value in SOME_VALUES.items():  # each alone, as check_config's rules allow (metric xor metrics)
        check_config({"layers": LAYERS, key: value}, "c.toml")
    with pytest.raises(InvalidArgumentError, match=r"an unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        check_config({"layers": LAYERS, "epoch": 2}, "c.toml")
    assert DATA_KEYS == {"train", "test", "validation"}


def test_a_config_that_leaves_keys_out_gets_the_defaults_the_help_states():
    config = {"layers": LAYERS}
    with build_model(config) as model:
        assert model.name == CONFIG_KEYS["name"].default == "sequential"
    assert compile_settings(config) == {
        "optimizer": CONFIG_KEYS["optimizer"].default,
        "loss": CONFIG_KEYS["loss"].default,
        "metric": None,
        "engine": CONFIG_KEYS["engine"].default,
    }
    expected = {"epochs": 1, "batch_size": 32, "validation_split": 0.0, "threads": None, "checkpoint_every": None}
    assert {key: setting(config, key) for key in expected} == expected
    assert setting({"epochs": 5}, "epochs") == 5  # a key given is the config's


@pytest.mark.parametrize(
    ("config", "source", "message"),
    [
        (  # f4_bad.toml: a top-level key written after the [data] header
            {"layers": LAYERS, "data": {"train": "imgs", "validation_split": 0.2}},
            "c.toml",
            r"c\.toml: \[data\] has the key 'validation_split', a key of the config's top level, not of \[data\]: "
            r"move it there: validation_split = 0\.2 \(in TOML, above the first \[table\] or \[\[layers\]\] header",
        ),
        (
            {"layers": LAYERS, "data": {"train": "t.npz", "epochs": 3, "batch_size": 8}},
            "c.json",
            r"\[data\] has the keys \['batch_size', 'epochs'\], keys of the config's top level, not of \[data\]: "
            r"move them there: batch_size = 8; epochs = 3$",
        ),
        (  # a top-level key written after the last [[layers]] header
            {"layers": [*LAYERS[:1], {**LAYERS[1], "epochs": 4, "loss": "mse"}]},
            "c.toml",
            r"c\.toml: layers\[1\] \('Dense'\) has the keys \['epochs', 'loss'\], keys of the config's top level, not "
            r'a layer argument: move them there: epochs = 4; loss = "mse" \(in TOML, above the first',
        ),
        (  # a [data] key at the top level
            {"layers": LAYERS, "train": "train.npz"},
            "c.toml",
            r"c\.toml has the key 'train' at its top level, a key of the \[data\] table: move it there: "
            r'\[data\] train = "train\.npz" \(in TOML, under the \[data\] header',
        ),
    ],
    ids=["split_in_data", "two_in_data_json", "in_a_layer", "data_key_at_top"],
)
def test_a_key_of_another_table_is_refused_saying_where_it_goes(config, source, message):
    with pytest.raises(InvalidArgumentError, match=message):
        check_config(config, source)


def test_a_layer_keeps_its_own_name_and_seed():
    layers = [LAYERS[0], {"type": "Dropout", "rate": 0.5, "seed": 3, "name": "drop"}, LAYERS[1]]
    assert check_config({"layers": layers}, "c.toml")["layers"] is layers
