"""set_weights' argument checked against the parameters it replaces (`onnxtrain._weight_arrays`), through
`Model.set_weights`: a refused call changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.sequential import Sequential


def small_model() -> Sequential:
    return Sequential.of(Input(4, 3), Flatten(), Dense(16), Dense(3, activation="linear"), seed=4)


def test_set_weights_takes_a_keras_list_and_refuses_what_is_not_finite_float_data():
    model = small_model()
    weights = model.get_weights()
    assert list(weights) == ["dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias"]
    doubled = [2 * v for v in weights.values()]
    model.set_weights(doubled)
    np.testing.assert_array_equal(model.get_weights()["dense_2.bias"], doubled[3])
    kernel = np.array(doubled[0], np.float64)
    kernel[3, 1] = 1e300  # beyond float32: inf
    bad = [
        ({"dense_1.kernel": kernel}, InvalidArgumentError, r"dense_1.kernel\[3, 1\]=inf"),
        ({"dense_1.bias": np.full(16, np.nan)}, InvalidArgumentError, r"finite.*dense_1.bias\[0\]=nan \(16 non"),
        ({"dense_1.bias": np.array(["a"] * 16)}, InvalidTypeError, r"float or integer array. Received: dtype=<U1"),
        (doubled[:2], InvalidArgumentError, r"one array per parameter.*4 .*Received: 2 arrays"),
        (None, InvalidTypeError, r"mapping .* Received: NoneType"),
    ]
    for weights_arg, error, message in bad:
        with pytest.raises(error, match=message):
            model.set_weights(weights_arg)
    np.testing.assert_array_equal(model.get_weights()["dense_1.kernel"], doubled[0])  # nothing half-applied


def test_set_weights_with_the_names_of_get_weights_explains_the_dict():
    model = small_model()
    before = model.get_weights()
    for names in ([w * 0 for w in model.get_weights()], list(model.get_weights())):  # iterating the dict's keys
        with pytest.raises(InvalidTypeError, match=r"get_weights\(\) returns a dict \{name: array\}.*\.values\(\)"):
            model.set_weights(names)
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(value, before[name])
    model.set_weights(list(model.get_weights().values()))  # the fix the message names works
