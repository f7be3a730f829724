"""A model as a layer of a Sequential, as Keras' image-classification tutorial writes it
(`Sequential([data_augmentation, Rescaling(1 / 255), Conv2D(...), ...])`, `model.add(base_model)`): its graph shares
the nested model's layers and weights, and the stack computes, trains, saves and exports as the same layers written
flat in one Sequential do (the reference: the flat model given the nested one's weights, and numpy)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.errors import InvalidArgumentError, ShapeError
from onnxtrain.layers import Dense, Flatten, Input, RandomFlip

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 4)).astype(np.float32)
Y = RNG.standard_normal((16, 3)).astype(np.float32)


def block(with_input: bool = True) -> Sequential:
    layers = [Dense(5, activation="tanh")]
    return Sequential([Input(4), *layers] if with_input else layers, name="block", seed=1)


def flat_like(nested: Sequential) -> Sequential:
    """The same layers written flat, given `nested`'s weights."""
    flat = Sequential([Input(4), Dense(5, activation="tanh"), Dense(3, activation="linear", name="head")], seed=9)
    w = nested.get_weights()
    flat.set_weights([w["block.dense_1.kernel"], w["block.dense_1.bias"], w["head.kernel"], w["head.bias"]])
    return flat


def numpy_forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    hidden = np.tanh(x @ weights["block.dense_1.kernel"] + weights["block.dense_1.bias"])
    return hidden @ weights["head.kernel"] + weights["head.bias"]


def _head() -> Dense:
    return Dense(3, activation="linear", name="head")


def _listed_first() -> Sequential:
    return Sequential([block(), _head()], seed=2)  # the tutorial's form: the nested model's Input is the model's


def _after_input() -> Sequential:
    return Sequential([Input(4), block(), _head()], seed=2)


def _added() -> Sequential:
    model = Sequential(seed=2)
    model.add(block())
    model.add(_head())
    return model


def _not_built_inside() -> Sequential:
    model = Sequential([block(with_input=False), _head()], seed=2)  # built with the outer model
    model.build((None, 4))
    return model


def _not_built_after_input() -> Sequential:
    return Sequential([Input(4), block(with_input=False), _head()], seed=2)


def _not_built_added() -> Sequential:
    model = Sequential([Input(4)], seed=2)
    model.add(block(with_input=False))
    model.add(_head())
    return model


FORMS = [_listed_first, _after_input, _added, _not_built_inside, _not_built_after_input, _not_built_added]


@pytest.mark.parametrize("make", FORMS, ids=lambda f: f.__name__)
def test_a_nested_model_computes_what_its_layers_written_flat_compute(make):
    model = make()
    assert model.input_shape == (4,) and model.output_shape == (3,)
    assert isinstance(model.layers[1], Model) and model.layers[1].name == "block"
    assert list(model.get_weights()) == ["block.dense_1.kernel", "block.dense_1.bias", "head.kernel", "head.bias"]
    expected = numpy_forward(model.get_weights(), X)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat_like(model).predict(X), expected, rtol=1e-5, atol=1e-6)


def test_the_nested_model_is_the_one_given_and_shares_its_weights():
    inner = block()
    model = Sequential([inner, _head()], seed=2)
    assert model.layers[1] is inner
    np.testing.assert_array_equal(model.get_weights()["block.dense_1.kernel"], inner.get_weights()["dense_1.kernel"])
    np.testing.assert_allclose(model.predict(X), _head_of(model, inner.predict(X)), rtol=1e-5, atol=1e-6)


def _head_of(model: Sequential, hidden: np.ndarray) -> np.ndarray:
    w = model.get_weights()
    return hidden @ w["head.kernel"] + w["head.bias"]


def test_training_through_a_nested_model_matches_training_the_flat_model():
    inner = block()
    nested = Sequential([inner, _head()], seed=2)
    flat = flat_like(nested)
    for model in (nested, flat):
        model.compile(optimizer="sgd", loss="mse")
        model.fit(X, Y, epochs=3, batch_size=4, shuffle=False, verbose=0)
    trained, reference = nested.get_weights(), list(flat.get_weights().values())
    for got, want in zip(trained.values(), reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(
        trained["head.kernel"], flat_like(Sequential([block(), _head()], seed=2)).get_weights()["head.kernel"]
    )  # it did train
    np.testing.assert_array_equal(inner.get_weights()["dense_1.kernel"], trained["block.dense_1.kernel"])  # shared
    nested.close()
    flat.close()


def test_a_nested_model_saves_loads_and_exports_with_its_weights(tmp_path):
    model = _listed_first()
    expected = model.predict(X)
    model.save(tmp_path / "m")
    with load_model(tmp_path / "m", compile=False) as loaded:
        assert isinstance(loaded, Sequential) and loaded.layers[1].name == "block"
        np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6, atol=1e-6)
    rebuilt = Sequential.from_config(model.get_config())
    assert rebuilt.get_config()["layers"] == model.get_config()["layers"]
    model.export(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    (exported,) = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-6)


def test_summary_shows_the_nested_model_as_one_row_or_expanded():
    model = _listed_first()
    rows = model.summary(print_fn=None).splitlines()
    assert any(line.startswith("block(Functional)") and line.rstrip().endswith("25") for line in rows)
    assert not any("└" in line for line in rows)
    expanded = model.summary(print_fn=None, expand_nested=True)
    assert "   └ dense_1(Dense)" in expanded and model.count_params() == 25 + 18


def test_a_nested_augmentation_passes_images_through_at_inference():
    augmentation = Sequential([Input(6, 6, 1), RandomFlip("horizontal")], name="data_augmentation")
    model = Sequential([augmentation, Flatten(), Dense(2, activation="linear")], seed=4)
    images = RNG.random((3, 6, 6, 1)).astype(np.float32)
    w = model.get_weights()
    np.testing.assert_allclose(
        model.predict(images), images.reshape(3, -1) @ w["dense_1.kernel"] + w["dense_1.bias"], rtol=1e-5, atol=1e-6
    )


def two_outputs() -> Model:
    a = Input(4)
    return Model(a, [Dense(2)(a), Dense(3)(a)], name="pair")


def test_a_model_a_sequential_cannot_nest_is_refused_naming_the_functional_api():
    with pytest.raises(InvalidArgumentError, match=r"one input and one output\. Received: layers\[0\]=model 'pair' "):
        Sequential([two_outputs(), Dense(2)])
    model = Sequential([Input(4)])
    with pytest.raises(InvalidArgumentError, match=r"Call it in a functional model instead"):
        model.add(two_outputs())
    with pytest.raises(ShapeError, match=r"'block' was built for inputs of shape \[None, 4\].* of shape \[None, 6\]"):
        Sequential([Input(6), block(), _head()])
