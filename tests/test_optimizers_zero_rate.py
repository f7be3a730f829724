"""A learning rate of 0, which Keras 3 and PyTorch take: every optimizer accepts it (negative, NaN and infinite
rates stay refused), a fit with it leaves the weights where they are on both engines while the optimizer's moments
move as Keras' do, and a rule for an optimizer that divides by the rate can refuse it, saying why."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain import optimizers as opt
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import BatchNormalization, Dense, Input
from onnxtrain.optimizers._base import positive_learning_rate

X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
Y = np.random.default_rng(1).normal(size=(8, 2)).astype(np.float32)
KERNEL = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
BIAS = np.array([0.1, -0.2], np.float32)

# Keras 3.15 (JAX backend): Adam(learning_rate=0.0) on Dense(2) with KERNEL and BIAS, loss "mse", 3 full-batch
# steps on X, Y: the weights stay as they were, and the optimizer's variables after the steps are these.
KERAS_ADAM_ZERO_RATE = {
    "m.kernel": [
        -0.27182055,
        -0.083352484,
        -0.042313911,
        -0.013471982,
        -0.044066921,
        0.25513157,
        0.037008341,
        0.2005001,
    ],
    "v.kernel": [
        0.0030151773,
        0.0002835211,
        7.3065894e-05,
        7.406471e-06,
        7.9245328e-05,
        0.0026562978,
        5.5891727e-05,
        0.0016405049,
    ],
    "m.bias": [0.1480279, -0.034674548],
    "v.bias": [0.00089420163, 4.9064784e-05],
}

ZERO_RATE_OPTIMIZERS = [
    opt.SGD,
    opt.Momentum,
    opt.Adam,
    opt.AdamW,
    opt.Adamax,
    opt.Nadam,
    opt.RMSProp,
    opt.AdaDelta,
    opt.AdaGrad,
]


@pytest.mark.parametrize("cls", ZERO_RATE_OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_every_optimizer_takes_a_learning_rate_of_zero_as_keras_does(cls):
    assert cls(learning_rate=0.0).learning_rate == 0.0
    assert type(cls(learning_rate=np.float32(0)).learning_rate) is float
    optimizer = cls()
    optimizer.learning_rate = 0
    assert optimizer.learning_rate == 0.0 and opt.get(optimizer.get_config()).get_config() == optimizer.get_config()


@pytest.mark.parametrize("value", [-1e-3, -1e-30, math.nan, math.inf, -math.inf])
def test_negative_and_non_finite_rates_stay_refused(value):
    with pytest.raises(InvalidArgumentError, match=r"SGD\(learning_rate=...\) expects a finite number in \[0, "):
        opt.SGD(learning_rate=value)


def test_an_optimizer_that_divides_by_the_rate_refuses_zero_saying_why():
    class Dividing(opt.SGD):
        _checks: ClassVar = {"learning_rate": positive_learning_rate("divides by the learning rate: 0 would make NaN")}

    assert Dividing(learning_rate=0.5).learning_rate == 0.5
    message = r"Dividing\(learning_rate=...\) expects a finite number in \(0, .*\]: Dividing divides by the learning"
    with pytest.raises(InvalidArgumentError, match=message + r".*Received: learning_rate=0\.0"):
        Dividing(learning_rate=0.0)
    with pytest.raises(InvalidArgumentError, match=r"Received: learning_rate=-1"):
        Dividing(learning_rate=-1)
    schedule = opt.schedules.ExponentialDecay(0.1, 5, 0.5)  # a schedule is not a number: it may reach 0
    assert Dividing(learning_rate=schedule).learning_rate is schedule


def _fitted_with_zero_rate(optimizer: opt.Optimizer, engine: str) -> tuple[dict, dict, Sequential]:
    """(weights before, weights after) of 3 full-batch steps at learning rate 0, and the model (open)."""
    model = Sequential([Input(4), Dense(2, activation="linear")], seed=0)
    model.set_weights({"dense_1.kernel": KERNEL, "dense_1.bias": BIAS})
    model.compile(optimizer=optimizer, loss="mse", engine=engine)
    before = model.get_weights()
    model.fit(X, Y, epochs=3, batch_size=8, verbose=0)
    return before, model.get_weights(), model


@pytest.mark.slow
@pytest.mark.parametrize("cls", ZERO_RATE_OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_a_fit_at_rate_zero_leaves_the_weights_on_the_portable_engine(cls):
    before, after, model = _fitted_with_zero_rate(cls(learning_rate=0.0), "portable")
    with model:
        assert model.learning_rate == 0.0
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", [opt.SGD(0.0), opt.Adam(0.0), opt.Adam(0.0, clip_norm=0.5)], ids=repr)
def test_a_fit_at_rate_zero_leaves_the_weights_on_the_ort_training_engine(optimizer):
    before, after, model = _fitted_with_zero_rate(optimizer, "ort-training")
    model.close()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


@pytest.mark.slow
def test_adam_at_rate_zero_still_moves_its_moments_as_keras():
    before, after, model = _fitted_with_zero_rate(opt.Adam(learning_rate=0.0, epsilon=1e-7), "portable")
    with model:
        state = model._trainer.engine.optimizer_state()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    for key, expected in KERAS_ADAM_ZERO_RATE.items():
        slot, weight = key.split(".")
        got = state[f"optimizer.{slot}.dense_1.{weight}"].ravel()
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-9, err_msg=key)


@pytest.mark.slow
def test_a_fit_at_rate_zero_moves_only_batch_normalizations_statistics():
    """What a rate of 0 is for (a PyTorch habit): recalibrating BatchNormalization on new data, weights untouched."""
    with Sequential([Input(4), BatchNormalization(), Dense(2, activation="linear")], seed=0) as model:
        model.compile(optimizer=opt.Adam(learning_rate=0.0), loss="mse", engine="portable")
        before = model.get_weights()
        model.fit(X * 3 + 5, Y, epochs=2, batch_size=8, verbose=0)
        after = model.get_weights()
    moved = {name for name in before if not np.array_equal(before[name], after[name])}
    assert moved == {"batch_normalization_1.moving_mean", "batch_normalization_1.moving_variance"}


def test_the_models_learning_rate_may_be_set_to_zero_between_steps():
    with Sequential([Input(4), Dense(2, activation="linear")], seed=0) as model:
        model.compile(optimizer=opt.SGD(0.1), loss="mse", engine="portable")
        model.learning_rate = 0
        assert model.learning_rate == 0.0 and model.optimizer.learning_rate == 0.0
        with pytest.raises(InvalidArgumentError, match=r"learning_rate expects a finite number >= 0 .* -0\.1"):
            model.learning_rate = -0.1
