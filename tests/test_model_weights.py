"""`Model.get_weights()` (`_model_weights.py`): a dict by graph name, where Keras' returns a list. An index or a
slice (Keras' `get_weights()[0]`) is refused naming the keys and Keras' list, `list(weights.values())`; it is a
dict to pickle, copy, compare and `np.savez`."""

from __future__ import annotations

import io
import pickle
import re

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.bundle import read_state
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Dense, Input

NAMES = ["dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias"]


@pytest.fixture
def weights():
    with Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0) as model:
        yield model.get_weights()


@pytest.mark.parametrize("index", [0, -1, np.int64(1), True, slice(0, 2), slice(None)])
def test_an_index_or_slice_is_refused_naming_the_keys_and_keras_list(weights, index):
    with pytest.raises(
        InvalidTypeError,
        match=rf"get_weights\(\) returns a dict keyed by each parameter's graph name \('dense_1\.kernel', "
        rf"'dense_1\.bias', 'dense_2\.kernel', \.\.\.\), not a list as Keras' does\. Received: the index "
        rf"{re.escape(repr(index))}\. Index it by name \(weights\['dense_1\.kernel'\]\), or take "
        r"Keras' list, in the same order: list\(model\.get_weights\(\)\.values\(\)\)\.",
    ):
        weights[index]


def test_a_name_it_lacks_is_a_key_error_naming_the_names(weights):
    with pytest.raises(KeyError, match=r"'dense_9\.kernel': no parameter of that name\. get_weights\(\) holds \["):
        weights["dense_9.kernel"]


def test_names_read_and_keras_list_is_its_values_in_layer_order(weights):
    assert list(weights) == NAMES
    assert [value.shape for value in weights.values()] == [(4, 8), (8,), (8, 3), (3,)]
    assert weights["dense_2.bias"].shape == (3,)
    assert weights.get(0) is None and 0 not in weights


def test_set_weights_takes_keras_list_of_its_values():
    with Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0) as model:
        arrays = [value + 1.0 for value in model.get_weights().values()]
        model.set_weights(arrays)
        got = list(model.get_weights().values())
    for ours, given in zip(got, arrays, strict=True):
        np.testing.assert_array_equal(ours, given)


def test_it_pickles_copies_compares_and_saves_as_a_plain_dict(weights):
    restored = pickle.loads(pickle.dumps(weights))
    assert type(restored) is dict and list(restored) == NAMES
    for name in NAMES:
        np.testing.assert_array_equal(restored[name], weights[name])
    assert isinstance(weights, dict) and weights == dict(weights)
    assert type(weights.copy()) is dict
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    buffer.seek(0)
    with np.load(buffer) as saved:
        assert sorted(saved.files) == sorted(NAMES)
        np.testing.assert_array_equal(saved["dense_1.kernel"], weights["dense_1.kernel"])


def _bundle_state(tmp_path):
    """A compiled model with trained weights, and its training bundle's state (weights, Adam's slots, step)."""
    model = Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine="portable")
    model.fit(np.ones((4, 4), np.float32), np.array([0, 1, 2, 0]), verbose=0)
    model.export_training_bundle(tmp_path / "b")
    return model, read_state(tmp_path / "b")


@pytest.mark.parametrize(
    "pick",
    [
        lambda state: state,  # all of unpack_state's / read_state's dict
        lambda state: {"step": state["step"]},
        lambda state: {k: v for k, v in state.items() if k.startswith("optimizer.")},
    ],
    ids=["everything", "step", "slots"],
)
def test_set_weights_refuses_a_bundles_optimizer_state_naming_load_state(tmp_path, pick):
    model, state = _bundle_state(tmp_path)
    with model, pytest.raises(InvalidArgumentError, match=r"onnxtrain\.bundle\.load_state\(model, bundle, state\)"):
        model.set_weights(pick(state))


def test_set_weights_takes_a_bundles_weights_filtered_as_its_message_says(tmp_path):
    model, state = _bundle_state(tmp_path)
    with model:
        with pytest.raises(InvalidArgumentError, match=r"Received: a training bundle's optimizer state and step \('"):
            model.set_weights(state)
        model.set_weights({name: value * 0 for name, value in model.get_weights().items()})
        model.set_weights({name: value for name, value in state.items() if name in model.get_weights()})
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, state[name], err_msg=name)
        with pytest.raises(InvalidArgumentError, match=r"unknown parameter names \['dense_9.kernel'\]"):
            model.set_weights({"dense_9.kernel": state["dense_1.kernel"]})  # other names: as before
