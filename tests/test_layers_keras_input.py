"""Keras 3's InputLayer config, which every Keras model config starts with, loads as onnxtrain's Input
(`layers/_keras_input.py`): its batch_shape is the Input's shape after the batch axis, its sparse, ragged and
optional are taken at False and refused at True, naming each; the Keras Sequential configs of
tests/data/keras/model_configs.json (tools/keras_model_config_fixtures.py) load whole and compute Keras' outputs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.layers import Input, Layer

CONFIGS = json.loads((KERAS_FIXTURES / "model_configs.json").read_text())
with np.load(KERAS_FIXTURES / "model_configs.npz") as _data:
    ARRAYS = dict(_data)


def input_layer(**config: Any) -> dict[str, Any]:
    """An InputLayer entry as Keras 3.15 writes it, with `config`'s entries instead of its defaults."""
    written = {"batch_shape": [None, 6], "dtype": "float32", "sparse": False, "ragged": False, "name": "x"}
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {**written, "optional": False, **config},
        "registered_name": None,
    }


def test_the_fixture_models_start_with_keras_input_layer():
    sequential = CONFIGS["sequential"]["config"]["layers"][0]
    assert sequential == input_layer(name="input_layer")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (input_layer(), Input(6, name="x")),
        (input_layer(batch_shape=[None, 28, 28, 1], name="images"), Input(28, 28, 1, name="images")),
        (input_layer(dtype="int32", name="ids"), Input(shape=(6,), dtype="int32", name="ids")),
        (input_layer(sparse=None, ragged=None), Input(6, name="x")),  # Keras' defaults, as its __init__ takes them
        ({**input_layer(), "class_name": "Input"}, Input(6, name="x")),  # Keras' function's name
    ],
)
def test_an_input_layer_config_loads_as_the_input_it_describes(entry, expected):
    layer = Layer.from_config(entry)
    assert type(layer) is Input
    assert layer.get_config() == expected.get_config()


def test_input_takes_keras_keywords_at_their_dense_values():
    made = Input(batch_shape=(None, 4, 2), sparse=False, ragged=False, optional=False, batch_size=None, name="a")
    assert made.get_config() == {"shape": [4, 2], "name": "a", "dtype": "float32"}


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Layer.from_config(input_layer(sparse=True)),
            UnsupportedError,
            r"^Input\(sparse=True\) is not supported: .*dense arrays.*x\.toarray\(\).*Received: sparse=True$",
        ),
        (
            lambda: Layer.from_config(input_layer(ragged=True)),
            UnsupportedError,
            r"^Input\(ragged=True\) is not supported: .*pad_sequences.*Received: ragged=True$",
        ),
        (
            lambda: Layer.from_config(input_layer(optional=True)),
            UnsupportedError,
            r"^Input\(optional=True\) is not supported: .*always given.*Received: optional=True$",
        ),
        (
            lambda: Input(6, sparse="no"),
            InvalidTypeError,
            r"^Input\(sparse=\.\.\.\) expects False \(or None\)\. Received: sparse='no'$",
        ),
        (
            lambda: Layer.from_config(input_layer(batch_shape=[32, 6])),
            UnsupportedError,
            r"^Input\(batch_shape=\.\.\.\) takes the batch axis as None: .*Received: batch_shape=\[32, 6\]$",
        ),
        (
            lambda: Input(shape=(6,), batch_shape=(None, 6)),
            InvalidArgumentError,
            r"^Input takes dims, shape=\.\.\. or Keras' batch_shape=\.\.\., one of them .*Received: "
            r"batch_shape=\(None, 6\) and shape=\(6,\)$",
        ),
        (
            lambda: Input(batch_shape=(None,)),
            InvalidArgumentError,
            r"^Input\(batch_shape=\.\.\.\) expects the batch axis and at least one dimension.*Received: "
            r"batch_shape=\(None,\)$",
        ),
        (
            lambda: Layer.from_config(input_layer(batch_shape=[None, None, 3])),
            InvalidArgumentError,
            r"^Input\(shape=\(None, 3\)\) has no size at dims\[0\]",  # the Input's own rule, as for shape=
        ),
        (
            lambda: Layer.from_config(input_layer(input_tensor=None)),
            InvalidTypeError,
            r"unexpected keyword argument 'input_tensor'",
        ),
        (
            lambda: Layer.from_config({**input_layer(), "class_name": "InputLayr"}),
            UnknownIdentifierError,
            r"^Could not interpret layer class 'InputLayr'\. Did you mean 'Input'",
        ),
    ],
)
def test_keras_input_arguments_onnxtrain_cannot_take_are_refused_naming_them(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("name", ["sequential", "sequential_ids"])
def test_a_keras_sequential_config_loads_and_computes_as_keras(name):
    entry = CONFIGS[name]
    assert entry["class_name"] == "Sequential"
    model = Sequential.from_config(entry["config"])
    assert [layer.name for layer in model.layers] == [e["config"]["name"] for e in entry["config"]["layers"]]
    assert model.layers[0].dtype == entry["config"]["layers"][0]["config"]["dtype"]  # float32, or int32 ids
    weights = {key.split("/w/")[1]: value for key, value in ARRAYS.items() if key.startswith(f"{name}/w/")}
    assert set(weights) == set(model.get_weights())
    model.set_weights(weights)
    np.testing.assert_allclose(model.predict(ARRAYS[f"{name}/x"]), ARRAYS[f"{name}/y/0"], rtol=1e-5, atol=1e-6)
