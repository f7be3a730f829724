"""Keras 3's Functional model configs (tests/data/keras/model_configs.json, by tools/keras_model_config_fixtures.py)
in onnxtrain's form (`_keras_functional_config`): their `__keras_tensor__` calls as refs, one input or output ref as a
list of one, a dict of outputs counted by sorted key, a call's `training` dropped (Keras' fit and predict give each
call the model's mode). Rebuilt with Keras' weights, each model computes Keras' outputs; an onnxtrain config passes
through unchanged. Nested Sequentials and Keras' masks: tests/test_keras_functional_config_rebuilt.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Model
from onnxtrain._keras_functional_config import onnxtrain_functional_config
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import Add, Dense, Dropout, Input

CONFIGS = json.loads((KERAS_FIXTURES / "model_configs.json").read_text())
with np.load(KERAS_FIXTURES / "model_configs.npz") as _data:
    ARRAYS = dict(_data)
FUNCTIONAL = sorted(name for name, entry in CONFIGS.items() if entry["class_name"] == "Functional")


def arrays(name: str, kind: str) -> dict[str, np.ndarray]:
    return {key.split(f"/{kind}/")[1]: value for key, value in ARRAYS.items() if key.startswith(f"{name}/{kind}/")}


def flat(outputs: Any) -> list[np.ndarray]:
    """A model's outputs as Keras flattens them: a dict by sorted key."""
    if isinstance(outputs, dict):
        return [outputs[key] for key in sorted(outputs)]
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def test_the_fixture_has_each_form_keras_writes():
    assert FUNCTIONAL == ["functional_dict", "functional_list_of_one", "functional_shared"]
    shared = CONFIGS["functional_shared"]["config"]
    assert CONFIGS["functional_dict"]["config"]["input_layers"] == ["x", 0, 0]  # one ref
    assert list(CONFIGS["functional_dict"]["config"]["output_layers"]) == ["out", "aux"]  # unsorted
    assert shared["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    drop = next(entry for entry in shared["layers"] if entry["name"] == "drop")
    assert drop["inbound_nodes"][0]["kwargs"] == {"training": False}


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_a_keras_functional_config_rebuilds_and_computes_as_keras(name):
    model = Model.from_config(onnxtrain_functional_config(CONFIGS[name]["config"]))
    weights = arrays(name, "w")
    assert set(weights) == set(model.get_weights())
    model.set_weights(weights)
    inputs = arrays(name, "x") or ARRAYS[f"{name}/x"]
    expected = [ARRAYS[f"{name}/y/{i}"] for i in range(len(arrays(name, "y")))]
    outputs = flat(model.predict(inputs))
    assert len(outputs) == len(expected)
    for ours, keras in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(ours, keras, rtol=1e-5, atol=1e-6)


def test_calls_and_refs_become_onnxtrain_refs():
    converted = onnxtrain_functional_config(CONFIGS["functional_shared"]["config"])
    calls = {entry["name"]: entry["inbound_nodes"] for entry in converted["layers"]}
    assert calls["shared"] == [[["a", 0, 0]], [["b", 0, 0]]]  # called twice
    assert calls["joined"] == [[["shared", 0, 0], ["shared", 1, 0]]]  # Concatenate()([...]): its list of tensors
    # Keras' fit runs the Dropout in training mode whatever its call recorded (its Functional passes the model's own
    # mode to each call), and so does onnxtrain's rebuilt call, which drops the argument
    assert calls["drop"] == [[["joined", 0, 0]]]
    one = onnxtrain_functional_config(CONFIGS["functional_dict"]["config"])
    assert one["input_layers"] == [["x", 0, 0]]
    assert one["output_order"] == "sorted"  # Keras counts a dict of outputs by sorted key


def test_an_onnxtrain_config_passes_through_unchanged():
    x = Input(4, name="x")
    h = Dense(3, name="h")(x)
    model = Model(x, {"b": Dense(2)(Add()([h, h])), "a": Dense(1)(Dropout(0.5)(h, training=False))})
    config = model.get_config()
    assert onnxtrain_functional_config(copy.deepcopy(config)) == config


def _keras_tensor(layer: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "keras_history": [layer, 0, 0]}}


def _with_call(call: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(CONFIGS["functional_list_of_one"]["config"])
    config["layers"][1]["inbound_nodes"] = [call]
    return config


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            {"args": [_keras_tensor("x")], "kwargs": {"value": _keras_tensor("x")}},
            UnsupportedError,
            r"^The Keras config's call of layer 'only' reads tensors as keyword arguments \(value\), .*positionally",
        ),
        (
            {"args": [_keras_tensor("x"), 0.5], "kwargs": {}},
            UnsupportedError,
            r"^The Keras config's call of layer 'only' has a positional argument that is not a tensor \(0\.5\)",
        ),
        (
            {"args": [{"class_name": "__keras_tensor__", "config": {"shape": [None, 4]}}], "kwargs": {}},
            InvalidArgumentError,
            r"^The Keras config's call of layer 'only' reads a tensor without its keras_history",
        ),
    ],
)
def test_a_keras_call_onnxtrain_cannot_rebuild_is_refused_naming_the_layer(call, error, message):
    with pytest.raises(error, match=message):
        onnxtrain_functional_config(_with_call(call))


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_model_from_config_takes_a_keras_functional_config_as_it_is(name):
    model = Model.from_config(copy.deepcopy(CONFIGS[name]["config"]))  # Functional.from_layer_config converts it
    model.set_weights(arrays(name, "w"))
    outputs = flat(model.predict(arrays(name, "x") or ARRAYS[f"{name}/x"]))
    expected = [ARRAYS[f"{name}/y/{i}"] for i in range(len(arrays(name, "y")))]
    assert len(outputs) == len(expected)
    for ours, keras in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(ours, keras, rtol=1e-5, atol=1e-6)
