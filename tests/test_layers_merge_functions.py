"""Keras' lowercase merge functions (`layers.add([a, b])`, `concatenate([...], axis=-1)`, `dot([...], axes=...)`, ...):
each makes its layer with the keyword arguments given and calls it, computing what numpy does."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, layers
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

RNG = np.random.default_rng(0)
A, B = RNG.normal(size=(4, 2, 3)).astype(np.float32), RNG.normal(size=(4, 2, 3)).astype(np.float32)

# function, keyword arguments, the layer class it makes, numpy's result on (A, B)
FUNCTIONS = [
    (layers.add, {}, layers.Add, A + B),
    (layers.subtract, {}, layers.Subtract, A - B),
    (layers.multiply, {}, layers.Multiply, A * B),
    (layers.average, {}, layers.Average, (A + B) / 2),
    (layers.maximum, {}, layers.Maximum, np.maximum(A, B)),
    (layers.minimum, {}, layers.Minimum, np.minimum(A, B)),
    (layers.concatenate, {}, layers.Concatenate, np.concatenate([A, B], axis=-1)),
    (layers.concatenate, {"axis": 1}, layers.Concatenate, np.concatenate([A, B], axis=1)),
    (layers.dot, {"axes": 2}, layers.Dot, np.einsum("nik,njk->nij", A, B)),
    (layers.dot, {}, layers.Dot, np.einsum("nik,njk->nij", A, B)),  # Keras' default axes=-1
    (layers.dot, {"axes": 1}, layers.Dot, np.einsum("nki,nkj->nij", A, B)),
]


@pytest.mark.parametrize(
    ("function", "kwargs", "layer_class", "expected"),
    FUNCTIONS,
    ids=[f"{f.__name__}{sorted(k.items())}" for f, k, _, _ in FUNCTIONS],
)
def test_a_merge_function_makes_its_layer_calls_it_and_computes_as_numpy(function, kwargs, layer_class, expected):
    a, b = layers.Input(2, 3, name="a"), layers.Input(2, 3, name="b")
    y = function([a, b], name="merged", **kwargs)
    assert type(y.layer) is layer_class and y.layer.name == "merged" and y.inputs == (a, b)
    for key, value in kwargs.items():
        assert getattr(y.layer, key) == value or getattr(y.layer, key) == (value, value)
    model = Model([a, b], y)
    with model:
        model.compile(optimizer="sgd", loss="mse")
        np.testing.assert_allclose(model.predict([A, B]), expected, rtol=1e-5, atol=1e-6)


def test_the_functions_are_exported_as_keras_names_them():
    names = ["add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]
    assert set(names) <= set(layers.__all__)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a: layers.add(a), InvalidTypeError, r"Add layer takes a list of tensors, e.g. Add\(\)\(\[a, b\]\)"),
        (lambda a: layers.subtract([a, a, a]), InvalidArgumentError, r"takes a list of exactly 2 tensors. Received: 3"),
        (lambda a: layers.concatenate([a, a], axis=4), InvalidArgumentError, r"got axis=4 for inputs of rank 3"),
        (lambda a: layers.add([a, a], units=3), InvalidTypeError, r"Add\(\) got an unexpected keyword argument"),
    ],
)
def test_a_merge_functions_mistakes_are_its_layers(call, error, message):
    with pytest.raises(error, match=message):
        call(layers.Input(2, 3))
