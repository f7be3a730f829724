"""Array-likes (a pandas DataFrame or Series: `__array__`, `to_numpy()`) wherever an array is taken, bool labels
wherever 0/1 labels are, and structured arrays refused with how to stack their columns. pandas is not a
dependency: `Frame` and `Column` stand in for a DataFrame and a Series."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from onnxtrain import InferenceModel, Model, Sequential
from onnxtrain.arrays import as_array, prepare_x
from onnxtrain.errors import InvalidTypeError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(7)
X = RNG.standard_normal((40, 3))  # float64, as a DataFrame's columns
Y = X.sum(axis=1) > 0


class Frame:
    """What a pandas DataFrame offers numpy: `__array__`, `to_numpy`, `shape`, `__len__` (no ndarray)."""

    def __init__(self, values: Any):
        self._values = np.asarray(values)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._values if dtype is None else self._values.astype(dtype)

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        return np.asarray(self._values, dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._values.shape

    def __len__(self) -> int:
        return len(self._values)


class Column(Frame):
    """A pandas Series: one axis."""


class OnlyToNumpy:
    """An array-like that numpy cannot read itself (no `__array__`): `to_numpy()` alone."""

    def __init__(self, values: np.ndarray):
        self._values = values

    def to_numpy(self) -> np.ndarray:
        return self._values


def _binary_model() -> Sequential:
    model = Sequential([Input(3), Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["binary_accuracy"], engine="portable")
    return model


def test_fit_evaluate_predict_and_predict_softly_take_a_data_frame_as_its_array():
    with _binary_model() as frames, _binary_model() as arrays:
        weights = RNG.uniform(0.5, 2.0, 40)
        frames.fit(
            Frame(X),
            Column(Y.astype(np.float64)),
            sample_weight=Column(weights),
            validation_data=(Frame(X[:8]), Column(Y[:8]), Column(weights[:8])),
            epochs=2,
            batch_size=8,
            shuffle=False,
            verbose=0,
        )
        arrays.fit(
            X.astype(np.float32),
            Y.astype(np.float32),
            sample_weight=weights,
            validation_data=(X[:8], Y[:8].astype(np.float32), weights[:8]),
            epochs=2,
            batch_size=8,
            shuffle=False,
            verbose=0,
        )
        np.testing.assert_array_equal(frames.predict_softly(Frame(X)), arrays.predict_softly(X.astype(np.float32)))
        np.testing.assert_array_equal(frames.predict(Frame(X)), arrays.predict(X))
        np.testing.assert_array_equal(frames.predict([Frame(X)]), arrays.predict(X))  # Keras' [x]
        assert frames.evaluate(Frame(X), Column(Y), return_dict=True) == arrays.evaluate(X, Y, return_dict=True)


def test_an_exported_model_predicts_a_data_frame(tmp_path):
    with _binary_model() as model:
        model.fit(X, Y, epochs=1, verbose=0)
        expected = model.predict_softly(X)
        path = model.export(tmp_path / "model.onnx")
    with InferenceModel.load(path) as exported:
        np.testing.assert_allclose(exported.predict_softly(Frame(X)), expected, rtol=1e-6)
        np.testing.assert_allclose(exported.predict_softly(Frame(X[0])), expected[0], rtol=1e-6)  # one example


def test_a_model_of_several_inputs_takes_a_frame_per_input():
    a, b = Input(3, name="a"), Input(2, name="b")
    from onnxtrain.layers import Concatenate

    with Model([a, b], Dense(1, activation="linear")(Concatenate()([a, b])), seed=0) as model:
        model.compile(optimizer="sgd", loss="mse", engine="portable")
        x2 = RNG.standard_normal((40, 2))
        model.fit([Frame(X), Frame(x2)], Column(X.sum(axis=1)), epochs=1, verbose=0)
        expected = model.predict([X, x2])
        np.testing.assert_array_equal(model.predict({"a": Frame(X), "b": Frame(x2)}), expected)


@pytest.mark.parametrize("loss", ["binary_crossentropy", "sparse_categorical_crossentropy", "mse"])
def test_bool_labels_train_as_their_0_1_labels(loss: str):
    units, activation = (2, "linear") if loss.startswith("sparse") else (1, "sigmoid")
    results = []
    for labels in (Y, Y.astype(np.int64), Column(Y)):
        with Sequential([Input(3), Dense(units, activation=activation)], seed=0) as model:
            model.compile(optimizer="sgd", loss=loss, engine="portable")
            history = model.fit(X, labels, validation_data=(X, labels), epochs=2, shuffle=False, verbose=0)
            results.append((history.history, model.evaluate(X, labels, return_dict=True)))
    assert results[0] == results[1] == results[2]


def test_a_structured_array_is_refused_with_how_to_stack_its_columns():
    records = np.zeros(4, dtype=[("age", np.float64), ("income", np.float64), ("rooms", np.int64)])
    with pytest.raises(InvalidTypeError, match=r"structured \(record\) array with fields \['age', 'income', 'rooms'\]"):
        prepare_x(records, (3,))
    with _binary_model() as model, pytest.raises(InvalidTypeError, match=r"np\.column_stack\(\[x\[name\] for name"):
        model.fit(records, np.zeros(4), verbose=0)
    with _binary_model() as model, pytest.raises(InvalidTypeError, match=r"np\.column_stack"):
        model.predict(records)
    stacked = np.column_stack([records[name] for name in records.dtype.names]).astype(np.float32)
    assert prepare_x(stacked, (3,))[0].shape == (4, 3)


def test_a_frame_of_text_columns_is_refused_naming_the_conversion():
    mixed = Frame(np.array([[1.0, "a", 2]], dtype=object))
    with pytest.raises(InvalidTypeError, match=r"dtype object.*x\.to_numpy\(np\.float32\)"):
        prepare_x(mixed, (3,))


def test_as_array_converts_array_likes_once_and_leaves_the_rest():
    np.testing.assert_array_equal(as_array(OnlyToNumpy(X), "x"), X)
    np.testing.assert_array_equal(as_array(Column([1, 2]), "y"), [1, 2])
    given = {"a": X}
    assert as_array(given, "x") is given
    assert as_array(X, "x") is X
    with pytest.raises(InvalidTypeError, match="a ragged list"):
        as_array([[1.0], [1.0, 2.0]], "x")
