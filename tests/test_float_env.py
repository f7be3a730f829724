"""Subnormals are flushed inside ONNX Runtime only: the user's own float arithmetic keeps IEEE subnormals."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.layers import Dense, Input

SUBNORMAL = np.float32(1e-39)


def subnormals_survive() -> bool:
    return bool(np.array([SUBNORMAL]) * np.float32(1.0) != 0)


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_training_and_predicting_leave_the_callers_float_mode_alone(engine):
    assert subnormals_survive()
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam", engine=engine)
        assert subnormals_survive()
        model.fit((x, np.arange(32) % 3), epochs=1, batch_size=8, verbose=0)
        model.predict(x)
        model.evaluate((x, np.arange(32) % 3))
        assert subnormals_survive()


def test_flush_to_zero_is_active_inside_ort_calls():
    from onnxtrain._float_env import FlushToZero

    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam", engine="portable")
        flush = model._trainer.engine._flush
        assert isinstance(flush, FlushToZero)
        with flush.active():
            inside = subnormals_survive()
        assert not inside and subnormals_survive()
