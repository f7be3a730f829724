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


def test_scopes_nest_and_only_the_outermost_gives_the_mode_back():
    from onnxtrain._float_env import FlushToZero

    a, b = FlushToZero(), FlushToZero()
    with a.active():
        with b.active():
            assert not subnormals_survive()
        assert not subnormals_survive()  # the inner scope closed, the outer one still flushes
    assert subnormals_survive()


def test_a_scope_is_per_thread():
    import threading

    from onnxtrain._float_env import FlushToZero

    inside, seen = threading.Event(), []

    def other_thread() -> None:
        inside.wait()
        seen.append(subnormals_survive())

    thread = threading.Thread(target=other_thread)
    thread.start()  # before the scope: a new thread starts with its creator's float mode
    with FlushToZero().active():
        inside.set()
        thread.join()
        assert not subnormals_survive()
    assert seen == [True] and subnormals_survive()


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_callbacks_run_outside_the_flush_mode_held_over_an_epoch(engine):
    from onnxtrain.callbacks import Callback

    class Probe(Callback):
        def __init__(self) -> None:
            self.batch, self.epoch = [], []

        def on_batch_end(self, batch, logs=None):
            self.batch.append(subnormals_survive())

        def on_epoch_end(self, epoch, logs=None):
            self.epoch.append(subnormals_survive())

    class EpochProbe(Callback):
        def __init__(self) -> None:
            self.epoch = []

        def on_epoch_end(self, epoch, logs=None):
            self.epoch.append(subnormals_survive())

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
        model.compile(optimizer="adam", engine=engine)
        per_batch, per_epoch = Probe(), EpochProbe()
        model.fit((x, np.arange(32) % 3), epochs=2, batch_size=8, verbose=0, callbacks=[per_batch])
        model.fit((x, np.arange(32) % 3), epochs=2, batch_size=8, verbose=0, callbacks=[per_epoch])
    assert per_batch.batch == [True] * 8 and per_batch.epoch == [True] * 2
    assert per_epoch.epoch == [True] * 2 and subnormals_survive()


def test_a_suspension_gives_the_thread_its_own_mode_back_inside_a_scope():
    from onnxtrain._float_env import FlushToZero

    flush = FlushToZero()
    with flush.suspended():
        assert subnormals_survive()  # no scope open: nothing to suspend
    with flush.active():
        with flush.suspended():
            assert subnormals_survive()
            with flush.active():  # an ORT call made by user code inside, e.g. predict in a callback
                assert not subnormals_survive()
            assert subnormals_survive()
        assert not subnormals_survive()
    assert subnormals_survive()


@pytest.mark.parametrize("engine", ["ort-training", "portable"])
def test_a_callback_handed_a_non_finite_batch_runs_in_the_callers_mode(engine):
    from onnxtrain.callbacks import TerminateOnNaN
    from onnxtrain.optimizers import SGD

    class Probe(TerminateOnNaN):  # asks for no per-batch figures, yet gets the failing batch
        def on_batch_end(self, batch, logs=None):
            self.mode = subnormals_survive()
            super().on_batch_end(batch, logs)

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    probe = Probe()
    with Sequential.of(Input(4), Dense(3, activation="linear"), seed=1) as model:
        model.compile(optimizer=SGD(learning_rate=1e38), engine=engine)
        model.fit((x, np.arange(32) % 3), epochs=3, batch_size=8, verbose=0, callbacks=[probe])
    assert probe.stopped_at is not None and probe.mode is True and subnormals_survive()
