"""Keras' `layer.output` and `layer.input` (`Layer.output`, `Layer.input`): the tensors of a layer's one call, in a
Sequential's graph and in a functional one, refused for a shared or never-called layer, and the feature extractor
made of them (`Model(inputs=m.inputs, outputs=[l.output for l in m.layers[1:]])`) checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Add, Concatenate, Dense, Input

X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def _relu(v: np.ndarray) -> np.ndarray:
    return np.maximum(v, 0)


def _dense(w: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ w[f"{name}.kernel"] + w[f"{name}.bias"]


def test_a_sequential_layers_output_and_input_are_its_call_in_the_models_graph():
    model = Sequential([Input(4), Dense(8, activation="relu"), Dense(3, activation="linear")], seed=1)
    source, hidden, last = model.layers
    assert source.output is source and source.input is source  # an Input is its own tensor
    assert hidden.input is source and hidden.output.layer is hidden and hidden.output.shape == (8,)
    assert last.input is hidden.output and last.output is model.outputs[0]
    model.close()


def test_a_functional_layers_output_and_input_are_the_tensors_of_its_call():
    a, b = Input(4, name="a"), Input(2, name="b")
    hidden = Dense(8)
    h = hidden(a)
    joined = Concatenate()([h, b])
    model = Model([a, b], Dense(3)(joined), seed=1)
    assert hidden.output is h and hidden.input is a
    merge = model.get_layer("concatenate_1")
    assert merge.output is joined and merge.input == [h, b]  # a multi-input layer's input: a list
    model.close()


def test_a_nested_models_output_is_the_tensor_of_its_call_in_the_outer_graph():
    x = Input(4)
    encoder = Model(x, Dense(3)(x), name="encoder")
    y = Input(4)
    code = encoder(y)
    assert encoder.graph.output is code and encoder.graph.input is y


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Dense(3), "called in no model yet"),
        (lambda: _shared(), r"called at 2 places \(shared\)"),
    ],
    ids=["never_called", "shared"],
)
@pytest.mark.parametrize("attribute", ["output", "input"])
def test_output_and_input_are_refused_without_one_call(make, match, attribute):
    layer = make()
    with pytest.raises(InvalidArgumentError, match=match) as refused:
        getattr(layer, attribute)
    other = {"output": "input", "input": "output"}[attribute]
    assert f"has no {attribute}" in str(refused.value) or f"no one {attribute};" in str(refused.value)
    assert f"layer.{other} is" not in str(refused.value) and f"no one {other}" not in str(refused.value)


def _shared() -> Dense:
    shared = Dense(3)
    a, b = Input(4), Input(4)
    Add()([shared(a), shared(b)])
    return shared


def test_a_feature_extractor_of_a_closed_functional_model_predicts_its_layers_outputs():
    x = Input(4)
    h = Dense(8, activation="relu")(x)
    model = Model(x, Dense(3, activation="linear")(Add()([Dense(8, activation="tanh")(h), h])), seed=2)
    model.close()  # its layers keep their weights; a new model may use them
    features = Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers[1:]])
    w = features.get_weights()
    d1 = _relu(_dense(w, "dense_1", X))
    d2 = np.tanh(_dense(w, "dense_2", d1))
    expected = [d1, d2, d1 + d2, _dense(w, "dense_3", d1 + d2)]
    for got, want in zip(features(X), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    features.close()


def test_a_feature_extractor_of_a_closed_sequential_predicts_its_layers_outputs():
    model = Sequential([Input(4), Dense(8, activation="relu"), Dense(3, activation="linear")], seed=1)
    outputs = [layer.output for layer in model.layers[1:]]  # while open: its graph's tensors
    model.close()
    features = Model(inputs=model.inputs, outputs=outputs)
    w = features.get_weights()
    hidden = _relu(_dense(w, "dense_1", X))
    got_hidden, got_last = features(X)
    np.testing.assert_allclose(got_hidden, hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_last, _dense(w, "dense_2", hidden), rtol=1e-5, atol=1e-6)
    features.close()
