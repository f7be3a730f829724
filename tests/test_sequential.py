"""Sequential: a layer list checked, named and built when the model is made, and KotlinDL's summary table."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import load_model
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, ShapeError
from onnxtrain.layers import Conv2D, Dense, Flatten, Input
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


def test_a_layer_of_another_model_reading_another_shape_is_refused():
    dense = Dense(3)
    first = Sequential.of(Input(4), dense, seed=1, name="first")
    with pytest.raises(
        ShapeError,
        match=r"^Dense layer 'dense_1' was built for inputs of shape \[None, 4\] in model 'first', and a "
        r"layer keeps its weights in every model made of it; here it reads the output of the layer before it, of "
        r"shape \[None, 6\]\. "
        r"Received: layers\[1\]='dense_1'\.",
    ):
        Sequential.of(Input(6), dense)
    assert first.layers[1].params["kernel"].shape == (4, 3)


def test_kotlindl_s_transfer_learning_puts_a_loaded_model_s_frozen_layers_under_a_new_head(tmp_path):
    # KotlinDL: load the model, take its layers, isTrainable = false, Sequential.of(layers + new Dense layers).
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 6, 6, 1), np.float32), rng.integers(0, 3, 40)
    with Sequential.of(Input(6, 6, 1), Conv2D(2, kernel_size=3, name="c1"), Flatten(), Dense(3), seed=1) as base:
        base.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        base.fit(x, y, epochs=1, batch_size=8, verbose=0)
        base.save(tmp_path / "base")
    pretrained = load_model(tmp_path / "base")
    kept = [layer for layer in pretrained.layers if isinstance(layer, Input | Conv2D)]
    kept[1].trainable = False
    trained = pretrained.get_weights()
    pretrained.close()
    with Sequential.of(*kept, Flatten(name="new_flatten"), Dense(4, name="new_dense"), Dense(3), seed=2) as model:
        assert model.get_layer("c1") is kept[1] and model.param_counts() == (
            6 * 6 * 2 * 4 + 4 + 4 * 3 + 3,
            2 * 9 + 2,
        )  # KotlinDL's 'same'
        np.testing.assert_array_equal(model.get_weights()["c1.kernel"], trained["c1.kernel"])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        after = model.get_weights()
    np.testing.assert_array_equal(after["c1.kernel"], trained["c1.kernel"])  # frozen
    np.testing.assert_array_equal(after["c1.bias"], trained["c1.bias"])


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
    added = Sequential(seed=3, name="stack")
    for layer in (Input(4, 4), Flatten(), Dense(5), Dense(2, activation="linear")):
        added.add(layer)
    listed = Sequential([Input(4, 4), Flatten(), Dense(5), Dense(2, activation="linear")], seed=3, name="stack")
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
    model.add(other.layers[1])  # a layer of another model reading its shape: the two share it
    assert model.layers[1] is other.layers[1] and model.get_weights().keys() == other.get_weights().keys()
    model.add(Dense(2))
    assert [layer.name for layer in model.layers] == ["input_1", "dense_1", "dense_2"]
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
