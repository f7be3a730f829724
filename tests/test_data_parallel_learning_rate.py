"""The learning rate in a data-parallel fit (`_data_parallel_fit.agree_on_step`, called by `_epoch_loop`): a callback
that sets it in process 0 alone (Horovod's habit for the callbacks that print) is refused, in every process alike,
at the epoch's or batch's agreement before a step uses the rate, so the weights never drift apart; the same
callbacks in every process train as one process does. In a fake world of threads (tests/test_distributed.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_distributed import ThreadWorld

import onnxtrain.distributed as dist
from onnxtrain import Sequential
from onnxtrain._data_parallel_fit import agree_on_step
from onnxtrain.callbacks import Callback, LambdaCallback, LearningRateScheduler, ReduceLROnPlateau
from onnxtrain.errors import DataParallelError
from onnxtrain.layers import Dense, Input
from onnxtrain.optimizers import SGD

RNG = np.random.default_rng(4)
X = RNG.normal(size=(24, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 24)
RATE = 0.05  # compiled


@pytest.fixture(autouse=True)
def _alone_after() -> Any:
    yield
    dist.leave()


def _model(seed: int) -> Sequential:
    model = Sequential.of(Input(5), Dense(3), seed=seed)
    model.compile(optimizer=SGD(RATE), loss="sparse_categorical_crossentropy", engine="portable")
    return model


def _halve_after_batch_2(model: Sequential) -> Callback:
    def halve(batch: int, logs: Any) -> None:
        if batch == 2:
            model.learning_rate = model.learning_rate / 2

    return LambdaCallback(on_batch_end=halve)


# name: (what process 0 alone is given, epochs, the rates each process holds and when the check sees them)
IN_PROCESS_ZERO_ALONE: dict[str, tuple[Callable[[Sequential], Callback], int, str]] = {
    "reduce_lr_on_plateau": (  # no gain of 10 in epoch 2: the rate is halved at its end
        lambda model: ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0, factor=0.5),
        3,
        "learning_rate=0.025 in process 0, learning_rate=0.05 in process 1, when epoch 3 started",
    ),
    "scheduler": (
        lambda model: LearningRateScheduler(lambda epoch: 0.1 / epoch),
        2,
        "learning_rate=0.1 in process 0, learning_rate=0.05 in process 1, when epoch 1 started",
    ),
    "scheduler_per_step": (
        lambda model: LearningRateScheduler(lambda step: 0.2 / step, per_step=True),
        1,
        "learning_rate=0.2 in process 0, learning_rate=0.05 in process 1, before batch 1 of epoch 1",
    ),
    "own_callback_at_batch_end": (
        _halve_after_batch_2,
        1,
        "learning_rate=0.025 in process 0, learning_rate=0.05 in process 1, after batch 2 of epoch 1",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(IN_PROCESS_ZERO_ALONE))
def test_a_rate_set_in_process_zero_alone_is_refused_before_a_step_uses_it(case: str) -> None:
    """Before: process 0 trained on at its own rate and the weights drifted apart with no word (the rates were
    compared when fit started only). Now every process raises the same error, naming both rates, before the step
    that would use them: the processes still hold the same weights."""
    callback, epochs, rates = IN_PROCESS_ZERO_ALONE[case]
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train(rank: int) -> tuple[BaseException | None, dict[str, np.ndarray]]:
        with _model(seed=1 + rank) as model:
            try:
                model.fit(
                    X, Y, epochs=epochs, batch_size=6, verbose=0, callbacks=[callback(model)] if rank == 0 else []
                )
            except DataParallelError as e:
                return e, model.get_weights()
            return None, model.get_weights()

    (error, weights), (other_error, other_weights) = world.run(train)
    assert isinstance(error, DataParallelError) and str(error) == str(other_error)
    expected = (
        "same learning rate: they apply the same reduced gradients, and other rates step their weights apart. "
        f"Received: {rates}. Give every callback that sets the rate"
    )
    assert expected in str(error)
    assert all(np.array_equal(weights[name], other_weights[name]) for name in weights)


@pytest.mark.slow
def test_rate_callbacks_in_every_process_train_as_one_process() -> None:
    """Horovod's convention: the callbacks that set the rate run in every process. They read the same all-reduced
    logs, set the same rates, and the run is one process's (weights and rates)."""

    def callbacks() -> list[Callback]:
        return [
            ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0, factor=0.5),
            LearningRateScheduler(lambda epoch, rate: rate * 0.9),
        ]

    def train(rank: int) -> tuple[dict[str, np.ndarray], list[float]]:
        with _model(seed=1 + rank) as model:
            history = model.fit(X, Y, epochs=3, batch_size=6, verbose=0, callbacks=callbacks())
            return model.get_weights(), history.history["learning_rate"]

    alone, alone_rates = train(0)
    # each epoch 0.9 times the rate, and halved after epochs 2 and 3 (no gain of 10 in the loss)
    assert alone_rates == pytest.approx([RATE * 0.9, RATE * 0.9**2 / 2, RATE * 0.9**3 / 4])
    world = ThreadWorld(2)
    dist.init(communicator=world)
    for weights, rates in world.run(train):
        assert rates == alone_rates
        for name, value in alone.items():
            np.testing.assert_allclose(weights[name], value, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_a_rate_set_at_the_last_epoch_s_end_is_refused_when_the_next_fit_starts() -> None:
    """No step follows that rate in the fit: the next fit's check names both rates and the callback's fix."""
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train(rank: int) -> BaseException | None:
        with _model(seed=1) as model:
            plateau = [ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0)] if rank == 0 else []
            model.fit(X, Y, epochs=2, batch_size=6, verbose=0, callbacks=plateau)  # halved after epoch 2
            try:
                model.fit(X, Y, epochs=1, batch_size=6, verbose=0)
            except DataParallelError as e:
                return e
            return None

    errors = world.run(train)
    assert all(isinstance(e, DataParallelError) for e in errors) and len({str(e) for e in errors}) == 1
    expected = (
        "or by a callback in some processes only at the end of the last fit: give learning-rate callbacks to every "
        "process). Received: learning_rate=0.005 in process 0, learning_rate=0.05 in process 1"
    )
    assert expected in str(errors[0])


def test_rates_that_read_alike_once_rounded_are_named_exactly() -> None:
    world = ThreadWorld(3)
    rates = [0.005, 0.05 * 0.1, 0.005]  # 0.005000000000000001 in process 1

    def agree(rank: int) -> BaseException | None:
        try:
            agree_on_step(world, rates[rank], "when epoch 2 started")
        except DataParallelError as e:
            return e
        return None

    errors = world.run(agree)
    assert len({str(e) for e in errors}) == 1
    expected = (
        "Received: learning_rate=0.005 (exactly 0.005) in processes 0, 2, learning_rate=0.005 (exactly "
        "0.005000000000000001) in process 1, when epoch 2 started."
    )
    assert expected in str(errors[0])
    assert world.run(lambda rank: agree_on_step(world, 0.05, "", flag=rank == 2)) == [True] * 3
