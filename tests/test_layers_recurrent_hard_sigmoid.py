"""The recurrent layers with Keras 3's hard_sigmoid, clip(x / 6 + 0.5, 0, 1) (`LSTM(recurrent_activation=
"hard_sigmoid")`, Keras' configs of them): ONNX's recurrent op computes it as HardSigmoid with activation_alpha
1/6 and activation_beta 0.5, one of each per HardSigmoid (`_recurrent_arguments.activation_arguments`), and gives
Keras' outputs (tests/data/keras/keras_activations.npz, by tools/keras_activation_fixtures.py)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Sequential
from onnxtrain.errors import UnsupportedError
from onnxtrain.layers import GRU, LSTM, Bidirectional, Input, Layer, SimpleRNN
from onnxtrain.layers._recurrent_arguments import activation_arguments
from onnxtrain.optimizers import SGD

META = json.loads((KERAS_FIXTURES / "keras_activations.json").read_text())["recurrent"]
with np.load(KERAS_FIXTURES / "keras_activations.npz") as _data:
    ARRAYS = dict(_data)
CASES = sorted(META)


def keras_case(name: str) -> tuple[Sequential, Any, dict[str, np.ndarray]]:
    arrays = {key.split("/", 1)[1]: value for key, value in ARRAYS.items() if key.startswith(f"{name}/")}
    layer = Layer.from_config(META[name]["config"])
    model = Sequential.of(Input(5, 3), layer, seed=0)
    count = sum(key.startswith("weights/") for key in arrays)
    layer.set_weights(layer.from_keras_weights([arrays[f"weights/{i}"] for i in range(count)]))
    return model, layer, arrays


@pytest.mark.parametrize("name", CASES)
def test_forward_matches_keras(name):
    model, layer, arrays = keras_case(name)
    assert "hard_sigmoid" in (layer.activation.name, getattr(layer.recurrent_activation, "name", None))
    np.testing.assert_allclose(model.predict(arrays["x"]), arrays["y"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_one_sgd_step_subtracts_keras_gradient(name):
    # Keras' gradient is of mean(y * cotangent); mse against y - cotangent / 2 has that gradient at y
    model, layer, arrays = keras_case(name)
    before = {key: value.copy() for key, value in layer.params.items()}
    model.compile(optimizer=SGD(learning_rate=1.0), loss="mse", engine="portable")
    model.train_on_batch(arrays["x"], arrays["y"] - arrays["cotangent"] / 2)
    after = {key.split(".", 1)[1]: value for key, value in model.get_weights().items()}
    steps = layer.onnx_to_keras({key: before[key] - after[key] for key in before})
    for index, step in enumerate(steps):
        np.testing.assert_allclose(step, arrays[f"grads/{index}"], rtol=1e-4, atol=1e-6, err_msg=str(index))


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Sigmoid", "Tanh", "Tanh"], {}),
        (["HardSigmoid", "Tanh", "Tanh"], {"activation_alpha": [1 / 6], "activation_beta": [0.5]}),
        (
            ["HardSigmoid", "Tanh", "HardSigmoid", "Tanh"],
            {"activation_alpha": [1 / 6] * 2, "activation_beta": [0.5] * 2},
        ),
    ],
)
def test_each_hard_sigmoid_takes_one_alpha_and_beta(names, expected):
    assert activation_arguments(names) == expected


def test_a_bidirectional_node_gives_both_directions_theirs(tmp_path):
    model = Sequential.of(Input(5, 3), Bidirectional(LSTM(2, recurrent_activation="hard_sigmoid")), seed=0)
    model.export(tmp_path / "model.onnx")
    (node,) = [n for n in onnx.load(tmp_path / "model.onnx").graph.node if n.op_type == "LSTM"]
    attributes = {a.name: a for a in node.attribute}
    assert [s.decode() for s in attributes["activations"].strings] == ["HardSigmoid", "Tanh", "Tanh"] * 2
    np.testing.assert_allclose(list(attributes["activation_alpha"].floats), [1 / 6] * 2)
    np.testing.assert_allclose(list(attributes["activation_beta"].floats), [0.5] * 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LSTM(2, recurrent_activation="hard_sigmoid"),
        lambda: SimpleRNN(2, activation="hard_sigmoid"),
        lambda: GRU(2, recurrent_activation="hard_sigmoid"),
    ],
)
def test_the_config_keeps_hard_sigmoid(make):
    layer = make()
    assert Layer.from_config(layer.serialize()).get_config() == layer.get_config()
    config = layer.get_config()
    assert "hard_sigmoid" in (config.get("recurrent_activation", {}).get("name"), config["activation"]["name"])


def test_other_recurrent_activations_are_still_refused_naming_the_choices():
    with pytest.raises(UnsupportedError, match=r"expects one of \['hard_sigmoid', 'relu', 'sigmoid', 'tanh'\]"):
        LSTM(2, recurrent_activation="hard_silu")
