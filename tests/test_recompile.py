"""Compiling again with the model's own optimizer (`_compiled_attributes.py`, `optimizers.get`): Keras' idiom
`model.compile(optimizer=model.optimizer, ...)` after freezing a layer compiles the same Optimizer object at the rate
it trains with now (one set through `model.learning_rate` or `model.optimizer.learning_rate` included), as Keras 3
does; a schedule stays the schedule. The optimizer state starts anew, where Keras 3 keeps it (documented in
`CompiledOptimizer` and docs/pytorch.md)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential, optimizers
from onnxtrain.errors import UnknownIdentifierError
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import SGD, Adam, schedules

X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
Y = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)

# Keras 3.15 (JAX backend): Adam(1e-3) on Dense(8) -> Dense(3), fit of 4 steps, then
# `model.optimizer.learning_rate = 1e-5` and `model.compile(optimizer=model.optimizer, loss="mse")`: the model's
# optimizer is the object compiled before, its learning_rate 1e-5 (float32), its iterations still 4.
KERAS_RATE_AFTER_RECOMPILE = 1e-5
KERAS_ITERATIONS_AFTER_RECOMPILE = 4


def _model() -> Sequential:
    return Sequential.of(Input(4), Dense(8, activation="relu"), Dense(3, activation="linear"), seed=0)


def test_compile_takes_the_models_own_optimizer_after_a_layer_is_frozen():
    with _model() as model:
        model.compile(optimizer="adam", loss="mse")
        first = model.optimizer.compiled_optimizer
        model.get_layer("dense_1").trainable = False
        frozen = model.get_weights()["dense_1.kernel"]
        model.compile(optimizer=model.optimizer, loss="mse")
        assert model.optimizer.compiled_optimizer is first
        model.train_on_batch(X, Y)
        weights = model.get_weights()
    np.testing.assert_array_equal(weights["dense_1.kernel"], frozen)


@pytest.mark.parametrize("recompile_with", ["model.optimizer", "compiled_optimizer"])
def test_a_rate_set_on_the_model_survives_compiling_again_as_in_keras(recompile_with):
    with _model() as model:
        model.compile(optimizer=Adam(1e-3), loss="mse")
        model.fit(X, Y, batch_size=2, epochs=1, verbose=0)
        model.optimizer.learning_rate = 1e-5
        again = model.optimizer if recompile_with == "model.optimizer" else model.optimizer.compiled_optimizer
        model.compile(optimizer=again, loss="mse")
        assert model.learning_rate == pytest.approx(KERAS_RATE_AFTER_RECOMPILE, rel=1e-7)
        assert model.optimizer.compiled_optimizer.learning_rate == pytest.approx(KERAS_RATE_AFTER_RECOMPILE)
        # Keras keeps the optimizer's iterations (KERAS_ITERATIONS_AFTER_RECOMPILE) and moments; every compile here
        # starts them anew
        assert model.optimizer.iterations == 0


def test_compiling_again_trains_at_the_rate_set_with_a_fresh_state():
    """One SGD-with-momentum step after compiling again at a rate set on the model equals a fresh compile's first
    step at that rate from the same weights: the rate is the one set, the momentum starts at 0."""
    with _model() as model, _model() as reference:
        model.compile(optimizer=SGD(0.1, momentum=0.9), loss="mse")
        model.train_on_batch(X, Y)
        model.learning_rate = 0.01
        model.compile(optimizer=model.optimizer, loss="mse")
        reference.compile(optimizer=SGD(0.01, momentum=0.9), loss="mse")
        reference.set_weights(model.get_weights())
        model.train_on_batch(X, Y)
        reference.train_on_batch(X, Y)
        ours, expected = model.get_weights(), reference.get_weights()
    for name, value in expected.items():
        np.testing.assert_array_equal(ours[name], value)


def test_setting_the_rate_sets_the_optimizer_objects_rate_as_keras_variable_does():
    optimizer = SGD(0.1)
    with _model() as model:
        model.compile(optimizer=optimizer, loss="mse")
        model.learning_rate = 0.05
        assert optimizer.learning_rate == 0.05
        model.optimizer.learning_rate = np.float32(0.025)
        assert optimizer.learning_rate == pytest.approx(0.025) and isinstance(optimizer.learning_rate, float)


def test_a_schedule_stays_the_schedule_and_starts_again_from_step_zero():
    schedule = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    with _model() as model:
        model.compile(optimizer=SGD(schedule), loss="mse")
        model.train_on_batch(X, Y)
        model.train_on_batch(X, Y)
        assert model.learning_rate == pytest.approx(schedule(2))
        model.compile(optimizer=model.optimizer, loss="mse")
        assert model.optimizer.compiled_optimizer.learning_rate is schedule
        assert model.learning_rate == pytest.approx(schedule(0))


def test_the_models_optimizer_compiles_another_model_at_its_current_rate():
    with _model() as first, _model() as second:
        first.compile(optimizer=Adam(1e-3), loss="mse")
        first.learning_rate = 2e-4
        second.compile(optimizer=first.optimizer, loss="mse")
        assert second.learning_rate == pytest.approx(2e-4)
        assert optimizers.get(first.optimizer) is first.optimizer.compiled_optimizer


def test_an_object_that_is_no_optimizer_is_refused_naming_what_compile_takes():
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret optimizer 3 \(int\)\. .*a compiled model's"):
        optimizers.get(3)  # type: ignore[arg-type]
