"""LearningRateScheduler and ReduceLROnPlateau: Keras 3's rules on scripted figures, the rate in the logs, History and
CSV, and the per-step count that carries on across fit calls as the optimizer's does.

Expected values come from Keras 3.15.1 (JAX backend) running its own callbacks: on a stand-in model for the scripted
tables (keras_callbacks_ref.py, "rlr"), in a real fit for the rest (keras_fit_ref.py). Keras
keeps the rate in float32, so its numbers are compared to a float32's precision.
"""

from __future__ import annotations

import math

import pytest

from onnxtrain import History, load_model
from onnxtrain.callbacks import (
    Callback,
    CSVLogger,
    LambdaCallback,
    LearningRateScheduler,
    ReduceLROnPlateau,
)
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.optimizers import SGD
from tests.test_callbacks import ScriptFigure, run_scripted, tiny_data, tiny_model

F32 = 1e-7  # relative: Keras' rate is a float32 variable


# --- ReduceLROnPlateau on scripted figures ------------------------------------------------------------------
# (logged: each epoch's `learning_rate`, the rate it trained with; final: the rate after the last epoch), the model
# starting at 0.1.
@pytest.mark.parametrize(
    ("kwargs", "values", "logged", "final"),
    [
        (  # two epochs without improvement, twice
            {"factor": 0.5, "patience": 2},
            [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.9, 0.91],
            [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025],
            0.025,
        ),
        (  # after a reduction, `cooldown` epochs count as neither better nor worse
            {"factor": 0.5, "patience": 1, "cooldown": 2},
            [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 0.5, 0.6],
            [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125],
            0.00625,
        ),
        (  # never below min_lr, and no further reduction once there
            {"factor": 0.2, "patience": 1, "min_lr": 0.01},
            [1.0, 1.1, 1.2, 1.3, 1.4],
            [0.1, 0.1, 0.02, 0.01, 0.01],
            0.01,
        ),
        (  # improvements of 0.05 or less do not count
            {"factor": 0.5, "patience": 1, "min_delta": 0.05},
            [1.0, 0.97, 0.9, 0.88, 0.87],
            [0.1, 0.1, 0.05, 0.05, 0.025],
            0.0125,
        ),
        (  # auto mode: accuracy grows
            {"factor": 0.5, "patience": 1, "monitor": "val_accuracy"},
            [0.5, 0.4, 0.6, 0.6],
            [0.1, 0.1, 0.05, 0.05],
            0.025,
        ),
        ({"factor": 0.5, "patience": 0}, [1.0, 1.1, 0.9, 0.95], [0.1, 0.1, 0.05, 0.05], 0.025),  # as patience 1
        ({}, [1.0] * 12 + [0.5], [0.1] * 11 + [0.01, 0.01], 0.01),  # Keras' defaults: factor 0.1, patience 10
        ({"factor": 0.5, "patience": 1}, [math.nan, 1.0, 0.5], [0.1, 0.1, 0.05], 0.025),  # nothing beats a first NaN
    ],
)
def test_reduce_lr_on_plateau_follows_keras_rules(kwargs, values, logged, final):
    callback = ReduceLROnPlateau(**kwargs)
    logs: list[dict[str, float]] = []
    model, _ = run_scripted(callback, kwargs.get("monitor", "val_loss"), values, logs)
    assert [epoch["learning_rate"] for epoch in logs] == pytest.approx(logged, rel=F32)
    assert model.learning_rate == pytest.approx(final, rel=F32)
    assert not model.stop_training


def test_reduce_lr_on_plateau_starts_afresh_in_each_fit():
    callback = ReduceLROnPlateau(factor=0.5, patience=2)
    run_scripted(callback, "val_loss", [0.1, 0.2])  # one epoch short of a reduction
    model, _ = run_scripted(callback, "val_loss", [0.5, 0.6])  # 0.5 is the new best, not worse than 0.1
    assert model.learning_rate == 0.1 and (callback.best, callback.wait) == (0.5, 1)


def test_reduce_lr_on_plateau_prints_one_based_epochs(capsys):
    run_scripted(ReduceLROnPlateau(factor=0.5, patience=1, verbose=1), "val_loss", [1.0, 1.1])
    # Keras: "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05000000074505806." (index 1, plus one)
    assert capsys.readouterr().out == "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05.\n"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factor": 1.0}, r"ReduceLROnPlateau\(factor=...\) expects a number between 0 and 1 .* Received: factor=1.0"),
        ({"factor": 0}, r"Received: factor=0"),
        ({"factor": "0.5"}, r"Received: factor='0.5'"),
        ({"patience": -1}, r"ReduceLROnPlateau\(patience=...\) expects an int >= 0. Received: patience=-1"),
        ({"cooldown": 1.5}, r"ReduceLROnPlateau\(cooldown=...\) expects an int >= 0. Received: cooldown=1.5"),
        ({"min_lr": -1e-3}, r"ReduceLROnPlateau\(min_lr=...\) expects a finite number >= 0. Received: min_lr=-0.001"),
        ({"min_delta": -1}, r"ReduceLROnPlateau\(min_delta=...\) expects a finite number >= 0"),
        ({"mode": "down"}, r"ReduceLROnPlateau\(mode=...\) expects 'auto', 'min' or 'max'"),
        ({"verbose": "1"}, r"ReduceLROnPlateau\(verbose=...\) expects an int >= 0 or a bool"),
    ],
)
def test_reduce_lr_on_plateau_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        ReduceLROnPlateau(**kwargs)


def test_reduce_lr_on_plateau_names_the_missing_figure():
    x, y = tiny_data()
    with tiny_model() as model, pytest.raises(InvalidArgumentError, match=r"ReduceLROnPlateau\(monitor='val_loss'\)"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ReduceLROnPlateau()])


# --- the rate in a real fit: optimizer, History, CSVLogger ---------------------------------------------------
def test_reduce_lr_on_plateau_in_fit_reaches_the_optimizer_history_and_csv(tmp_path):
    # Keras ("rlr"): History keys [..., 'scripted', 'learning_rate'] (the first epoch's sorted, then those the
    # callbacks added: tests/data/keras/keras_key_order.json), learning_rate [0.1]*4 + [0.05]*2, final 0.05; a
    # CSVLogger after the callback has a learning_rate column, among the others, sorted, and (the first epoch
    # having no val_ figure) a val_ column for each, which this fit without validation leaves nan: History.from_csv
    # leaves those out.
    x, y = tiny_data()
    path = tmp_path / "log.csv"
    scripted = ScriptFigure("scripted", [1.0, 0.9, 0.95, 0.96, 0.97, 0.5])
    with tiny_model(optimizer=SGD(learning_rate=0.1)) as model:
        history = model.fit(
            x, y, epochs=6, batch_size=8, verbose=0,
            callbacks=[
                scripted,
                ReduceLROnPlateau(monitor="scripted", factor=0.5, patience=2, mode="min"),
                CSVLogger(path),
            ],
        )  # fmt: skip
        final = model.learning_rate
    assert list(history.history) == ["accuracy", "loss", "scripted", "learning_rate"]
    assert history.history["learning_rate"] == pytest.approx([0.1] * 4 + [0.05] * 2, rel=F32)
    assert final == pytest.approx(0.05, rel=F32)
    header = "epoch,accuracy,learning_rate,loss,scripted,val_accuracy,val_learning_rate,val_loss,val_scripted"
    assert path.read_text().splitlines()[0] == header
    assert all(row.endswith(",nan,nan,nan,nan") for row in path.read_text().splitlines()[1:])
    assert History.from_csv(path) == history
    assert History.from_csv(history.to_csv(tmp_path / "history.csv")) == history


def test_scheduler_adds_the_rate_to_the_logs_after_a_csv_logger_has_fixed_its_columns(tmp_path):
    # Keras ("lrs"): schedule(e, lr) = 0.1 / (e + 1) on 0-based epochs logs learning_rate [0.1, 0.05, 0.0333];
    # a CSVLogger placed before the scheduler fixed its columns without it.
    x, y = tiny_data()
    path = tmp_path / "log.csv"
    with tiny_model() as model:
        history = model.fit(
            x, y, epochs=3, batch_size=8, verbose=0,
            callbacks=[CSVLogger(path), LearningRateScheduler(lambda epoch, lr: 0.1 / epoch)],
        )  # fmt: skip
        appended = model.fit(
            x, y, epochs=1, batch_size=8, verbose=0,
            callbacks=[LearningRateScheduler(lambda epoch: 0.01), CSVLogger(path, append=True)],
        )  # fmt: skip
    assert list(history.history) == ["accuracy", "loss", "learning_rate"]
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3], rel=F32)
    assert appended.history["learning_rate"] == [0.01]
    # appending keeps the file's columns: Keras' (no learning_rate), with a val_ one for each, all nan here
    assert path.read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    logged = History.from_csv(path)  # which leaves out the val_ columns that hold no value
    assert list(logged.history) == ["accuracy", "loss"] and logged.epochs == [1, 2, 3, 4]
    assert logged.history["loss"] == history.history["loss"] + appended.history["loss"]


def test_train_end_gets_the_last_epochs_logs_without_the_rate_the_scheduler_added():
    # Keras 3: on_train_end gets the last epoch's logs as fit built them, sorted; the learning_rate a callback adds
    # at an epoch's end is the History's alone (tests/data/keras/keras_key_order.json, "callbacks_add_keys")
    ends: list[dict] = []
    x, y = tiny_data()
    with tiny_model() as model:
        history = model.fit(
            x, y, epochs=2, batch_size=8, verbose=0,
            callbacks=[LearningRateScheduler(lambda epoch: 0.1 / epoch), LambdaCallback(on_train_end=ends.append)],
        )  # fmt: skip
    assert len(ends) == 1 and "learning_rate" not in ends[0]
    assert list(ends[0]) == ["accuracy", "loss"]
    last = history.last()
    assert last["learning_rate"] == pytest.approx(0.05, rel=F32)
    assert ends[0] == {key: last[key] for key in ("accuracy", "loss")}


# --- per-step schedules count the optimizer's steps ------------------------------------------------------------
class RecordSteps(Callback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(self.optimizer_steps)


def test_per_step_schedule_counts_on_across_fit_calls():
    # Keras: optimizer.iterations read before each step is 0..7 over fit(epochs=2) of 4 steps, then 8..11 in the
    # next fit, whatever callback reads it. The per-step schedule gets that count plus one.
    x, y = tiny_data()  # 4 batches of 8
    steps: list[int] = []
    first, second = RecordSteps(), RecordSteps()
    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[first])
        model.fit(
            x, y, epochs=1, batch_size=8, verbose=0,
            callbacks=[LearningRateScheduler(lambda step: steps.append(step) or 0.01 * step, per_step=True), second],
        )  # fmt: skip
        rate = model.learning_rate
    assert first.seen == list(range(8)) and second.seen == list(range(8, 12))
    assert steps == [9, 10, 11, 12] and rate == pytest.approx(0.12)


def test_per_step_count_follows_the_optimizer_state_through_save_load_and_compile(tmp_path):
    x, y = tiny_data()
    with tiny_model() as model:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        model.save(tmp_path / "with_state", save_optimizer_state=True)
        model.save(tmp_path / "weights_only")
    for saved, expected in [("with_state", [4, 5, 6, 7]), ("weights_only", [0, 1, 2, 3])]:
        record = RecordSteps()
        with load_model(tmp_path / saved) as loaded:
            loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[record])
            assert record.seen == expected, saved
            if saved == "with_state":  # a new optimizer, as in Keras: its iterations start at 0
                loaded.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits")
                again = RecordSteps()
                loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[again])
                assert again.seen == [0, 1, 2, 3]


def test_optimizer_steps_is_zero_outside_fit():
    assert Callback().optimizer_steps == 0
