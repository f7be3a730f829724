"""A layer or model called on numpy arrays computes at once (Keras' eager call, `layers/_eager.py`): the inference
graph by default, the training graph with `training=True` (random layers draw by a per-layer step counter), against
numpy; an unbuilt layer is built by the call only where that makes weights."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.errors import InvalidTypeError, ShapeError
from onnxtrain.layers import (
    Add,
    BatchNormalization,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    MaxPooling2D,
    RandomFlip,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(6, 4, 5, 2)).astype(np.float32)


def test_a_built_layer_computes_its_inference_graph_on_an_array():
    dense = Dense(3, activation="relu")
    Sequential.of(Input(4), dense, seed=0)
    x = RNG.normal(size=(5, 4)).astype(np.float32)
    kernel, bias = dense.get_weights()
    for training in (None, False, True):
        np.testing.assert_allclose(dense(x, training=training), np.maximum(x @ kernel + bias, 0), rtol=1e-5, atol=1e-6)


def test_a_weightless_layer_is_left_unbuilt_and_a_layer_with_weights_keeps_what_the_call_built():
    pool, flatten = MaxPooling2D(2), Flatten()
    pooled = pool(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 7], [13, 15]])
    assert flatten(IMAGES).shape == (6, 40)
    assert not pool.built and not flatten.built  # a model may still take them at any shape
    dense = Dense(2)
    first = dense(IMAGES[:, 0, 0])
    assert dense.built and dense.input_shape == (2,)
    np.testing.assert_array_equal(dense(IMAGES[:, 0, 0]), first)  # the weights it drew stay
    with pytest.raises(ShapeError, match=r"was built for inputs of shape \[None, 2\].*it has kernel of shape \[2, 2\]"):
        dense(np.ones((3, 5), np.float32))  # its kernel takes 2 features (tests/test_layers_eager_shapes.py)


def test_a_merge_takes_arrays_as_a_list_or_as_arguments():
    a, b = IMAGES[:, 0], IMAGES[:, 1]
    np.testing.assert_allclose(Add()([a, b]), a + b, rtol=1e-6)
    np.testing.assert_allclose(Add()(a, b), a + b, rtol=1e-6)
    np.testing.assert_array_equal(Concatenate(axis=1)([a, b]), np.concatenate([a, b], axis=1))


def test_integer_ids_reach_an_embedding_as_integers():
    embedding = Embedding(10, 3)
    ids = np.array([[1, 9, 0]])
    looked_up = embedding(ids)
    np.testing.assert_array_equal(looked_up, embedding.get_weights()[0][ids])


def test_a_random_layer_draws_in_training_only_and_anew_at_each_call():
    flip = RandomFlip("horizontal", seed=3)
    np.testing.assert_array_equal(flip(IMAGES), IMAGES)  # inference: the identity
    calls = [flip(IMAGES, training=True) for _ in range(4)]
    for drawn in calls:  # each image as it is or mirrored left to right
        assert all(np.array_equal(d, i) or np.array_equal(d, i[:, ::-1]) for d, i in zip(drawn, IMAGES, strict=True))
    assert any(not np.array_equal(calls[0], other) for other in calls[1:])  # step 0, 1, 2, 3
    again = RandomFlip("horizontal", seed=3)
    np.testing.assert_array_equal(again(IMAGES, training=True), calls[0])  # a new layer starts at step 0


def test_dropout_in_training_zeroes_and_scales_as_dropout_does():
    dropped = Dropout(0.5, seed=1)(np.ones((64, 32), np.float32), training=True)
    assert set(np.unique(dropped)) == {0.0, 2.0} and 0.4 < (dropped == 0).mean() < 0.6


def test_a_model_on_arrays_computes_its_graph_as_predict_does():
    model = Sequential.of(
        Input(4, 5, 2), BatchNormalization(), Dropout(0.3), Flatten(), Dense(3, activation="softmax"), seed=0
    )
    eager = model(IMAGES)
    with model:
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        np.testing.assert_allclose(eager, model.predict_softly(IMAGES), rtol=1e-5, atol=1e-6)
        model.fit(IMAGES, np.eye(3)[np.arange(6) % 3], epochs=2, verbose=0)
        np.testing.assert_allclose(model(IMAGES), model.predict_softly(IMAGES), rtol=1e-5, atol=1e-6)  # trained
    trained = model(IMAGES, training=True)  # batch statistics and dropout: not predict's
    assert trained.shape == (6, 3) and not np.allclose(trained, eager)


def test_a_model_of_several_outputs_returns_a_list():
    x = Input(3)
    model = Model(x, [Dense(2, name="a")(x), Dense(1, name="b")(x)], seed=0)
    first, second = model(np.ones((4, 3), np.float32))
    assert first.shape == (4, 2) and second.shape == (4, 1)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: Dense(2)(IMAGES, training="yes"), InvalidTypeError, r"training expects True, False or None"),
        (lambda: Add()(IMAGES), InvalidTypeError, r"^Add layer takes a list of arrays, one per input. Received: 1"),
        (lambda: Dense(2)([IMAGES, IMAGES]), InvalidTypeError, r"^Dense layer takes one array. Received: 2 arrays"),
        (lambda: Flatten()(np.ones(3)), Exception, r"numpy arrays of numbers with a batch axis first.*shape \(3,\)"),
        (lambda: Flatten()(np.array([["a"]])), Exception, r"Received: input 0 of dtype <U1"),
        (
            lambda: Sequential.of(Input(4, 5, 2), Flatten())(np.ones((2, 5, 4, 2), np.float32)),
            ShapeError,
            r"was built for inputs of shape \[None, 4, 5, 2\].*Received: \[None, 5, 4, 2\]",
        ),
    ],
)
def test_bad_calls_on_data_are_refused_saying_what_the_layer_takes(call, error, message):
    with pytest.raises(error, match=message):
        call()
