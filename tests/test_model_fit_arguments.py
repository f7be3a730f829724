"""Keras' fit arguments `initial_epoch` and `steps_per_epoch`, and one clear error for any keyword fit, evaluate or
predict does not take."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.callbacks import Callback
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 40)


def tiny() -> Sequential:
    model = Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Steps(Callback):
    """Each epoch's batches, as the optimizer's update count at its end."""

    def __init__(self) -> None:
        self.updates: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.updates.append(self.optimizer_steps)


# --- initial_epoch -------------------------------------------------------------------------------------------
def test_initial_epoch_equal_to_the_epochs_trained_trains_up_to_epochs_as_keras():
    # Keras: fit(epochs=2), then fit(initial_epoch=2, epochs=5) trains epochs 3, 4 and 5 (0-based 2..4).
    with tiny() as model, tiny() as reference:
        model.fit(X, Y, epochs=2, verbose=0)
        history = model.fit(X, Y, initial_epoch=2, epochs=5, verbose=0)
        reference.fit(X, Y, epochs=5, verbose=0)
        assert history.epochs == [3, 4, 5]
        for name, value in reference.get_weights().items():
            np.testing.assert_array_equal(model.get_weights()[name], value)
        assert tiny().fit(X, Y, initial_epoch=0, epochs=2, verbose=0).epochs == [1, 2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"initial_epoch": 0, "epochs": 3},
            r"^fit\(initial_epoch=0\): the model has trained 2 epoch\(s\), and onnxtrain counts epochs on across fit "
            r"calls and in a loaded save, so its next epoch is 3\. Pass initial_epoch=2 \(or leave it out: "
            r"fit\(epochs=N\) trains N more epochs\)\. Nothing was trained\.$",
        ),
        ({"initial_epoch": 5, "epochs": 8}, r"fit\(initial_epoch=5\): the model has trained 2 epoch"),
        (
            {"initial_epoch": 2, "epochs": 2},
            r"^fit\(initial_epoch=2, epochs=2\) trains no epoch: with initial_epoch, epochs is the number of the last "
            r"epoch, as in Keras\. Pass epochs > 2 \(epochs=3 trains one more\)\. Nothing was trained\.$",
        ),
        ({"initial_epoch": -1}, r"fit\(initial_epoch=\.\.\.\) expects an int >= 0\. Received: initial_epoch=-1"),
        ({"initial_epoch": 2.0}, r"fit\(initial_epoch=\.\.\.\) expects an int >= 0\. Received: initial_epoch=2\.0"),
    ],
)
def test_another_initial_epoch_is_refused_before_any_step(kwargs, match):
    with tiny() as model:
        model.fit(X, Y, epochs=2, verbose=0)
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=match):
            model.fit(X, Y, verbose=0, **kwargs)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])


# --- steps_per_epoch -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("batch_size", "steps"), [(8, 3), (8, 5), (16, 2), (40, 1)])
def test_steps_per_epoch_trains_that_many_batches_each_epoch(batch_size, steps):
    counter = Steps()
    with tiny() as model:
        history = model.fit(
            X, Y, batch_size=batch_size, steps_per_epoch=steps, epochs=3, verbose=0, callbacks=[counter]
        )
    assert counter.updates == [steps, 2 * steps, 3 * steps]
    assert history.params["steps"] == steps


def test_steps_per_epoch_of_every_batch_trains_as_without_it():
    with tiny() as model, tiny() as reference:
        model.fit(X, Y, batch_size=8, steps_per_epoch=5, epochs=2, verbose=0)
        reference.fit(X, Y, batch_size=8, epochs=2, verbose=0)
        for name, value in reference.get_weights().items():
            np.testing.assert_array_equal(model.get_weights()[name], value)


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        (
            6,
            r"^fit\(steps_per_epoch=6\) asks for more batches than the data has: 40 examples make 5 batch\(es\) of 8\. "
            r"Pass steps_per_epoch <= 5, or leave it out",
        ),
        (0, r"fit\(steps_per_epoch=\.\.\.\) expects a positive int\. Received: 0"),
        (2.5, r"fit\(steps_per_epoch=\.\.\.\) expects a positive int\. Received: 2\.5"),
    ],
)
def test_steps_per_epoch_beyond_the_data_is_refused(steps, match):
    with tiny() as model, pytest.raises(InvalidArgumentError, match=match):
        model.fit(X, Y, batch_size=8, steps_per_epoch=steps, verbose=0)


def test_steps_per_epoch_without_shuffling_warns_that_the_rest_is_never_trained():
    with tiny() as model, pytest.warns(UserWarning, match=r"trains the same first 2 of the 5 batches every epoch"):
        model.fit(X, Y, batch_size=8, steps_per_epoch=2, shuffle=False, verbose=0)
    with tiny() as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, Y, batch_size=8, steps_per_epoch=5, shuffle=False, verbose=0)  # every batch: nothing left out


# --- keywords fit, evaluate and predict do not take ----------------------------------------------------------
UNKNOWN = [
    ("fit", lambda model: model.fit(X, Y, workers=2, verbose=0), r"^fit\(\) got unexpected keyword argument "),
    (
        "evaluate",
        lambda model: model.evaluate(X, Y, max_queue_size=2),
        r"^evaluate\(\) got unexpected keyword argument 'max_queue_size'",
    ),
    (
        "predict",
        lambda model: model.predict(X, callbacks=[]),
        r"^predict\(\) got unexpected keyword argument 'callbacks'",
    ),
    ("predict_softly", lambda model: model.predict_softly(X, step=1), r"^predict_softly\(\) got unexpected keyword"),
    (
        "fit, two",
        lambda model: model.fit(X, Y, foo=1, bar=2),
        r"^fit\(\) got unexpected keyword arguments 'foo', 'bar'",
    ),
]


@pytest.mark.parametrize(("method", "call", "match"), UNKNOWN, ids=[row[0] for row in UNKNOWN])
def test_an_unknown_keyword_is_one_error_listing_what_the_method_takes(method, call, match):
    with tiny() as model, pytest.raises(InvalidTypeError, match=match) as raised:
        call(model)
    assert isinstance(raised.value, TypeError)  # what Python raises for it, so callers catch either
    takes = str(raised.value).split("It takes: ")[1]
    assert "x, " in takes and "batch_size" in takes and "verbose" in takes and "unknown" not in takes
    if method.startswith("fit"):
        assert "initial_epoch, steps_per_epoch, validation_steps, validation_freq." in takes
