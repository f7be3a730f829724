"""onnxtrain.bundle under a learning-rate schedule: bundle.json records the next update's rate and the schedule, and
onnxtrain-js (Node.js) applies it before each update as Python's fit does (rates and losses step by step)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.bundle import read_metadata, read_state
from onnxtrain.cli import main
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Dropout, Input
from onnxtrain.optimizers import SGD, Adam, schedules
from tests.js_harness import ORT_NODE, missing_js_dependencies, node_script

RNG = np.random.default_rng(8)
X = RNG.random((64, 6), dtype=np.float32)
Y = RNG.integers(0, 3, 64)
BATCH = 8


def _model(learning_rate: object, optimizer: type = Adam) -> Sequential:
    model = Sequential.of(Input(6), Dense(8), Dropout(0.2, seed=1), Dense(3, activation="linear"), seed=11)
    model.compile(optimizer=optimizer(learning_rate=learning_rate), loss="sparse_categorical_crossentropy")
    return model


def _python_steps(model: Sequential, first: int, last: int) -> list[dict[str, float]]:
    """Batches first..last-1 by train_on_batch: each step's rate (model.learning_rate before it) and loss."""
    steps = []
    for k in range(first, last):
        rate = model.learning_rate
        loss = float(model.train_on_batch(X[k * BATCH : (k + 1) * BATCH], Y[k * BATCH : (k + 1) * BATCH]))
        steps.append({"rate": rate, "loss": loss})
    return steps


@pytest.mark.parametrize("steps", [0, 3])
def test_bundle_records_the_next_updates_rate_and_the_schedule(tmp_path, steps):
    schedule = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    with _model(schedule) as model:
        _python_steps(model, 0, steps)
        model.export_training_bundle(tmp_path / "b")
        expected = model.learning_rate
    metadata = read_metadata(tmp_path / "b")
    assert metadata["learning_rate"] == expected == 0.1 * 0.5**steps
    assert metadata["learning_rate_schedule"] == schedules.serialize(schedule)
    assert read_state(tmp_path / "b")["step"] == steps


def test_a_fixed_rate_is_recorded_as_set_and_no_schedule(tmp_path):
    with _model(0.05, SGD) as model:
        _python_steps(model, 0, 2)
        model.learning_rate = 0.02
        model.export_training_bundle(tmp_path / "b")
    metadata = read_metadata(tmp_path / "b")
    assert (metadata["learning_rate"], metadata["learning_rate_schedule"]) == (0.02, None)


@pytest.mark.slow
def test_the_cli_bundle_of_a_saved_scheduled_run_records_the_next_rate(tmp_path):
    schedule = schedules.PolynomialDecay(0.1, decay_steps=10, power=2.0)
    with _model(schedule) as model:
        model.fit((X, Y), epochs=1, batch_size=16, shuffle=False, verbose=0)
        expected = model.learning_rate
        model.save(tmp_path / "saved", save_optimizer_state=True)
    assert main(["bundle", str(tmp_path / "saved"), str(tmp_path / "b")]) == 0
    metadata = read_metadata(tmp_path / "b")
    assert metadata["learning_rate"] == expected == schedules.rate_at(schedule, 4)
    assert metadata["learning_rate_schedule"] == schedules.serialize(schedule)


class _Unregistered(schedules.LearningRateSchedule):
    def __call__(self, step: int) -> float:
        return 0.1

    def get_config(self) -> dict:
        return {}


def test_a_schedule_that_cannot_be_written_is_refused_naming_the_bundle(tmp_path):
    with _model(_Unregistered()) as model:
        with pytest.raises(
            InvalidArgumentError,
            match=r"export_training_bundle writes the optimizer's config.*"
            r"_Unregistered cannot be saved.*register",
        ):
            model.export_training_bundle(tmp_path / "b")
    assert not (tmp_path / "b").exists()


JS_STEPS = """
const trainer = await Trainer.load(ort, BUNDLE);
const x = Float32Array.from(X), y = Int32Array.from(Y);
const steps = [];
for (let k = 0; k < y.length / 8; k++) {
  const rate = trainer.learningRate;
  const { loss } = await trainer.step(x.subarray(k * 48, (k + 1) * 48), y.subarray(k * 8, (k + 1) * 8));
  steps.push({ rate, loss });
}
result = { steps, next: trainer.learningRate, step: trainer.stepCount };
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule",
    [
        schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5),
        schedules.PiecewiseConstantDecay([4, 6], [0.1, 0.03, 0.01]),
        schedules.CosineDecay(0.0, decay_steps=4, warmup_target=0.05, warmup_steps=2),
        schedules.CosineDecayRestarts(0.05, first_decay_steps=2, m_mul=0.7, alpha=0.1),
    ],
    ids=lambda s: type(s).__name__,
)
def test_node_continues_a_scheduled_run_with_pythons_rates_and_losses(tmp_path, schedule):
    """Python trains 2 steps and writes the bundle; Node.js and Python then train the same 6 batches."""
    reason = missing_js_dependencies(ORT_NODE)
    if reason is not None:
        pytest.skip(reason)
    with _model(schedule) as model:
        _python_steps(model, 0, 2)
        model.export_training_bundle(tmp_path / "b")
        python = _python_steps(model, 2, 8)
        next_rate = model.learning_rate
    body = (
        f"const BUNDLE = {json.dumps(str(tmp_path / 'b'))};\n"
        f"const X = {json.dumps(X[2 * BATCH :].ravel().tolist())}, Y = {json.dumps(Y[2 * BATCH :].tolist())};\n"
        + JS_STEPS
    )
    node = node_script(body, tmp_path)
    assert [np.float32(s["rate"]) for s in node["steps"]] == [np.float32(s["rate"]) for s in python]
    np.testing.assert_allclose([s["rate"] for s in node["steps"]], [s["rate"] for s in python], rtol=1e-15)
    np.testing.assert_allclose([s["loss"] for s in node["steps"]], [s["loss"] for s in python], rtol=1e-5)
    assert (node["step"], np.float32(node["next"])) == (8, np.float32(next_rate))
