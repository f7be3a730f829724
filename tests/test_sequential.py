"""Sequential: a layer list checked, named and built when the model is made, and KotlinDL's summary table."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.model import Model
from onnxtrain.sequential import Sequential


def test_summary_is_kotlindls_table():
    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10))
    text = model.summary(print_fn=None)
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "dense_1(Dense)" in text and "[None, 300]" in text and "235500" in text
    assert "Total trainable params: 266610" in text
    assert "Total frozen params: 0" in text
    assert "Total params: 266610" in text
    assert model.print_summary(print_fn=None) == text


def test_a_layer_of_one_model_is_refused_by_another():
    dense = Dense(3)
    first = Sequential.of(Input(4), dense, seed=1)
    with pytest.raises(InvalidArgumentError, match=r"layers\[1\] \(dense_1, Dense\) already belongs to a model"):
        Sequential.of(Input(6), dense)
    assert first.layers[1].params["kernel"].shape == (4, 3)


def test_sequential_takes_numpy_seeds_and_refuses_a_name_that_is_not_text():
    assert Sequential.of(Input(2), Dense(2), seed=np.int64(5)).seed == 5
    with pytest.raises(InvalidArgumentError, match=r"name=\.\.\.\) expects a non-empty string. Received: name=123"):
        Sequential.of(Input(2), Dense(2), name=123)


def test_layers_passed_without_a_list_say_how_to_pass_them():
    with pytest.raises(InvalidTypeError, match=r"Sequential\(\[Input\(...\), Dense\(...\)\]\), or use Sequential\.of"):
        Sequential(Input(3), Dense(3))  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"Received: the layers as separate arguments: name=Dense\(...\), seed="):
        Sequential(Input(3), Dense(3), Dense(2))  # type: ignore[arg-type]


# --- Keras' Sequential() and add() ---------------------------------------------------------------------------
def test_add_builds_the_model_a_layer_list_builds_with_the_same_seed():
    added = Sequential(seed=3)
    for layer in (Input(4, 4), Flatten(), Dense(5), Dense(2, activation="linear")):
        added.add(layer)
    listed = Sequential([Input(4, 4), Flatten(), Dense(5), Dense(2, activation="linear")], seed=3)
    assert [layer.name for layer in added.layers] == [layer.name for layer in listed.layers]
    assert added.get_config() == listed.get_config()
    weights = listed.get_weights()
    assert all(np.array_equal(value, weights[name]) for name, value in added.get_weights().items())
    x = np.random.default_rng(0).standard_normal((3, 4, 4)).astype(np.float32)
    with added, listed:
        added.compile(loss="mse")
        listed.compile(loss="mse")
        np.testing.assert_array_equal(added.predict(x), listed.predict(x))


def test_add_refuses_what_a_layer_list_refuses_and_a_compiled_model():
    empty = Sequential()
    with pytest.raises(ModelStateError, match=r"no layers yet \(summary needs them\): add its Input first"):
        empty.summary()
    with pytest.raises(ModelStateError, match=r"no layers yet \(build needs them\)"):
        empty.build((None, 3))
    empty.close()  # an empty model closes like any other
    model = Sequential([Input(3)])
    with pytest.raises(InvalidArgumentError, match=r"exactly one Input, first\. Received: Input at layers\[1\]"):
        model.add(Input(3))
    with pytest.raises(InvalidTypeError, match=r"Layer instances\. Received: layers\[1\]='dense'"):
        model.add("dense")
    other = Sequential([Input(3), Dense(2)])
    with pytest.raises(InvalidArgumentError, match=r"layers\[1\] \(dense_1, Dense\) already belongs to a model"):
        model.add(other.layers[1])
    model.add(Dense(2))
    assert [layer.name for layer in model.layers] == ["input_1", "dense_1"]
    with model:
        model.compile(loss="mse")
        with pytest.raises(ModelStateError, match=r"add\(\) was called after compile\(\)"):
            model.add(Dense(2))


def test_from_config_rebuilds_the_model_get_config_describes():
    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(30), Dense(10, activation="linear"), seed=7)
    config = model.get_config()
    rebuilt = Sequential.from_config(config)
    assert type(rebuilt) is Sequential and rebuilt.get_config() == config
    for name, array in model.get_weights().items():
        np.testing.assert_array_equal(rebuilt.get_weights()[name], array, err_msg=name)  # drawn from the seed
    with pytest.raises(InvalidArgumentError, match=r"Received: a Sequential's config .* Sequential\.from_config"):
        Model.from_config(config)


def test_from_config_refuses_what_is_not_a_sequentials_config():
    x = Input(4)
    functional = Model(x, Dense(2)(x)).get_config()
    with pytest.raises(InvalidArgumentError, match=r"expects a Sequential's config: .*Model\.from_config"):
        Sequential.from_config(functional)
    with pytest.raises(InvalidArgumentError, match=r"Received: \['name', 'seed'\]$"):
        Sequential.from_config({"name": "x", "seed": 1})
