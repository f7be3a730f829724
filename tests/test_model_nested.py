"""A model nested in another, as Keras 3.15 shows it (/work/venv-jax, keras 3.15.1, KERAS_BACKEND=jax): listed in
`model.layers` as that Model itself (Keras: `outer.layers[1] is sub`), for a loaded model too, and its weights under
its name in the outer model's."""

from __future__ import annotations

import numpy as np

from onnxtrain import Model, load_model
from onnxtrain.functional import Functional
from onnxtrain.layers import Dense, Input

# Keras: [type(layer).__name__ for layer in outer.layers], outer.layers[1] is sub
KERAS_LAYER_TYPES = ["InputLayer", "Functional", "Dense"]


def nested() -> tuple[Model, Model]:
    a = Input(4, name="a")
    sub = Model(a, Dense(3, name="inner")(a), name="sub", seed=0)
    b = Input(4, name="b")
    return sub, Model(b, Dense(1, name="head")(sub(b)), name="outer", seed=0)


def test_model_layers_list_a_nested_model_as_that_model():
    sub, outer = nested()
    assert [type(layer).__name__ for layer in outer.layers] == ["Input", "Model", "Dense"]  # KERAS_LAYER_TYPES
    assert outer.layers[1] is sub and outer.get_layer("sub") is sub and outer.get_layer(index=1) is sub
    outer.layers[1].trainable = False  # Keras' transfer learning through model.layers
    assert outer.param_counts() == (4, 15)
    assert [w.path for w in outer.weights] == list(outer.get_weights())  # under the outer model's names
    assert [w.path for w in outer.weights][:2] == ["sub.inner.kernel", "sub.inner.bias"]


def test_a_loaded_model_lists_a_model_made_around_the_nested_graph_once(tmp_path):
    _, outer = nested()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    outer.save(tmp_path / "m")
    with load_model(tmp_path / "m", compile=False) as loaded:
        inner = loaded.layers[1]
        assert isinstance(inner, Model) and not isinstance(inner, Functional)
        assert loaded.layers[1] is inner and loaded.get_layer("sub") is inner
        assert inner.name == "sub" and isinstance(inner.graph, Functional)
        np.testing.assert_allclose(inner.predict(x), outer.get_layer("sub").predict(x), rtol=1e-6)
        np.testing.assert_allclose(loaded.predict(x), outer.predict(x), rtol=1e-6)


def test_keras_lists_the_same_kinds_of_layers():
    _, outer = nested()
    kinds = {"Input": "InputLayer", "Model": "Functional"}
    assert [kinds.get(type(layer).__name__, type(layer).__name__) for layer in outer.layers] == KERAS_LAYER_TYPES
