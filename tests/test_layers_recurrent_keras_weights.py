"""Keras' recurrent weights in and out: `from_keras_weights` turns a Keras LSTM, GRU, SimpleRNN or Bidirectional's
`get_weights()` into the layer's (ONNX's layout and gate order), checked against Keras 3's forward on the fixtures
of tests/data/keras (tools/keras_fixtures.py); `to_keras_weights` undoes it; and set_weights of Keras' arrays as they
are says what the layout is and how to convert, where a transpose alone would mix up an LSTM's gates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES, forward

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import GRU, LSTM, Bidirectional, Input, Layer, SimpleRNN

# (fixture, the layer Keras ran, the input's (timesteps, features))
FIXTURES: list[tuple[str, Callable[[], Layer], tuple[int, int]]] = [
    ("lstm", lambda: LSTM(3), (5, 2)),
    ("lstm_sequences", lambda: LSTM(4, return_sequences=True), (4, 3)),
    ("lstm_backwards", lambda: LSTM(3, go_backwards=True), (5, 2)),
    ("lstm_no_bias", lambda: LSTM(3, use_bias=False), (4, 2)),
    ("gru", lambda: GRU(3), (5, 2)),
    ("gru_reset_before", lambda: GRU(3, reset_after=False), (5, 2)),
    ("gru_no_bias", lambda: GRU(3, use_bias=False), (4, 2)),
    ("simple_rnn", lambda: SimpleRNN(3), (5, 2)),
    ("simple_rnn_relu", lambda: SimpleRNN(3, activation="relu"), (5, 2)),
    ("bidirectional_lstm", lambda: Bidirectional(LSTM(3)), (5, 2)),
    (
        "bidirectional_lstm_gru_sequences",
        lambda: Bidirectional(
            LSTM(3, return_sequences=True), backward_layer=GRU(4, go_backwards=True, return_sequences=True)
        ),
        (5, 2),
    ),
]


def _fixture(name: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    with np.load(KERAS_FIXTURES / f"{name}.npz") as data:
        return data["x"], data["y"], [data[f"w{i}"] for i in range(int(data["weights"]))]


@pytest.mark.parametrize(("name", "make", "shape"), FIXTURES, ids=[row[0] for row in FIXTURES])
def test_from_keras_weights_gives_keras_forward_and_to_keras_weights_undoes_it(name, make, shape):
    x, expected, keras_weights = _fixture(name)
    model = Sequential.of(Input(*shape), make(), seed=0)
    layer = model.layers[1]
    layer.set_weights(layer.from_keras_weights(keras_weights))
    np.testing.assert_allclose(forward(model, x), expected, rtol=1e-5, atol=1e-5)
    back = layer.to_keras_weights()
    assert [w.shape for w in back] == [w.shape for w in keras_weights]
    for ours, theirs in zip(back, keras_weights, strict=True):
        np.testing.assert_array_equal(ours, theirs.astype(np.float32))


def test_a_transposed_keras_lstm_kernel_fits_the_shape_but_not_the_gates():
    """Why the conversion is needed: the shapes a transpose gives are accepted (only shapes can be checked), and the
    LSTM computes something else than Keras' since ONNX's gate blocks are i, o, f, c and Keras' i, f, c, o."""
    x, expected, (kernel, recurrent, bias) = _fixture("lstm")
    model = Sequential.of(Input(5, 2), LSTM(3), seed=0)
    model.layers[1].set_weights([kernel.T[None], recurrent.T[None], bias[None]])
    assert np.abs(forward(model, x) - expected).max() > 1e-2


@pytest.mark.parametrize(
    ("make", "shape", "keras_shapes", "weight"),
    [
        (lambda: LSTM(5), (6, 8), [(8, 20), (5, 20), (20,)], r"lstm_1\.kernel expects shape \(1, 20, 8\)\. "),
        (lambda: GRU(3), (4, 2), [(2, 9), (3, 9), (2, 9)], r"gru_1\.kernel expects shape \(1, 9, 2\)\. "),
        (lambda: SimpleRNN(3), (4, 2), [(2, 3), (3, 3), (3,)], r"simple_rnn_1\.kernel expects shape \(1, 3, 2\)\. "),
    ],
)
def test_set_weights_of_keras_arrays_says_the_layout_and_how_to_convert(make, shape, keras_shapes, weight):
    model = Sequential.of(Input(*shape), make(), seed=0)
    layer = model.layers[1]
    keras_weights = [np.zeros(s, np.float32) for s in keras_shapes]
    hint = (
        r"ONNX's layout .*LSTM i, o, f, c where Keras has i, f, c, o.*"
        rf"layer = model\.get_layer\('{layer.name}'\); layer\.set_weights\(layer\.from_keras_weights\(keras_weights\)\)"
    )
    with pytest.raises(InvalidArgumentError, match=rf"{layer.name!r}\.set_weights: {weight}.*{hint}"):
        layer.set_weights(keras_weights)
    with pytest.raises(InvalidArgumentError, match=rf"^set_weights: {weight}.*{hint}"):
        model.set_weights(keras_weights)
    with pytest.raises(InvalidArgumentError, match="Recurrent layers: weights and Keras'"):
        model.set_weights({f"{layer.name}.bias": keras_weights[2]})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda layer: layer.from_keras_weights([np.zeros((8, 20)), np.zeros((5, 20))]),
            r"LSTM layer 'lstm_1'\.from_keras_weights expects Keras' get_weights\(\) of LSTM\(5\) on 8 features: "
            r"kernel \(8, 20\), recurrent_kernel \(5, 20\), bias \(20,\)\. Received: shapes \[\(8, 20\), \(5, 20\)\]",
        ),
        (
            lambda layer: layer.from_keras_weights([np.zeros((1, 20, 8)), np.zeros((1, 20, 5)), np.zeros((1, 20))]),
            r"Received: shapes \[\(1, 20, 8\), \(1, 20, 5\), \(1, 20\)\]",
        ),
        (lambda layer: layer.from_keras_weights({"kernel": 0}), r"Received: dict$"),
        (lambda layer: LSTM(5).from_keras_weights([]), r"LSTM layer None.*has no weights yet"),
    ],
)
def test_from_keras_weights_refuses_other_arrays_naming_keras_shapes(call, message):
    layer = Sequential.of(Input(6, 8), LSTM(5), seed=0).layers[1]
    with pytest.raises(InvalidArgumentError, match=message):
        call(layer)
