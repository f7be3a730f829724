"""Keras' predict before compile: the layers' current weights, run through the inference model in ONNX Runtime,
against a numpy forward of the same weights; its session kept until the weights change."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.errors import ModelStateError
from onnxtrain.layers import Add, Dense, Input

RNG = np.random.default_rng(0)
X = RNG.standard_normal((10, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 10)


def _numpy_forward(model: Model, x: np.ndarray) -> np.ndarray:
    w = model.get_weights()
    hidden = np.maximum(x @ w["dense_1.kernel"] + w["dense_1.bias"], 0.0)
    return hidden @ w["dense_2.kernel"] + w["dense_2.bias"]


def _model(seed: int = 0) -> Sequential:
    return Sequential([Input(4), Dense(8, activation="relu"), Dense(3, activation="linear")], seed=seed)


def _session(model: Model) -> object:
    return model.__dict__["_predictor"]._session


def test_predict_before_compile_gives_the_outputs_of_the_current_weights():
    model = _model()
    np.testing.assert_allclose(model.predict(X), _numpy_forward(model, X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(X[0]), _numpy_forward(model, X[:1])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(X, batch_size=3), model(X), rtol=1e-6, atol=1e-6)  # the eager call


def test_predict_of_several_outputs_before_compile_returns_a_list():
    x = Input(4)
    hidden = Dense(4, activation="linear")(x)
    model = Model(x, [Dense(2, activation="linear", name="a")(hidden), Add(name="b")([hidden, x])], seed=0)
    first, second = model.predict(X)
    w = model.get_weights()
    h = X @ w["dense_1.kernel"] + w["dense_1.bias"]
    np.testing.assert_allclose(first, h @ w["a.kernel"] + w["a.bias"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second, h + X, rtol=1e-5, atol=1e-6)


def test_the_session_is_kept_until_the_weights_change(tmp_path):
    model = _model()
    model.predict(X)
    session = _session(model)
    model.predict(X[:3])
    assert _session(model) is session  # nothing changed: the same session
    weights = {name: value + 1.0 for name, value in model.get_weights().items()}
    model.set_weights(weights)
    np.testing.assert_allclose(model.predict(X), _numpy_forward(model, X), rtol=1e-5, atol=1e-5)
    assert _session(model) is not session
    session = _session(model)
    layer = model.get_layer("dense_2")
    layer.set_weights([np.zeros((8, 3), np.float32), np.ones(3, np.float32)])
    np.testing.assert_array_equal(model.predict(X), np.ones((10, 3), np.float32))
    assert _session(model) is not session
    source = _model(seed=5)
    source.save_weights(tmp_path / "w.npz")
    model.load_weights(tmp_path / "w.npz")
    np.testing.assert_allclose(model.predict(X), _numpy_forward(source, X), rtol=1e-5, atol=1e-6)
    model.get_layer("dense_2").activation = "relu"  # a setting: the graph changes
    np.testing.assert_allclose(model.predict(X), np.maximum(_numpy_forward(source, X), 0), rtol=1e-5, atol=1e-6)


def test_compile_and_fit_after_an_uncompiled_predict_predict_the_trained_weights():
    model = _model()
    before = model.predict(X)
    with model:
        model.compile(loss="mse", optimizer="sgd")
        assert "_predictor" not in model.__dict__
        np.testing.assert_allclose(model.predict(X), before, rtol=1e-6)  # regression: raw outputs again
        model.fit(X, np.zeros((10, 3), np.float32), epochs=1, verbose=0)
        np.testing.assert_allclose(model.predict(X), _numpy_forward(model, X), rtol=1e-5, atol=1e-6)
        assert not np.allclose(model.predict(X), before)


def test_a_loaded_model_predicts_as_the_loss_it_was_trained_with_says(tmp_path):
    model = _model()
    with model:
        model.compile(loss="sparse_categorical_crossentropy")
        model.fit(X, Y, epochs=1, verbose=0)
        compiled = model.predict(X)
        model.save(tmp_path / "m")
    with load_model(tmp_path / "m", compile=False) as loaded:
        assert not loaded.is_compiled
        got = loaded.predict(X)  # class indices, as the compiled predict gives them
        np.testing.assert_array_equal(got, compiled)
        np.testing.assert_array_equal(got, np.argmax(_numpy_forward(loaded, X), axis=1))
        assert isinstance(loaded.predict(X[0]), int)


def test_evaluate_and_predict_softly_before_compile_still_refuse():
    model = _model()
    with pytest.raises(ModelStateError, match=r"evaluate\(\) needs a compiled model"):
        model.evaluate(X, Y)
    with pytest.raises(ModelStateError, match=r"predict_softly\(\) needs a compiled model"):
        model.predict_softly(X)


def test_predict_after_close_refuses():
    model = _model()
    model.predict(X)
    model.close()
    assert "_predictor" not in model.__dict__
    with pytest.raises(ModelStateError, match=r"predict\(\) was called on a closed model"):
        model.predict(X)
