"""Keras 3's Functional configs with what onnxtrain's layers do themselves recorded in them (tests/data/keras/
functional_configs.{json,npz}, by tools/keras_functional_config_fixtures.py): nested Sequentials, the masks of an
Embedding(mask_zero=True) or a Masking layer as Keras operations passed as `mask=`, `training: false` and
`mask: null` call arguments, an attention call's `use_causal_mask=True`. `Model.from_config` rebuilds each
(`_keras_functional_config`), and with Keras' weights it computes Keras' outputs, padding masked as Keras masks it;
Keras operations computing data, and masks onnxtrain does not derive, are refused naming them."""

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
from onnxtrain.functional import Functional
from onnxtrain.layers import Concatenate, Dense, Input

CONFIGS = json.loads((KERAS_FIXTURES / "functional_configs.json").read_text())
with np.load(KERAS_FIXTURES / "functional_configs.npz") as _data:
    ARRAYS = dict(_data)
COMPUTED = sorted({key.split("/")[0] for key in ARRAYS})


def listed(name: str, kind: str) -> list[np.ndarray]:
    return [ARRAYS[f"{name}/{kind}/{i}"] for i in range(sum(key.startswith(f"{name}/{kind}/") for key in ARRAYS))]


def with_keras_weights(model: Model, name: str) -> Model:
    """`model` with each layer's Keras weights, in onnxtrain's layout (a recurrent layer's gate order)."""
    layers = sorted({key.split("/")[2] for key in ARRAYS if key.startswith(f"{name}/layer/")})
    for layer_name in layers:
        weights = [ARRAYS[f"{name}/layer/{layer_name}/{i}"] for i in range(len(model.get_layer(layer_name).weights))]
        layer = model.get_layer(layer_name)
        if hasattr(layer, "from_keras_weights"):
            weights = layer.from_keras_weights(weights)
        layer.set_weights(weights)
    return model


def flat(outputs: Any) -> list[np.ndarray]:
    """Outputs as Keras flattens them: a dict by sorted key."""
    if isinstance(outputs, dict):
        return [outputs[key] for key in sorted(outputs)]
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def test_the_fixture_records_what_onnxtrain_s_layers_do_themselves():
    assert COMPUTED == [
        "causal_attention",
        "masked_bidirectional",
        "masked_concat",
        "masked_pooling",
        "masking_layer",
        "nested_sequential",
        "nested_unbuilt_sequential",
    ]
    kinds = {entry["class_name"]: entry.get("module") for entry in CONFIGS["masked_concat"]["layers"]}
    assert {k for k, module in kinds.items() if module == "keras.src.ops.numpy"} >= {"NotEqual", "LogicalOr", "Any"}
    pooling = {entry["name"]: entry["inbound_nodes"][0] for entry in CONFIGS["masked_pooling"]["layers"][1:]}
    assert pooling["drop"]["kwargs"] == {"training": False}  # the signature's default, not the user's
    assert pooling["pool"]["kwargs"]["mask"]["config"]["keras_history"][0] == "not_equal"
    assert CONFIGS["nested_sequential"]["layers"][1]["class_name"] == "Sequential"
    assert ARRAYS["masked_pooling/x/0"][2, 2:].tolist() == [0, 0, 0, 0]  # padding, which the masks leave out


@pytest.mark.parametrize("name", COMPUTED)
def test_a_keras_config_rebuilds_and_computes_keras_outputs(name: str) -> None:
    model = with_keras_weights(Model.from_config(copy.deepcopy(CONFIGS[name])), name)
    x = listed(name, "x")
    outputs = flat(model(x if len(x) > 1 else x[0]))
    expected = listed(name, "y")
    assert len(outputs) == len(expected)
    for ours, keras in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(ours, keras, rtol=1e-5, atol=1e-5)


def test_keras_call_arguments_become_onnxtrain_s_calls_and_settings():
    pooling = onnxtrain_functional_config(CONFIGS["masked_pooling"])
    calls = {entry["config"]["name"]: entry["inbound_nodes"] for entry in pooling["layers"]}
    assert "not_equal" not in calls  # Keras' mask operation: onnxtrain's Embedding derives the mask
    assert calls["drop"] == [[["embed", 0, 0]]]  # no training=False: fit trains it, as Keras' fit does
    assert calls["pool"] == [[["lstm", 0, 0]]]
    attention = onnxtrain_functional_config(CONFIGS["causal_attention"])
    mha = next(entry for entry in attention["layers"] if entry["config"]["name"] == "mha")
    assert mha["config"]["use_causal_mask"] is True and mha["inbound_nodes"] == [[["norm", 0, 0], ["norm", 0, 0]]]


def test_a_rebuilt_dropout_drops_in_training_calls_as_keras_fit_does():
    model = with_keras_weights(Model.from_config(copy.deepcopy(CONFIGS["masked_pooling"])), "masked_pooling")
    x = listed("masked_pooling", "x")[0]
    inference = model(x)
    trained = [model(x, training=True) for _ in range(3)]
    assert any(not np.allclose(y, inference, atol=1e-6) for y in trained)


def test_a_nested_sequential_is_a_nested_model_of_its_layers():
    model = Model.from_config(copy.deepcopy(CONFIGS["nested_sequential"]))
    inner = model.get_layer("inner")
    assert [layer.name for layer in inner.layers] == ["input_layer", "hidden"]
    assert list(model.get_weights()) == ["inner.hidden.kernel", "inner.hidden.bias", "out.kernel", "out.bias"]


def test_a_sequential_without_an_input_layer_takes_its_build_input_shape():
    config = copy.deepcopy(CONFIGS["nested_unbuilt_sequential"])
    inner = config["layers"][1]["config"]
    del inner["layers"][0]  # the InputLayer Keras adds when it builds the Sequential
    assert inner["build_input_shape"] == [None, 4]
    model = with_keras_weights(Model.from_config(config), "nested_unbuilt_sequential")
    x = listed("nested_unbuilt_sequential", "x")[0]
    np.testing.assert_allclose(model(x), listed("nested_unbuilt_sequential", "y")[0], rtol=1e-5, atol=1e-6)
    graph = Functional.from_layer_config(inner)  # a Sequential's config read as a Functional's
    assert graph.inputs[0].shape == (4,) and [layer.name for layer in graph.layers] == ["inner_input", "hidden"]


def _without_input_shape() -> dict[str, Any]:
    config = copy.deepcopy(CONFIGS["nested_sequential"])
    inner = config["layers"][1]["config"]
    del inner["layers"][0], inner["build_input_shape"]
    return config


def _masks_from(ops_source: str) -> dict[str, Any]:
    """masked_pooling's config with the NotEqual's ids read from another tensor than the Embedding's."""
    config = copy.deepcopy(CONFIGS["masked_pooling"])
    not_equal = next(entry for entry in config["layers"] if entry["name"] == "not_equal")
    not_equal["inbound_nodes"][0]["args"][1] = ops_source
    return config


REFUSED = [
    (
        lambda: CONFIGS["keras_operations"],
        InvalidArgumentError,
        r"^Could not interpret layer class 'Add' \('add', read by 'concatenate'\): it is a Keras operation \(module "
        r"'keras.src.ops.numpy': a keras.ops function called on tensors\), not a layer.*Write the computation as "
        r"layers",
    ),
    (
        lambda: CONFIGS["explicit_mask"],
        UnsupportedError,
        r"^The Keras config's call of layer 'lstm' passes a mask \(of m\) that onnxtrain's layers do not derive: .*"
        r"Embedding\(mask_zero=True\).*Masking",
    ),
    (
        lambda: _masks_from(5),  # ids != 5: a mask of the user's, not the Embedding's
        UnsupportedError,
        r"^The Keras config computes a mask with operations \(not_equal\) that onnxtrain's layers do not derive",
    ),
    (
        _without_input_shape,
        InvalidArgumentError,
        r"^The Sequential config 'inner' has no input shape \(no InputLayer first, no build_input_shape\).*start it "
        r"with keras.Input\(shape\).*Received: its layers \['Dense'\]",
    ),
]


@pytest.mark.parametrize(("config", "error", "message"), REFUSED)
def test_what_onnxtrain_cannot_rebuild_is_refused_naming_it(config, error, message):
    with pytest.raises(error, match=message):
        Model.from_config(copy.deepcopy(config()))


def test_a_rebuilt_model_lists_its_layers_and_weights_in_the_keras_config_s_order():
    config = CONFIGS["masked_bidirectional"]  # the Embedding (on 'tok') listed before the Dense (on 'feat')
    model = Model.from_config(copy.deepcopy(config))
    listed_names = [entry["name"] for entry in config["layers"] if entry.get("module") != "keras.src.ops.numpy"]
    assert [layer.name for layer in model.layers] == listed_names
    keras_order = []  # Keras' get_weights() list: layer by layer, as its config lists them
    for name in listed_names:
        layer = model.get_layer(name)
        weights = [ARRAYS[f"masked_bidirectional/layer/{name}/{i}"] for i in range(len(layer.weights))]
        keras_order += layer.from_keras_weights(weights) if hasattr(layer, "from_keras_weights") else weights
    model.set_weights(keras_order)
    x = listed("masked_bidirectional", "x")
    for ours, keras in zip(flat(model(x)), listed("masked_bidirectional", "y"), strict=True):
        np.testing.assert_allclose(ours, keras, rtol=1e-5, atol=1e-5)


def test_onnxtrain_s_config_of_a_rebuilt_or_python_model_keeps_its_layer_order():
    rebuilt = Model.from_config(copy.deepcopy(CONFIGS["masked_bidirectional"]))
    a, b = Input(3, name="a"), Input(2, name="b")
    python = Model([a, b], Concatenate(name="joined")([Dense(2, name="late")(b), Dense(2, name="early")(a)]))
    assert [layer.name for layer in python.layers] == ["a", "b", "late", "early", "joined"]
    for model in (rebuilt, python):
        again = Model.from_config(model.get_config())
        assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
        again.set_weights(list(model.get_weights().values()))  # a plain list, in the model's order
        for (name, ours), (expected_name, expected) in zip(
            again.get_weights().items(), model.get_weights().items(), strict=True
        ):
            assert name == expected_name
            np.testing.assert_array_equal(ours, expected)
