"""Keras' attributes of a compiled model (`_compiled_attributes.py`): under a learning-rate schedule,
`model.learning_rate` and `model.optimizer.learning_rate` read the rate of the next update, `schedule(iterations)`,
as Keras 3's `optimizer.learning_rate` does, and the History logs no rate of its own, as Keras' does not."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import SGD, Adam, schedules

X = np.random.default_rng(0).random((8, 4)).astype(np.float32)
Y = np.ones((8, 2), np.float32)

# Keras 3.15 (JAX backend), Adam(learning_rate=ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)) on Dense(2),
# loss "mse": optimizer.learning_rate before any step and after each of 3 train_on_batch calls; then after
# fit(epochs=2, batch_size=4) on 8 examples (7 iterations in all), and that fit's History keys.
KERAS_RATES_BY_ITERATIONS = [1.0, 0.5, 0.25, 0.125]
KERAS_RATE_AFTER_FIT = 0.0078125
KERAS_HISTORY_KEYS = ["loss"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["portable", "ort-training"])
def test_the_learning_rate_under_a_schedule_is_the_next_updates_as_keras(engine):
    schedule = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    with Sequential([Input(4), Dense(2, activation="linear")], seed=0) as model:
        model.compile(optimizer=Adam(learning_rate=schedule), loss="mse", engine=engine)
        rates = [model.learning_rate]
        for _ in range(3):
            model.train_on_batch(X, Y)
            rates.append(model.optimizer.learning_rate)
        history = model.fit(X, Y, epochs=2, batch_size=4, verbose=0)
        assert model.optimizer.iterations == 7
        assert model.learning_rate == pytest.approx(KERAS_RATE_AFTER_FIT, rel=1e-7)
    assert rates == pytest.approx(KERAS_RATES_BY_ITERATIONS, rel=1e-7)
    assert list(history.history) == KERAS_HISTORY_KEYS


def test_a_fixed_learning_rate_reads_as_it_was_set():
    with Sequential([Input(4), Dense(2, activation="linear")], seed=0) as model:
        model.compile(optimizer=SGD(learning_rate=0.25), loss="mse", engine="portable")
        assert model.learning_rate == 0.25
        model.optimizer.learning_rate = 0.125
        model.train_on_batch(X, Y)
        assert model.learning_rate == 0.125 and model.optimizer.learning_rate == 0.125
