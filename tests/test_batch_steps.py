"""`_batch_steps.py`'s refusals: `train_on_batch` in a data-parallel world (a fake world of threads) names the
process, the world and the two ways out, and a model compiled in `distributed.alone()` trains on a batch there; a
Dataset given with a y beside it is refused by `train_on_batch` and `test_on_batch` (`labels_beside_dataset`).
The one-batch figures themselves are tested in test_model_keras_api.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_distributed import ThreadWorld

import onnxtrain.distributed as dist
from onnxtrain import Dataset, Sequential
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(3)
X = RNG.normal(size=(8, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 8)


@pytest.fixture(autouse=True)
def _alone_after() -> Any:
    yield
    dist.leave()


def _compiled(seed: int = 1) -> Sequential:
    model = Sequential.of(Input(5), Dense(3), seed=seed)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", engine="portable", threads=1)
    return model


def test_train_on_batch_in_a_world_names_the_process_and_the_ways_out() -> None:
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train_on_batch(rank: int) -> tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]:
        with _compiled() as model:
            before = model.get_weights()
            with pytest.raises(UnsupportedError) as refused:
                model.train_on_batch(X, Y)
            return str(refused.value), before, model.get_weights()

    for rank, (message, before, after) in enumerate(world.run(train_on_batch)):
        assert message == (
            "train_on_batch trains one process's batch, which would leave the processes of a data-parallel world "
            f"stepping apart. Received: train_on_batch in process {rank} of 2 (onnxtrain.distributed.init() before "
            "compile). Use fit, which splits each global batch between them, or compile the model inside "
            "`with onnxtrain.distributed.alone():` to train it alone."
        )
        for name, value in before.items():  # refused before any update
            np.testing.assert_array_equal(after[name], value)


def test_a_model_compiled_alone_trains_on_a_batch_as_outside_a_world() -> None:
    """The refusal's second way out does what it says: one SGD step, as the same model takes it with no world."""
    with _compiled() as reference:
        reference.train_on_batch(X, Y)
        expected = reference.get_weights()
    world = ThreadWorld(2)
    dist.init(communicator=world)

    def train_alone(rank: int) -> dict[str, np.ndarray]:
        with dist.alone(), _compiled() as model:
            model.train_on_batch(X, Y)
            return model.get_weights()

    for weights in world.run(train_alone):
        for name, value in expected.items():
            np.testing.assert_allclose(weights[name], value, rtol=1e-6, atol=1e-7)


BESIDE_DATASET = [
    (
        "train_on_batch, labels",
        lambda model, data: model.train_on_batch(data, Y),
        r"^train_on_batch\(\) got a Dataset and, as y, an array of shape \(8,\): a Dataset carries its labels, so y "
        r"must be None\. Pass the Dataset alone: train_on_batch\(dataset\)\.$",
    ),
    (
        "test_on_batch, a batch size",
        lambda model, data: model.test_on_batch(data, 4),
        r"^test_on_batch\(\) got a Dataset and, as y, 4: .* Pass the Dataset alone: test_on_batch\(dataset\)\.$",
    ),
]


@pytest.mark.parametrize(("call", "match"), [r[1:] for r in BESIDE_DATASET], ids=[r[0] for r in BESIDE_DATASET])
def test_a_dataset_with_a_y_beside_it_is_refused(call, match) -> None:
    with _compiled() as model:
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=match):
            call(model, Dataset(X, Y))
        for name, value in before.items():
            np.testing.assert_array_equal(model.get_weights()[name], value)
        assert model.test_on_batch(Dataset(X, Y)) == model.test_on_batch(X, Y)  # the Dataset alone is taken
