"""Learning-rate schedules (onnxtrain.optimizers.schedules): Keras 3's values, an optimizer's `learning_rate` as a
schedule in fit (the rate of each update, counted across fit calls and a save/load), configs, and the refusals.

The reference values come from Keras 3.15.1 (JAX backend) calling its own schedules at steps 0..79
(tools/keras_schedule_fixtures.py writes tests/data/keras/schedules.npz); Keras computes them in float32, onnxtrain
in float64, so they are compared to a float32's precision.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from onnxtrain import load_model, optimizers
from onnxtrain.callbacks import Callback, LearningRateScheduler, ReduceLROnPlateau
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError
from onnxtrain.optimizers import SGD, Adam, LearningRateSchedule, schedules
from onnxtrain.optimizers.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
)
from tests.test_callbacks import tiny_data, tiny_model

FIXTURE = np.load(Path(__file__).parent / "data" / "keras" / "schedules.npz")
CASES = sorted({key.split("/")[0] for key in FIXTURE.files if "/" in key})
ENGINES = ["portable", "ort-training"]


def keras_schedule(case: str) -> dict:
    return json.loads(str(FIXTURE[f"{case}/schedule"]))


# --- values against Keras ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_schedule_values_equal_keras(case):
    # Built from Keras' own serialized form ({"module", "class_name", "config", "registered_name"}).
    schedule = schedules.deserialize(keras_schedule(case))
    expected = FIXTURE[f"{case}/values"]
    ours = np.array([schedule(step) for step in range(len(expected))])
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=5e-8)
    assert (ours == 0).tolist() == (expected == 0).tolist()  # CosineDecay with alpha=0 comes down to exactly 0


def test_the_fixture_covers_every_schedule_and_its_options():
    configs = [keras_schedule(case) for case in CASES]
    assert {c["class_name"] for c in configs} == {
        "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
        "CosineDecayRestarts",
    }  # fmt: skip
    options = [c["config"] for c in configs]
    assert any(o.get("staircase") for o in options) and any(o.get("cycle") for o in options)
    assert any(o.get("warmup_target") is not None and o["initial_learning_rate"] == 0 for o in options)
    assert any(o.get("t_mul", 2.0) != 2.0 for o in options) and str(FIXTURE["keras_version"]) == "3.15.1"


# Keras 3.15's defaults: built from the required arguments only, the config equals Keras' for the same call.
DEFAULTS = [
    ("exponential", ExponentialDecay, {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5}),
    ("inverse_time", InverseTimeDecay, {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}),
    ("piecewise", PiecewiseConstantDecay, {"boundaries": [5, 10, 20], "values": [0.1, 0.05, 0.01, 0.001]}),
    ("polynomial_defaults", PolynomialDecay, {"initial_learning_rate": 0.1, "decay_steps": 10}),
    ("cosine", CosineDecay, {"initial_learning_rate": 0.1, "decay_steps": 20}),
    ("restarts_defaults", CosineDecayRestarts, {"initial_learning_rate": 0.1, "first_decay_steps": 5}),
]


@pytest.mark.parametrize(("case", "cls", "required"), DEFAULTS)
def test_defaults_and_config_keys_are_keras(case, cls, required):
    assert cls(**required).get_config() == keras_schedule(case)["config"]


def test_a_keras_schedule_object_becomes_ours():
    # A stand-in for keras.optimizers.schedules.CosineDecay (the tests never import Keras): its class name,
    # module and get_config are what onnxtrain reads.
    config = keras_schedule("cosine_warmup")["config"]
    stand_in = type("CosineDecay", (), {"__module__": "keras.src.optimizers.schedules", "get_config": lambda s: config})
    optimizer = Adam(learning_rate=stand_in())
    assert optimizer.learning_rate == CosineDecay(**config)


# --- the optimizer's learning_rate ------------------------------------------------------------------------------
def test_an_optimizer_holds_the_schedule_and_starts_at_its_step_zero_rate():
    schedule = ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)
    optimizer = Adam(learning_rate=schedule)
    assert optimizer.learning_rate is schedule and float(schedule) == 1e-3
    with tiny_model(optimizer) as model:
        assert model.learning_rate == pytest.approx(1e-3, rel=1e-7)
        x, y = tiny_data()
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        assert optimizer.learning_rate is schedule  # fit sets the engine's rate, never the optimizer's


@pytest.mark.parametrize(
    "schedule",
    [
        ExponentialDecay(0.1, 3, 0.5, staircase=True),
        PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
        PolynomialDecay(0.1, 4, end_learning_rate=0.01, power=2.0, cycle=True),
        InverseTimeDecay(0.1, 2, 0.5),
        CosineDecay(0.0, 6, alpha=0.1, warmup_target=0.1, warmup_steps=3),
        CosineDecayRestarts(0.1, 3, t_mul=1.5, m_mul=0.8, alpha=0.05),
    ],
    ids=lambda s: type(s).__name__,
)
def test_config_round_trip(schedule):
    optimizer = SGD(learning_rate=schedule, clip_norm=1.0)
    config = optimizer.get_config()
    assert config["learning_rate"] == {"class_name": type(schedule).__name__, "config": schedule.get_config()}
    rebuilt = optimizers.get(json.loads(json.dumps(config)))
    assert rebuilt == optimizer and rebuilt.learning_rate is not schedule
    assert [rebuilt.learning_rate(step) for step in range(12)] == [schedule(step) for step in range(12)]


def test_a_schedule_can_be_assigned_and_replaced_by_a_number():
    optimizer = Adam()
    optimizer.learning_rate = keras_schedule("exponential")  # a config dict, Keras' serialized form too
    assert isinstance(optimizer.learning_rate, ExponentialDecay)
    optimizer.learning_rate = np.float32(0.5)
    assert optimizer.learning_rate == 0.5 and optimizer.get_config()["learning_rate"] == 0.5


class RecordRates(Callback):
    """The rate of each update: `model.learning_rate` before it (Keras' `optimizer.learning_rate`, the schedule at
    the updates so far) and after it (the next update's), and the rate the engine held for it."""

    def __init__(self):
        self.before: list[float] = []
        self.after: list[float] = []
        self.rates: list[float] = []
        self.steps: list[int] = []

    def on_batch_begin(self, batch, logs=None):
        self.before.append(self.model.learning_rate)

    def on_batch_end(self, batch, logs=None):
        self.after.append(self.model.learning_rate)
        self.rates.append(self.model._trainer.engine.learning_rate)
        self.steps.append(self.optimizer_steps - 1)  # the updates before this one: Keras' iterations


@pytest.mark.parametrize("engine", ENGINES)
def test_each_update_uses_the_schedule_at_the_updates_before_it_across_fit_calls(engine):
    schedule = PiecewiseConstantDecay([1, 4, 9], [0.1, 0.05, 0.02, 0.01])
    x, y = tiny_data()  # 4 batches of 8
    with tiny_model("sgd") as model:
        model.compile(optimizer=SGD(learning_rate=schedule), loss="softmax_cross_entropy_with_logits", engine=engine)
        first, second = RecordRates(), RecordRates()
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[first])
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[second])
    assert first.steps == list(range(8)) and second.steps == list(range(8, 12))
    expected = [schedule(step) for step in range(13)]
    assert first.rates + second.rates == pytest.approx(expected[:12], rel=1e-7)
    assert first.before + second.before == pytest.approx(expected[:12], rel=1e-7)
    assert first.after + second.after == pytest.approx(expected[1:], rel=1e-7)  # as Keras: the next update's
    assert expected[:3] == [0.1, 0.1, 0.05]  # step 0 and boundary 1 itself: values[0]


def test_the_rate_applied_is_the_schedules_in_a_numpy_sgd():
    # SGD's update w -= lr * g: two fits of one step each with lr(0) and lr(1) equal one numpy step each.
    schedule = ExponentialDecay(0.5, decay_steps=1, decay_rate=0.1)
    x, y = tiny_data(8)
    with tiny_model(SGD(learning_rate=schedule)) as fixed, tiny_model(SGD(learning_rate=0.5)) as reference:
        for step in range(2):
            reference.learning_rate = schedule(step)
            fixed.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
            reference.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
            for name, value in reference.get_weights().items():
                np.testing.assert_allclose(fixed.get_weights()[name], value, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_count_follows_the_optimizer_state_through_save_and_load(tmp_path, engine):
    schedule = InverseTimeDecay(0.1, decay_steps=1, decay_rate=1.0)
    x, y = tiny_data()
    with tiny_model() as model:
        model.compile(optimizer=Adam(learning_rate=schedule), loss="softmax_cross_entropy_with_logits", engine=engine)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        model.save(tmp_path / "with_state", save_optimizer_state=True)
        model.save(tmp_path / "weights_only")
    # The portable engine restores the optimizer's step with its state; ort-training's optimizer restarts at 0.
    resumed = [4, 5, 6, 7] if engine == "portable" else [0, 1, 2, 3]
    for saved, steps in [("with_state", resumed), ("weights_only", [0, 1, 2, 3])]:
        record = RecordRates()
        with load_model(tmp_path / saved) as loaded:
            assert loaded._trainer.compiled.optimizer.learning_rate == schedule  # rebuilt from the config
            loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[record])
        assert record.steps == steps, saved
        assert record.rates == pytest.approx([schedule(step) for step in steps], rel=1e-7), saved


def test_a_model_whose_schedule_came_down_to_zero_saves_and_loads(tmp_path):
    # Keras' CosineDecay with alpha=0 is 0 from decay_steps on: the updates change nothing, as in Keras.
    x, y = tiny_data()
    with tiny_model(Adam(learning_rate=CosineDecay(0.01, decay_steps=2))) as model:
        record = RecordRates()
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[record])
        weights = model.get_weights()
        model.save(tmp_path / "m", save_optimizer_state=True)
    assert record.rates[2:] == [0.0, 0.0]
    with load_model(tmp_path / "m") as loaded:
        assert loaded.learning_rate == 0.0
        loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
        for name, value in weights.items():
            np.testing.assert_array_equal(loaded.get_weights()[name], value)


def test_a_warmup_from_zero_trains():
    x, y = tiny_data()
    with tiny_model(Adam(learning_rate=CosineDecay(0.0, 10, warmup_target=0.01, warmup_steps=2))) as model:
        record = RecordRates()
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[record])
    assert record.rates[:3] == pytest.approx([0.0, 0.005, 0.01]) and math.isfinite(history.history["loss"][0])
    assert "learning_rate" not in history.history  # as Keras: only a callback that sets the rate logs it


# --- a schedule of one's own ------------------------------------------------------------------------------------
@schedules.register
class HalveEvery(LearningRateSchedule):
    """The extension guide: a rate halved every `every` updates, saved by its registered class name."""

    def __init__(self, rate: float, every: int):
        self.rate, self.every = rate, every

    def __call__(self, step: int) -> float:
        return self.rate * 0.5 ** (step // self.every)

    def get_config(self) -> dict:
        return {"rate": self.rate, "every": self.every}


class NotRegistered(LearningRateSchedule):
    def __call__(self, step: int) -> float:
        return 0.01

    def get_config(self) -> dict:
        return {}


def test_a_registered_schedule_of_ones_own_trains_saves_and_loads(tmp_path):
    x, y = tiny_data()
    with tiny_model(Adam(learning_rate=HalveEvery(0.04, every=2))) as model:
        record = RecordRates()
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[record])
        model.save(tmp_path / "m", save_optimizer_state=True)
    assert record.rates == pytest.approx([0.04, 0.04, 0.02, 0.02])
    with load_model(tmp_path / "m") as loaded:
        assert loaded._trainer.compiled.optimizer.learning_rate == HalveEvery(0.04, every=2)
        record = RecordRates()
        loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[record])
    assert record.rates == pytest.approx([0.01, 0.01, 0.005, 0.005])


def test_a_schedule_that_is_not_registered_trains_but_is_refused_at_save(tmp_path):
    x, y = tiny_data()
    with tiny_model(Adam(learning_rate=NotRegistered())) as model:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        with pytest.raises(InvalidArgumentError, match=r"NotRegistered cannot be saved.*schedules\.register"):
            model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_register_refuses_what_is_not_a_schedule_and_keras_names():
    with pytest.raises(InvalidTypeError, match="expects a LearningRateSchedule subclass"):
        schedules.register(dict)  # type: ignore[type-var]
    with pytest.raises(InvalidArgumentError, match="'CosineDecay' is the name of a built-in learning-rate schedule"):
        schedules.register(type("CosineDecay", (LearningRateSchedule,), {}))


def test_an_unknown_schedule_name_is_refused_with_the_valid_ones():
    with pytest.raises(UnknownIdentifierError, match=r"'Warmup'. Valid names: \['CosineDecay', .*register"):
        optimizers.get({"name": "adam", "learning_rate": {"class_name": "Warmup", "config": {}}})


# --- refusals -----------------------------------------------------------------------------------------------------
class Broken(LearningRateSchedule):
    def __init__(self, value: float, at: int):
        self.value, self.at = value, at

    def __call__(self, step: int) -> float:
        return self.value if step == self.at else 0.01

    def __repr__(self) -> str:
        return f"Broken(at={self.at})"


@pytest.mark.parametrize("value", [-0.01, float("nan"), float("inf"), "0.1", None])
def test_a_bad_rate_is_refused_at_its_step_naming_the_schedule_step_and_value(value):
    x, y = tiny_data()
    with tiny_model(Adam(learning_rate=Broken(value, at=5))) as model:
        with pytest.raises(InvalidArgumentError, match=rf"schedule Broken\(at=5\) returned {value!r} at step 5"):
            model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        assert model._trainer.steps_trained == 5  # the updates before it were made


def test_a_growing_exponential_decay_that_overflows_is_refused():
    with pytest.raises(InvalidArgumentError, match=r"returned inf at step 100000"):
        schedules.rate_at(ExponentialDecay(0.1, decay_steps=1, decay_rate=2.0), 100_000)


@pytest.mark.parametrize("callback", [LearningRateScheduler(lambda epoch: 0.1), ReduceLROnPlateau(monitor="loss")])
def test_a_callback_that_sets_the_rate_is_refused_beside_a_schedule(callback):
    # Keras: the callback's first change raises TypeError ("... its learning rate is not settable").
    x, y = tiny_data()
    with tiny_model(Adam(learning_rate=ExponentialDecay(0.01, 10, 0.5))) as model:
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=rf"{type(callback).__name__} sets the learning rate.*one of"):
            model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
        assert model._trainer.steps_trained == 0
        for name, value in before.items():
            np.testing.assert_array_equal(model.get_weights()[name], value)


BAD_ARGUMENTS = [
    (
        lambda: ExponentialDecay(0.1, 0, 0.5),
        InvalidArgumentError,
        r"decay_steps=...\) expects .* > 0. Received: decay_steps=0",
    ),
    (
        lambda: ExponentialDecay(-0.1, 10, 0.5),
        InvalidArgumentError,
        r"expects a finite number >= 0. Received: initial_learning_rate=-0.1",
    ),
    (
        lambda: ExponentialDecay(0.1, 10, 0.0),
        InvalidArgumentError,
        r"ExponentialDecay\(decay_rate=...\) .* Received: decay_rate=0.0",
    ),
    (
        lambda: ExponentialDecay(0.1, 10, 0.5, staircase=1),
        InvalidArgumentError,
        r"staircase=...\) expects a bool. Received: staircase=1",
    ),
    (lambda: InverseTimeDecay(0.1, math.inf, 0.5), InvalidArgumentError, r"Received: decay_steps=inf"),
    (
        lambda: PiecewiseConstantDecay([1, 2], [0.1, 0.2]),
        InvalidArgumentError,
        r"one boundary fewer than values.*length 2.*length 2",
    ),
    (lambda: PiecewiseConstantDecay([], [0.1]), InvalidArgumentError, r"at least one"),
    (
        lambda: PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3]),
        InvalidArgumentError,
        r"increasing steps. Received: \[5, 2\]",
    ),
    (lambda: PiecewiseConstantDecay([5], [0.1, -0.2]), InvalidArgumentError, r"values=...\) .* Received: values=-0.2"),
    (lambda: PiecewiseConstantDecay(5, [0.1, 0.2]), InvalidTypeError, r"boundaries=...\) expects a list of numbers"),
    (
        lambda: PolynomialDecay(0.1, 10, power=0),
        InvalidArgumentError,
        r"power=...\) expects a finite number > 0. Received: power=0",
    ),
    (lambda: PolynomialDecay(0.1, 10, cycle="no"), InvalidArgumentError, r"Received: cycle='no'"),
    (lambda: CosineDecay(0.1, 10, alpha=float("nan")), InvalidArgumentError, r"Received: alpha=nan"),
    (
        lambda: CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=-1),
        InvalidArgumentError,
        r"Received: warmup_steps=-1",
    ),
    (lambda: CosineDecay(0.1, 10, name=3), InvalidTypeError, r"name=...\) expects a string. Received: name=3"),
    (lambda: CosineDecayRestarts(0.1, 0), InvalidArgumentError, r"Received: first_decay_steps=0"),
    (lambda: CosineDecayRestarts(0.1, 5, t_mul=0), InvalidArgumentError, r"Received: t_mul=0"),
    (
        lambda: Adam(learning_rate=lambda step: 0.1),
        InvalidArgumentError,
        r"expects a finite number in \[0, 3\.40282e\+38\] \(float32's range\) or a learning-rate schedule",
    ),
    (lambda: Adam(learning_rate={"class_name": 3}), InvalidArgumentError, r"expects \{'class_name': ..., 'config'"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_name_the_value_and_what_was_expected(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_the_learning_rate_of_a_model_whose_optimizer_has_a_schedule_cannot_be_set():
    """As Keras: the schedule sets the rate before each step, so an assigned rate would be overwritten silently."""
    with tiny_model() as model:
        model.compile(optimizer=Adam(schedules.ExponentialDecay(0.01, 10, 0.5)), loss="mse")
        assert model.learning_rate == pytest.approx(0.01)
        with pytest.raises(InvalidArgumentError, match=r"is the schedule ExponentialDecay.*Received: 0\.1"):
            model.learning_rate = 0.1
