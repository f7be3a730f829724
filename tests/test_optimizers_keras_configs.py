"""Keras 3's own dicts for an optimizer (`keras.optimizers.serialize(optimizer)` and `optimizer.get_config()`, as
Keras 3.15 writes them: tests/data/keras/keras_optimizer_configs.json, by tools/keras_optimizer_config_fixtures.py)
give `optimizers.get` the optimizer the same Keras keywords give its constructor; Keras' settings onnxtrain does not
do are refused naming them; unknown keys and malformed dicts are refused naming what was received."""

from __future__ import annotations

import json
from typing import Any

import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import optimizers
from onnxtrain.errors import InvalidArgumentError, UnknownIdentifierError, UnsupportedError

FIXTURE = json.loads((KERAS_FIXTURES / "keras_optimizer_configs.json").read_text())
ACCEPTED = FIXTURE["accepted"]
REFUSED = FIXTURE["refused"]


def keras_keywords(case: dict[str, Any]) -> optimizers.Optimizer:
    """onnxtrain's class of Keras' class name, given Keras' keywords (at the rate Keras stored, a float32)."""
    return getattr(optimizers, case["class"])(**{**case["kwargs"], "learning_rate": case["config"]["learning_rate"]})


def with_config(case: str, **changes: Any) -> dict[str, Any]:
    """Keras' serialized dict of `case`, with `changes` in its config."""
    serialized = ACCEPTED[case]["serialized"]
    return {**serialized, "config": {**serialized["config"], **changes}}


def test_the_fixture_covers_every_keras_optimizer_onnxtrain_has_and_keras_instance_names():
    assert {case["class"] for case in ACCEPTED.values()} == {
        "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl",
    }  # fmt: skip
    assert ACCEPTED["adam_again"]["config"]["name"] == "adam_1"
    assert ACCEPTED["rmsprop"]["config"]["name"] == "rm_sprop"


@pytest.mark.parametrize("form", ["serialized", "config"])
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_keras_dicts_give_the_optimizer_of_the_same_keywords(case, form):
    got = optimizers.get(ACCEPTED[case][form])
    expected = keras_keywords(ACCEPTED[case])
    assert type(got) is type(expected)
    assert got == expected


def test_keras_names_map_onto_onnxtrains_settings():
    got = optimizers.get(ACCEPTED["adam_settings"]["serialized"])
    assert (got.beta1, got.beta2, got.epsilon, got.amsgrad, got.clip_value) == (0.8, 0.99, 1e-5, True, 0.5)
    got = optimizers.get(ACCEPTED["adamw"]["config"])
    assert (got.weight_decay, got.clip_norm) == (0.01, 1.0)
    got = optimizers.get(ACCEPTED["rmsprop"]["config"])
    assert (got.decay, got.momentum, got.centered) == (0.8, 0.5, True)


@pytest.mark.parametrize("form", ["serialized", "config"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_keras_settings_onnxtrain_does_not_do_are_refused_by_name(case, form):
    with pytest.raises(UnsupportedError, match=rf"does not support Keras' .*{REFUSED[case]['names']}"):
        optimizers.get(REFUSED[case][form])


def test_onnxtrains_own_config_still_round_trips():
    adam = optimizers.Adam(0.01, beta1=0.8, clip_norm=1.0)
    assert optimizers.get(adam.get_config()) == adam
    assert optimizers.get({"class_name": "Adam", "config": adam.get_config()}) == adam


def test_keras_settings_onnxtrains_update_follows_only_at_their_default_are_refused_elsewhere():
    assert ACCEPTED["adagrad"]["config"]["epsilon"] == 1e-7 and ACCEPTED["ftrl"]["config"]["beta"] == 0.0
    with pytest.raises(UnsupportedError, match=r"Adagrad does not support Keras' epsilon=0.1: .* at epsilon=1e-07"):
        optimizers.get(with_config("adagrad", epsilon=0.1))
    with pytest.raises(UnsupportedError, match=r"Ftrl does not support Keras' beta=1.0: .* at beta=0.0"):
        optimizers.get(with_config("ftrl", beta=1.0))


SERIALIZED = ACCEPTED["adam"]["serialized"]

BAD = [
    (
        with_config("adam", lr=0.1),
        InvalidArgumentError,
        r"unknown key\(s\) \['lr'\] for Adam. Accepted keys: \['name', 'learning_rate',.*Keras' names \['beta_1'",
    ),
    ({**SERIALIZED, "class_name": "Lion"}, UnknownIdentifierError, r"optimizer 'Lion'.*AdamW is the nearest"),
    ({**SERIALIZED, "class_name": 3}, InvalidArgumentError, r"serialized form is .*Received: class_name=3"),
    ({**SERIALIZED, "config": [0.01]}, InvalidArgumentError, r"serialized form is .*'config': \{\.\.\.\}"),
    ({**SERIALIZED, "extra": 1}, InvalidArgumentError, r"Received: class_name='Adam', keys \[.*'extra'"),
    ({**ACCEPTED["adam"]["config"], "name": "adamm_1"}, UnknownIdentifierError, r"optimizer 'adamm_1'"),
]


@pytest.mark.parametrize(("config", "error", "message"), BAD)
def test_bad_keras_dicts_are_refused_naming_what_was_received(config, error, message):
    with pytest.raises(error, match=message):
        optimizers.get(config)
