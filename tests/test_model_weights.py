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
from onnxtrain.errors import InvalidTypeError
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
