"""Keras' other ways to give a Sequential its input: `input_shape=` / `input_dim=` on its first layer, and a stack
with no input shape at all, built by `build(...)` or from its first data. The reference is always the model written
with its Input first (`Sequential([Input(...), ...], seed=...)`): same config, weights and training."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential, load_model
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelStateError,
    ShapeError,
    UnknownIdentifierError,
    UnsupportedError,
)
from onnxtrain.layers import Dense, Embedding, Flatten, Input

RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 24)
NOT_BUILT = r"This model has not yet been built .*Build the model first by calling `build\(\)`"


def _same_weights(a: Model, b: Model) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert list(wa) == list(wb)
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def _reference(seed: int = 3, dtype: str = "float32") -> Sequential:
    return Sequential([Input(4, dtype=dtype), Dense(8, activation="relu"), Dense(3)], seed=seed, name="stack")


# --- input_shape= / input_dim= on the first layer --------------------------------------------------------------
@pytest.mark.parametrize(
    "declared",
    [{"input_shape": (4,)}, {"input_shape": [4]}, {"input_dim": 4}, {"batch_input_shape": (None, 4)}],
)
def test_an_input_declared_on_the_first_layer_builds_the_model_its_input_first_builds(declared):
    model = Sequential([Dense(8, activation="relu", **declared), Dense(3)], seed=3, name="stack")
    reference = _reference()
    assert [type(layer).__name__ for layer in model.layers] == ["Input", "Dense", "Dense"]
    assert model.get_config() == reference.get_config()  # the Input, and no input_shape in the Dense's config
    _same_weights(model, reference)


def test_add_of_a_layer_declaring_its_input_starts_the_model_with_that_input():
    model = Sequential(seed=3, name="stack")
    model.add(Dense(8, activation="relu", input_shape=(4,)))
    model.add(Dense(3))
    assert model.get_config() == _reference().get_config()
    _same_weights(model, _reference())


def test_a_declared_dtype_is_the_inputs_and_token_ids_feed_an_embedding():
    model = Sequential([Embedding(10, 2, input_shape=(5,), dtype="int64"), Flatten(), Dense(2)], seed=1, name="e")
    reference = Sequential([Input(5, dtype="int64"), Embedding(10, 2), Flatten(), Dense(2)], seed=1, name="e")
    assert model.layers[0].dtype == np.int64 and model.get_config() == reference.get_config()
    ids = np.array([[1, 2, 3, 4, 9]])
    np.testing.assert_array_equal(model.predict(ids), reference.predict(ids))


def test_a_declared_input_survives_config_save_and_load(tmp_path):
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3)], seed=3)
    rebuilt = Sequential.from_config(model.get_config())
    _same_weights(rebuilt, model)
    with model:
        model.compile(loss="sparse_categorical_crossentropy")
        model.fit(X, Y, epochs=1, verbose=0)
        model.save(tmp_path / "m")
        with load_model(tmp_path / "m") as loaded:
            assert type(loaded.layers[0]).__name__ == "Input" and loaded.input_shape == (4,)
            np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_config_whose_first_layer_declares_its_input_loads():
    keras2 = {
        "name": "sequential",
        "seed": 3,
        "layers": [
            {"class_name": "Dense", "config": {"units": 8, "activation": "relu", "batch_input_shape": [None, 4]}},
            {"class_name": "Dense", "config": {"units": 3, "input_shape": [8]}},
        ],
    }
    model = Sequential.from_config(keras2)
    assert model.input_shape == (4,) and model.output_shape == (3,)
    _same_weights(model, _reference())


def test_a_later_layers_declared_input_is_checked_against_what_it_reads():
    consistent = Sequential([Input(4), Dense(8, input_shape=(4,)), Dense(3, input_dim=8)], seed=0)
    assert consistent.output_shape == (3,)
    with pytest.raises(ShapeError, match=r"Dense\(input_shape=\(5,\)\) declares inputs of shape \(5,\), but .*\(8,\)"):
        Sequential([Dense(8, input_shape=(4,)), Dense(3, input_shape=(5,))])
    x = Input(4)
    with pytest.raises(ShapeError, match=r"reads the output of Input layer, of shape \(4,\)"):
        Dense(3, input_shape=(6,))(x)
    assert Dense(3, input_shape=(4,))(x).shape == (3,)  # the Functional API: consistent, so accepted


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_shape": 4}, InvalidArgumentError, r"expects a tuple of dimensions, .*Received: input_shape=4$"),
        ({"input_shape": (None, 4)}, InvalidArgumentError, r"dimension of no size \(None\)"),
        ({"input_shape": (0,)}, InvalidArgumentError, r"input_shape\[0\]=\.\.\.\) expects a positive int"),
        ({"input_dim": 2.5}, InvalidArgumentError, r"input_dim=\.\.\.\) expects a positive int\. Received: input_dim"),
        ({"input_shape": (4,), "input_dim": 4}, InvalidArgumentError, r"takes one of input_shape, input_dim"),
        ({"batch_size": 32}, UnsupportedError, r"take any batch size.*Received: batch_size=32"),
        ({"batch_input_shape": (32, 4)}, UnsupportedError, r"batch axis as None.*Received: batch_input_shape"),
        (
            {"input_shape": (4,), "dtype": "float16"},
            InvalidArgumentError,
            r"Dense\(dtype=\.\.\.\) beside input_shape is the Input.s: one of",
        ),
        ({"dtype": "int64"}, UnsupportedError, r"without input_shape is Keras' compute dtype.*dtype='int64'"),
    ],
)
def test_bad_input_declarations_fail_with_clear_messages(kwargs, error, message):
    with pytest.raises(error, match=message):
        Dense(3, **kwargs)


def test_float32_dtype_alone_is_keras_compute_dtype_and_changes_nothing():
    assert Dense(3, dtype="float32").get_config() == Dense(3).get_config()
    with pytest.raises(InvalidTypeError, match=r"Input takes its shape as shape=\.\.\..*Received"):
        Input(input_shape=(4,))  # type: ignore[call-arg]


# --- no input shape: built later ---------------------------------------------------------------------------
def test_a_stack_without_input_is_unbuilt_and_refuses_what_needs_weights(tmp_path):
    model = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3)
    assert [layer.name for layer in model.layers] == ["dense_1", "dense_2"]
    for action in (
        model.summary,
        model.count_params,
        model.get_weights,
        lambda: model.save(tmp_path / "m"),
        lambda: model.input_shape,
        lambda: model.export(tmp_path / "m.onnx"),
    ):
        with pytest.raises(ModelStateError, match=NOT_BUILT):
            action()
    assert not (tmp_path / "m").exists()
    assert Sequential.from_config(model.get_config()).get_config() == model.get_config()  # unbuilt, as it was


@pytest.mark.parametrize(
    "build", [lambda m: m.build((None, 4)), lambda m: m.build(input_shape=[None, 4]), lambda m: m.build((32, 4))]
)
def test_build_gives_the_weights_of_the_model_with_its_input_first(build):
    model = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3, name="stack")
    build(model)
    assert model.get_config() == _reference().get_config()
    _same_weights(model, _reference())
    model.build((None, 4))  # built: the same shape again changes nothing
    with pytest.raises(InvalidArgumentError, match=r"built for examples of shape \(4,\)"):
        model.build((None, 5))


def test_add_without_input_then_build():
    model = Sequential(seed=3)
    model.add(Dense(8, activation="relu"))
    model.add(Dense(3))
    with pytest.raises(InvalidArgumentError, match=r"exactly one Input, first\. Received: Input at layers\[2\]"):
        model.add(Input(4))
    model.build((None, 4))
    _same_weights(model, _reference())


@pytest.mark.parametrize(
    ("first_data", "action"),
    [
        (lambda m: m.predict(X), "predict"),
        (lambda m: m(X), "call"),
        (lambda m: m.predict([X]), "predict a list"),
        (lambda m: m.predict({"input_1": X}), "predict a dict"),
    ],
)
def test_the_first_data_builds_the_model_as_its_input_would(first_data, action):
    model = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3)
    first_data(model)
    assert model.input_shape == (4,), action
    _same_weights(model, _reference())


def test_compile_before_the_build_is_applied_at_fit_with_the_same_losses():
    deferred = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3)
    deferred.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert deferred.is_compiled
    with pytest.raises(ModelStateError, match=NOT_BUILT):
        _ = deferred.learning_rate
    reference = _reference()
    reference.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with deferred, reference:
        got = deferred.fit(X, Y, epochs=3, batch_size=8, verbose=0).history
        expected = reference.fit(X, Y, epochs=3, batch_size=8, verbose=0).history
        assert got == expected
        np.testing.assert_array_equal(deferred.predict(X), reference.predict(X))
        assert deferred.evaluate(X, Y).loss == reference.evaluate(X, Y).loss


def test_evaluate_and_build_open_a_pending_compile():
    evaluated = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3)
    evaluated.compile(loss="sparse_categorical_crossentropy")
    built = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3)
    built.compile(loss="sparse_categorical_crossentropy")
    built.build((None, 4))
    assert built._trainer is not None
    with evaluated, built:
        assert evaluated.evaluate((X, Y)).loss == built.evaluate(X, Y).loss


def test_fit_before_compile_refuses_and_leaves_the_model_unbuilt():
    model = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3)
    with pytest.raises(ModelStateError, match=r"fit\(\) needs a compiled model"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ModelStateError, match=r"evaluate\(\) needs a compiled model"):
        model.evaluate(X, Y)
    with pytest.raises(ModelStateError, match=NOT_BUILT):
        model.get_weights()


def test_compile_before_the_build_checks_its_names_at_once():
    model = Sequential([Dense(3)])
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret .*adamm"):
        model.compile(optimizer="adamm")
    assert not model.is_compiled


def test_an_embedding_first_builds_an_int64_input_of_token_ids():
    model = Sequential([Embedding(10, 2), Flatten(), Dense(2)], seed=1)
    ids = np.array([[1, 2, 3, 4, 9], [0, 0, 1, 1, 2]], dtype=np.int32)
    got = model.predict(ids)
    reference = Sequential([Input(5, dtype="int64"), Embedding(10, 2), Flatten(), Dense(2)], seed=1)
    assert model.layers[0].dtype == np.int64
    np.testing.assert_array_equal(got, reference.predict(ids))


def test_integer_pixels_build_a_float_input():
    model = Sequential([Flatten(), Dense(2)], seed=1)
    with pytest.warns(UserWarning, match="input_scale is 1, so the model reads the raw values"):
        model.predict(np.zeros((2, 3, 3), np.uint8))
    assert model.layers[0].dtype == np.float32 and model.input_shape == (3, 3)


def test_a_shape_the_layers_cannot_read_leaves_the_model_unbuilt_for_another_try():
    model = Sequential([Flatten(), Dense(3, input_shape=(4,))], seed=3)  # Flatten of (2, 2) gives (4,)
    with pytest.raises(ShapeError, match=r"declares inputs of shape \(4,\)"):
        model.build((None, 5))
    assert not model.layers[1].built
    model.build((None, 2, 2))
    assert model.output_shape == (3,)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((4,), r"expects the shape of a batch, the batch axis first"),
        (4, r"expects the shape of a batch"),
        ((None, None), r"input_shape\[1\]=None"),
        ((0, 4), r"None \(any batch size\) or a positive int first"),
    ],
)
def test_build_refuses_what_is_not_a_batch_shape(shape, message):
    with pytest.raises(InvalidArgumentError, match=message):
        Sequential([Dense(3)]).build(shape)


def test_data_without_an_example_shape_cannot_build():
    with pytest.raises(InvalidArgumentError, match=r"predict\(\) builds this model .*Received: x of shape \(4,\)"):
        Sequential([Dense(3)]).predict(np.zeros(4, np.float32))


def test_an_unbuilt_sequential_called_on_a_tensor_is_built_for_it():
    inner = Sequential([Dense(8, activation="relu"), Dense(3)], seed=3, name="inner")
    x = Input(4)
    outer = Model(x, inner(x))
    assert inner.input_shape == (4,) and outer.output_shape == (3,)


class _ToNumpyOnly:
    """What a dataframe library may give: to_numpy() and len(), no __array__ or shape."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def to_numpy(self, dtype=None) -> np.ndarray:
        return self.array

    def __len__(self) -> int:
        return len(self.array)


def test_an_array_like_with_only_to_numpy_builds_as_fit_reads_it():
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    deferred, explicit = (
        Sequential([Dense(3, activation="linear")], seed=1),
        Sequential.of(Input(4), Dense(3, activation="linear"), seed=1),
    )
    for model in (deferred, explicit):
        model.compile(optimizer="adam", loss="mse")
        model.fit(_ToNumpyOnly(x), _ToNumpyOnly(np.zeros((40, 3), np.float32)), epochs=1, shuffle=False, verbose=0)
    assert deferred.input_shape == (4,)
    np.testing.assert_array_equal(deferred.predict(_ToNumpyOnly(x[:2])), explicit.predict(x[:2]))
