"""A model of one output takes each streamed batch's y and sample weights keyed by its output's name, {name: array}
(`_batches.read_data`), as it takes arrays so and as Keras 3 takes them: the losses are bit-identical to the same
batches given with plain arrays, from a generator, any other iterator and a PyDataset, for fit, validation and
evaluate; another key is refused naming the batch and the expected key."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from onnxtrain import Model
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(4)
X = RNG.normal(size=(24, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 24)
W = RNG.uniform(0.5, 2.0, 24).astype(np.float32)
SIZE = 8
BATCHES = math.ceil(len(X) / SIZE)

# (x, y, w) of one batch -> the batch as the data gives it; None drops the weights
Form = Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[Any, ...]]


def plain(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
    return (x, y) if w is None else (x, y, w)


def keyed(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
    return (x, {"only": y}) if w is None else (x, {"only": y}, {"only": w})


def keyed_inputs(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
    return ({"features": x}, {"only": y}) if w is None else ({"features": x}, {"only": y}, {"only": w})


def wrong_key(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
    return (x, {"other": y}) if w is None else (x, {"other": y}, w)


def wrong_weight_key(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
    return (x, {"only": y}, {"other": w})


def batch(form: Form, index: int, weighted: bool) -> tuple[Any, ...]:
    rows = slice(index * SIZE, (index + 1) * SIZE)
    return form(X[rows], Y[rows], W[rows] if weighted else None)


def generator(form: Form, weighted: bool) -> Iterator[tuple[Any, ...]]:
    for index in range(BATCHES):
        yield batch(form, index, weighted)


class Batches:
    """An iterator that is no generator (what a hand-written loader gives): `__iter__` and `__next__`."""

    def __init__(self, form: Form, weighted: bool):
        self.form, self.weighted, self.index = form, weighted, 0

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> tuple[Any, ...]:
        if self.index == BATCHES:
            raise StopIteration
        self.index += 1
        return batch(self.form, self.index - 1, self.weighted)


class PyDataset:
    """A keras.utils.PyDataset in all but name: len() batches, the i-th by index."""

    def __init__(self, form: Form, weighted: bool):
        self.form, self.weighted = form, weighted

    def __len__(self) -> int:
        return BATCHES

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return batch(self.form, index, self.weighted)


SOURCES = {"generator": generator, "iterator": Batches, "py_dataset": PyDataset}


def keyed_model() -> Model:
    """Keras' Model(i, {'only': head}): one output, keyed by name."""
    features = Input(4, name="features")
    model = Model(features, {"only": Dense(3, name="head")(Dense(5)(features))}, seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("form", [keyed, keyed_inputs])
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_keyed_targets_train_as_plain_ones(source: str, form: Form, weighted: bool) -> None:
    make = SOURCES[source]
    with keyed_model() as reference, keyed_model() as model:
        expected = reference.fit(make(plain, weighted), verbose=0).history
        expected_evaluation = reference.evaluate(make(plain, weighted), verbose=0, return_dict=True)
        history = model.fit(make(form, weighted), verbose=0).history
        evaluation = model.evaluate(make(form, weighted), verbose=0, return_dict=True)
    assert history == expected
    assert evaluation == expected_evaluation


def test_streamed_keyed_targets_equal_keyed_arrays() -> None:
    with keyed_model() as reference, keyed_model() as model:
        given = {"only": Y}, {"only": W}
        expected = reference.fit(X, given[0], sample_weight=given[1], batch_size=SIZE, shuffle=False, verbose=0)
        history = model.fit(generator(keyed, True), verbose=0).history
        assert history == expected.history
        np.testing.assert_array_equal(model.predict(X, verbose=0)["only"], reference.predict(X, verbose=0)["only"])


def test_validation_and_class_weight_take_streamed_keyed_targets() -> None:
    weights = {0: 1.0, 1: 2.0, 2: 0.5}
    with keyed_model() as reference, keyed_model() as model:
        expected = reference.fit(
            generator(plain, False), validation_data=PyDataset(plain, True), class_weight=weights, verbose=0
        ).history
        history = model.fit(
            generator(keyed, False), validation_data=PyDataset(keyed, True), class_weight=weights, verbose=0
        ).history
    assert history == expected and set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_a_model_of_several_outputs_keeps_reading_its_dict_of_targets() -> None:
    features = Input(4)
    hidden = Dense(5)(features)
    model = Model(features, {"a": Dense(3, name="ha")(hidden), "b": Dense(3, name="hb")(hidden)}, seed=0)
    stream = ((x, {"a": y, "b": y}) for x, y in generator(plain, False))
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        expected = model.evaluate(X, {"a": Y, "b": Y}, batch_size=SIZE, verbose=0, return_dict=True)
        assert model.evaluate(stream, verbose=0, return_dict=True) == expected


BAD = [
    (
        lambda: generator(wrong_key, False),
        r"dataset batch 1 \(from the generator\): y for a model of one output expects an array, or a dict "
        r"\{'only': array\} keyed by its output's name. Received keys: \['other'\]",
    ),
    (
        lambda: PyDataset(wrong_key, False),
        r"dataset\[0\]: y for a model of one output .* Received keys: \['other'\]",
    ),
    (
        lambda: generator(wrong_weight_key, True),
        r"dataset batch 1 \(from the generator\): sample_weight for a model of one output expects an array, or a "
        r"dict \{'only': array\}.* Received keys: \['other'\]",
    ),
]


@pytest.mark.parametrize(("data", "match"), BAD)
def test_streamed_targets_under_another_key_are_refused(data: Callable[[], Any], match: str) -> None:
    with keyed_model() as model:
        with pytest.raises(InvalidArgumentError, match=match):
            model.fit(data(), verbose=0)
        with pytest.raises(InvalidArgumentError, match=match):
            model.evaluate(data(), verbose=0)
