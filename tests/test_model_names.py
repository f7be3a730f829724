"""Default model names (`onnxtrain._model_names`) against Keras 3.15's, and layer names, which a model gives here
(Keras names a layer when it is made): each checked against what Keras showed in /work/venv-jax (keras 3.15.1,
KERAS_BACKEND=jax, a fresh session)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain._model_names import auto_model_name, reset_model_names
from onnxtrain.layers import Dense, Input, TimeDistributed

# Keras, fresh session: keras.Model(x, y).name twice, then keras.Sequential([...]).name twice
KERAS_MODEL_NAMES = ["functional", "functional_1"]
KERAS_SEQUENTIAL_NAMES = ["sequential", "sequential_1"]
# Keras: the same two-Dense model made twice in a session: its layers' names (made at construction, numbered per
# session: the outer Dense(2) of Dense(2)(Dense(3)(x)) is made first)
KERAS_LAYER_NAMES_TWICE = [["input_layer", "dense_1", "dense"], ["input_layer_1", "dense_3", "dense_2"]]


@pytest.fixture
def fresh_names():
    """Default names numbered from the start, as in Keras after `keras.backend.clear_session()`."""
    reset_model_names()
    yield
    reset_model_names()


def one_model(name: str | None = None) -> Model:
    x = Input(4)
    return Model(x, Dense(2)(Dense(3)(x)), name=name, seed=0)


def test_unnamed_models_are_named_as_keras_names_them(fresh_names):
    assert [one_model().name, one_model().name] == KERAS_MODEL_NAMES
    sequentials = [Sequential([Input(4), Dense(2)], seed=0), Sequential.of(Input(4), Dense(2), seed=0)]
    assert [model.name for model in sequentials] == KERAS_SEQUENTIAL_NAMES
    assert one_model(name="mine").name == "mine" and one_model().name == "functional_2"  # a given name counts not
    assert Sequential(seed=0).name == "sequential_2"  # named when made, as Keras, before it is built


def test_default_names_are_numbered_per_kind_and_safely_across_threads(fresh_names):
    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda _: auto_model_name("functional"), range(40)))
    assert sorted(names) == sorted(["functional", *(f"functional_{i}" for i in range(1, 40))])
    assert auto_model_name("sequential") == "sequential"


def test_a_nested_model_under_a_default_name_takes_one_of_the_model_it_is_nested_in(fresh_names):
    def autoencoder() -> tuple[Model, Model, Model]:
        encoder, decoder = one_model(), one_model()
        x = Input(4, name="x")
        return encoder, decoder, Model(x, decoder(Dense(4)(encoder(x))), seed=0)

    first = autoencoder()
    assert [model.name for model in first] == ["functional", "functional_1", "functional_2"]  # as Keras'
    second = autoencoder()  # Keras: functional_3, functional_4, functional_5, and so their weights' names
    assert [model.name for model in second[:2]] == ["functional", "functional_1"]
    assert second[2].name == "functional_5"
    assert list(second[2].get_weights()) == list(first[2].get_weights())  # load_weights matches them by name
    assert next(iter(first[2].get_weights())) == "functional.dense_1.kernel"
    encoder = second[0]
    assert {layer.model_name for layer in encoder.layers[1:]} == {"functional"}
    assert second[2].layers[1] is encoder and second[2].get_layer("functional") is encoder


def test_a_named_nested_model_keeps_its_name(fresh_names):
    encoder = one_model(name="encoder")
    x = Input(4)
    outer = Model(x, encoder(x), seed=0)
    assert encoder.name == "encoder" and next(iter(outer.get_weights())) == "encoder.dense_1.kernel"


def test_weights_saved_from_one_build_load_into_the_next_by_name(tmp_path):
    # Keras names the second build's layers anew (KERAS_LAYER_NAMES_TWICE) and matches weights by position; here a
    # model names its layers, the same each time, and load_weights matches them by name.
    first, second = one_model(), one_model()
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    assert KERAS_LAYER_NAMES_TWICE[0] != KERAS_LAYER_NAMES_TWICE[1]
    first.save_weights(tmp_path / "w.npz")
    second.load_weights(tmp_path / "w.npz")
    for name, value in first.get_weights().items():
        np.testing.assert_array_equal(second.get_weights()[name], value)


def test_a_layer_is_named_by_the_model_it_is_first_in():
    # Keras: Dense(3).name is "dense" when made; here None until a model names it (see `Layer`'s name).
    layer = Dense(3)
    assert layer.name is None
    x = Input(4)
    Model(x, layer(x), seed=0)
    assert layer.name == "dense_1"


def test_a_model_a_wrapper_holds_under_a_default_name_takes_its_kinds_name(fresh_names):
    def wrapped() -> Model:
        x = Input(5, 4)
        return Model(x, TimeDistributed(Sequential([Input(4), Dense(2)], seed=0))(x), seed=0)

    first, second = wrapped(), wrapped()  # their Sequentials: "sequential", "sequential_1" when made
    assert (
        list(first.get_weights())
        == list(second.get_weights())
        == [
            "time_distributed_1.sequential.dense_1.kernel",
            "time_distributed_1.sequential.dense_1.bias",
        ]
    )
