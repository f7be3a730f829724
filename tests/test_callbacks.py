"""Callbacks: scripted figures drive EarlyStopping, ModelCheckpoint, TimeStopping; real fits check wiring."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pytest

from onnxtrain import History, Metrics, Model, Sequential, load_model
from onnxtrain.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    EarlyStoppingMode,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
    TimeStopping,
)
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelStateError, NonFiniteLossError
from onnxtrain.layers import Dense, Input
from onnxtrain.metrics import SparseTopKCategoricalAccuracy
from onnxtrain.optimizers import SGD


class FakeModel:
    """Stands in for Sequential: weights are {"w": [epoch of the last epoch_end]}."""

    def __init__(self, learning_rate: float = 0.1) -> None:
        self.stop_training = False
        self.epoch = 0
        self.restored: dict[str, np.ndarray] | None = None
        self.learning_rate = learning_rate

    def get_weights(self) -> dict[str, np.ndarray]:
        return {"w": np.array([self.epoch], dtype=np.float32)}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.restored = weights


# What fit tells the callbacks of the figures these tests script (`Callback.check_fit_start`): which way each
# improves, as a compiled accuracy metric says ("up"); a loss shrinks whatever its name.
SCRIPTED_DIRECTIONS = {
    "loss": "down",
    "val_loss": "down",
    "val_accuracy": "up",
    "val_kind_accuracy": "up",
    "kind_acc": "up",
}


def run_scripted(
    callback: Callback, key: str, values: Iterable[float], logged: list[dict[str, float]] | None = None
) -> tuple[FakeModel, int]:
    """What fit does with callbacks, `key` scripted per epoch. Returns the model and the last epoch run; each
    epoch's logs, as the callback left them, go to `logged`."""
    model = FakeModel()
    callback.set_model(model)  # type: ignore[arg-type]
    callback.check_fit_start(SCRIPTED_DIRECTIONS)
    callback.on_train_begin({})
    epoch = 0
    for epoch, value in enumerate(values, start=1):
        callback.on_epoch_begin(epoch, {})
        model.epoch = epoch
        logs = {"loss": 1.0, key: value}
        callback.on_epoch_end(epoch, logs)
        if logged is not None:
            logged.append(logs)
        if model.stop_training:
            break
    callback.on_train_end({})
    return model, epoch


def tiny_model(optimizer="adam", loss="softmax_cross_entropy_with_logits") -> Sequential:
    units = 1 if loss == "mse" else 3
    model = Sequential.of(Input(4), Dense(8), Dense(units, activation="linear"), seed=0)
    model.compile(optimizer=optimizer, loss=loss, metric="accuracy" if units == 3 else None)
    return model


def tiny_data(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


class ScriptFigure(Callback):
    """Adds a scripted figure to each epoch's logs (placed before the callback under test)."""

    def __init__(self, key: str, values: list[float]):
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch - 1]  # type: ignore[index]


class RecordWeights(Callback):
    def __init__(self) -> None:
        self.weights: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = self.model.get_weights()


# --- EarlyStopping --------------------------------------------------------------------------------------
FALLING = [1.0 - 0.05 * i for i in range(12)]  # 1.0 down to 0.45: improves every epoch, never below 0.2
RISING = [0.5 + 0.1 * i for i in range(12)]


# (stopped_epoch, best_epoch, epochs run, epoch whose weights are restored) from Keras 3.15.1's own EarlyStopping
# driven by the same figures on a stand-in model (keras_callbacks_ref.py, "es"), its 0-based epochs
# plus one. "restored" None: nothing restored.
@pytest.mark.parametrize(
    ("kwargs", "values", "stopped", "best", "ran", "restored"),
    [
        ({"patience": 2}, [1.0, 0.8, 0.9, 0.85, 0.7], 4, 2, 4, None),  # two epochs without improvement after 2
        ({"patience": 0}, [1.0, 0.8, 0.9, 0.7], 3, 2, 3, None),
        ({"patience": 1}, [1.0, 0.8, 0.9, 0.7], 3, 2, 3, None),  # patience 0 and 1 both stop at the first
        ({"patience": 1}, [1.0, 0.9, 0.8, 0.7], 0, 4, 4, None),  # always improving: never stops
        ({"patience": 1, "min_delta": 0.15}, [1.0, 0.9, 0.8, 0.7], 2, 1, 2, None),  # 0.1 steps are not enough
        ({"monitor": "val_accuracy", "patience": 1}, [0.5, 0.7, 0.6, 0.9], 3, 2, 3, None),  # auto: max
        ({"monitor": "val_kind_accuracy", "patience": 1}, [0.5, 0.7, 0.6, 0.9], 3, 2, 3, None),  # an output's too
        ({"monitor": "kind_acc", "patience": 1}, [0.5, 0.7, 0.6, 0.9], 3, 2, 3, None),
        ({"monitor": "val_kind_loss", "patience": 1}, [1.0, 0.8, 0.9, 0.7], 3, 2, 3, None),  # an output's loss: min
        ({"mode": "max", "patience": 1}, [0.5, 0.7, 0.6], 3, 2, 3, None),
        ({"patience": 1}, [1.0, math.nan, 0.5], 2, 1, 2, None),  # NaN does not improve
        # A first NaN is the best so far, and then nothing improves on it: stops after patience, restores epoch 1.
        ({"patience": 1, "restore_best_weights": True}, [math.nan, 1.0, 0.5], 2, 1, 2, 1),
        # baseline: the best is tracked from epoch 1; the wait restarts only when both it and the baseline are beaten
        ({"patience": 1, "baseline": 0.5}, [0.9, 0.6, 0.4], 0, 3, 3, None),
        ({"patience": 3, "baseline": 0.2, "restore_best_weights": True}, FALLING, 0, 12, 12, 12),  # tester's case
        ({"patience": 0, "baseline": 0.2}, FALLING, 0, 12, 12, None),  # the tester's: Keras trains all 12
        ({"patience": 2, "baseline": 0.5, "restore_best_weights": True}, [0.9, 0.8, 0.85, 0.7], 3, 2, 3, 2),
        ({"patience": 2, "baseline": 0.5}, [0.6, 0.4, 0.45, 0.3, 0.35, 0.36, 0.2], 6, 4, 6, None),
        ({"patience": 1, "baseline": 0.5, "min_delta": 0.1}, [0.45, 0.3, 0.25, 0.1], 3, 2, 3, None),
        ({"patience": 1, "baseline": 0.8, "mode": "max"}, [0.5, 0.85, 0.7, 0.9], 3, 2, 3, None),
        # restore_best_weights restores whether or not training stopped early
        ({"patience": 2, "restore_best_weights": True}, RISING, 3, 1, 3, 1),
        ({"patience": 3, "baseline": 0.2, "restore_best_weights": True}, RISING, 3, 1, 3, 1),  # baseline never beaten
        ({"patience": 5, "restore_best_weights": True}, [1.0, 0.5, 0.6], 0, 2, 3, 2),
        # start_from_epoch: epochs up to it are not watched; the first watched is the best so far
        ({"patience": 1, "start_from_epoch": 2, "restore_best_weights": True}, [1, 2, 3, 2.5, 2.8, 2.9], 5, 4, 5, 4),
        ({"patience": 0, "start_from_epoch": 5, "restore_best_weights": True}, [1.0, 2.0, 3.0], 0, 0, 3, None),
    ],
)
def test_early_stopping_follows_keras_rules(kwargs, values, stopped, best, ran, restored):
    key = kwargs.get("monitor", "val_loss")
    callback = EarlyStopping(**kwargs)
    model, last = run_scripted(callback, key, values)
    assert (callback.stopped_epoch, callback.best_epoch, last) == (stopped, best, ran)
    assert model.stop_training == bool(stopped)
    assert (None if model.restored is None else int(model.restored["w"][0])) == restored


def test_early_stopping_keeps_the_first_watched_value_as_best():
    callback = EarlyStopping(patience=1, baseline=0.5)
    run_scripted(callback, "val_loss", [0.9])
    assert (callback.best, callback.best_epoch, callback.wait) == (0.9, 1, 1)  # best, though not below 0.5
    assert EarlyStopping().best is None


def test_early_stopping_restores_the_best_epochs_weights():
    callback = EarlyStopping(patience=2, restore_best_weights=True)
    model, _ = run_scripted(callback, "val_loss", [1.0, 0.5, 0.6, 0.7, 0.1])
    assert model.restored is not None and model.restored["w"][0] == 2
    assert run_scripted(EarlyStopping(patience=2), "val_loss", [1.0, 0.5, 0.6, 0.7])[0].restored is None


def test_early_stopping_verbose_names_one_based_epochs(capsys):
    run_scripted(EarlyStopping(patience=1, verbose=1, restore_best_weights=True), "val_loss", [1.0, 0.5, 0.6])
    # Keras prints the same lines with its index + 1: "Epoch 3: early stopping", "... best epoch: 2."
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 3: early stopping",
        "Restoring model weights from the end of the best epoch: 2.",
    ]
    run_scripted(EarlyStopping(patience=1, restore_best_weights=True), "val_loss", [1.0, 0.5, 0.6])
    assert capsys.readouterr().out == ""


def test_early_stopping_state_resets_for_each_fit():
    callback = EarlyStopping(patience=0)
    run_scripted(callback, "val_loss", [0.1, 0.2])
    assert run_scripted(callback, "val_loss", [0.5, 0.4])[0].stop_training is False


def test_early_stopping_in_fit_stops_and_restores_real_weights():
    x, y = tiny_data()
    record = RecordWeights()
    stopper = EarlyStopping(monitor="scripted", patience=2, restore_best_weights=True, mode="min")
    with tiny_model() as model:
        history = model.fit(
            x, y, epochs=10, batch_size=8, verbose=0,
            callbacks=[ScriptFigure("scripted", [5, 4, 3, 3.5, 3.2, 1, 1, 1, 1, 1]), record, stopper],
        )  # fmt: skip
        final = model.get_weights()
    assert history.epochs == [1, 2, 3, 4, 5] and stopper.stopped_epoch == 5 and stopper.best_epoch == 3
    assert not np.array_equal(record.weights[3]["dense_1.kernel"], record.weights[5]["dense_1.kernel"])
    for name, value in record.weights[3].items():
        np.testing.assert_array_equal(final[name], value)


def test_early_stopping_in_fit_restores_the_first_epoch_of_a_rising_figure():
    # Keras 3.15.1, the same scripted figure in a real fit (keras_fit_ref.py, "es_rising"): 2 epochs run
    # (epoch 1 counts towards patience, as it does not beat the baseline), stopped_epoch 1 and best_epoch 0
    # (0-based), and the weights after epoch 0 restored at the end, though the baseline was never beaten.
    x, y = tiny_data()
    record = RecordWeights()
    stopper = EarlyStopping(monitor="scripted", patience=2, baseline=0.2, restore_best_weights=True, mode="min")
    with tiny_model() as model:
        history = model.fit(
            x, y, epochs=12, batch_size=8, verbose=0,
            callbacks=[ScriptFigure("scripted", [0.5 + 0.1 * i for i in range(12)]), record, stopper],
        )  # fmt: skip
        final = model.get_weights()
    assert (history.epochs, stopper.stopped_epoch, stopper.best_epoch) == ([1, 2], 2, 1)
    for name, value in record.weights[1].items():
        np.testing.assert_array_equal(final[name], value)


def test_early_stopping_names_the_missing_figure():
    x, y = tiny_data()
    with tiny_model() as model, pytest.raises(InvalidArgumentError, match=r"'val_loss'.*pass validation="):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])


def test_early_stopping_watches_a_metric_by_the_name_compile_was_given():
    # Keras 3 notebooks: metrics=["acc"], EarlyStopping(monitor="val_acc"), which grows (mode "auto": max).
    x, y = tiny_data()
    with Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0) as model:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
        stopper = EarlyStopping(monitor="val_acc", patience=1)
        history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[stopper])
    assert "val_acc" in history.history and stopper.mode == "max"


def test_a_missing_validation_figure_is_named_without_asking_for_the_validation_given():
    x, y = tiny_data()
    with (
        tiny_model() as model,
        pytest.raises(
            InvalidArgumentError,
            match=r"'val_acc'.*hold \['accuracy', 'loss', 'val_accuracy', 'val_loss'\]\. Name one of those: a "
            r"metric is logged under the name compile was given",
        ) as raised,
    ):
        model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[EarlyStopping(monitor="val_acc")])
    assert "validation_split" not in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patience": -1}, r"patience=\.\.\.\) expects an int >= 0"),
        ({"patience": 1.5}, "patience"),
        ({"mode": "up"}, "mode=.*'auto', 'min' or 'max'"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"monitor": ""}, "monitor"),
        ({"start_from_epoch": -1}, r"start_from_epoch=\.\.\.\) expects an int >= 0. Received: start_from_epoch=-1"),
        ({"start_from_epoch": 2.0}, r"start_from_epoch=2\.0"),
        ({"verbose": -1}, r"EarlyStopping\(verbose=\.\.\.\) expects an int >= 0 or a bool. Received: verbose=-1"),
    ],
)
def test_early_stopping_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        EarlyStopping(**kwargs)


SNAKE = r"Python's spelling of KotlinDL's camelCase names is snake_case: "
KOTLINDL_KEYWORDS = [
    (
        EarlyStopping,
        {"minDelta": 0.01, "restoreBestWeights": True},
        r"^EarlyStopping\(\) got unexpected keyword arguments 'minDelta', 'restoreBestWeights'\. "
        + SNAKE
        + r"'minDelta' \(in Python: min_delta\), 'restoreBestWeights' \(in Python: restore_best_weights\)\. It "
        r"takes: monitor, min_delta, patience, verbose, mode, baseline, restore_best_weights, start_from_epoch\. "
        r"Received: minDelta=0\.01, restoreBestWeights=True$",
    ),
    (
        ReduceLROnPlateau,
        {"minLr": 1e-4},
        r"^ReduceLROnPlateau\(\) got unexpected keyword argument 'minLr'\. " + SNAKE + r"'minLr' \(in Python: "
        r"min_lr\)\. It takes: monitor, factor, patience, verbose, mode, min_delta, cooldown, min_lr\. Received: "
        r"minLr=0\.0001$",
    ),
    (ReduceLROnPlateau, {"minDelta": 0.1}, SNAKE + r"'minDelta' \(in Python: min_delta\)\."),
    (
        ModelCheckpoint,
        {"filepath": "checkpoints", "saveBestOnly": True},
        r"^ModelCheckpoint\(\) got unexpected keyword argument 'saveBestOnly'\. " + SNAKE + r"'saveBestOnly' \(in "
        r"Python: save_best_only\)\. It takes: directory, monitor, save_best_only, .*Received: saveBestOnly=True$",
    ),
    (  # a misspelling is no KotlinDL name: refused with what it takes, no spelling
        EarlyStopping,
        {"patienc": 3},
        r"^EarlyStopping\(\) got unexpected keyword argument 'patienc'\. It takes: monitor, min_delta, patience, ",
    ),
]


@pytest.mark.parametrize(
    ("callback", "kwargs", "match"), KOTLINDL_KEYWORDS, ids=[str(list(row[1])) for row in KOTLINDL_KEYWORDS]
)
def test_kotlindl_keywords_of_the_monitoring_callbacks_name_pythons_spelling(callback, kwargs, match):
    with pytest.raises(InvalidTypeError, match=match):
        callback(**kwargs)


# --- TerminateOnNaN -------------------------------------------------------------------------------------
def diverging_fit(callbacks):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32) * 100
    y = rng.normal(size=(64, 1)).astype(np.float32) * 1e6
    model = tiny_model(optimizer=SGD(learning_rate=10.0), loss="mse")
    with model:
        try:
            return model.fit(x, y, epochs=20, batch_size=8, verbose=0, shuffle=False, callbacks=callbacks), model
        finally:
            weights = model.get_weights()
            assert all(np.isfinite(w).all() for w in weights.values())  # the last finite step's weights


def test_non_finite_loss_raises_without_terminate_on_nan():
    with pytest.raises(NonFiniteLossError, match=r"at epoch \d+, batch \d+/8"):
        diverging_fit([])


def test_terminate_on_nan_stops_gracefully_and_returns_the_history():
    terminate, record = TerminateOnNaN(), RecordWeights()
    history, _ = diverging_fit([terminate, record])
    assert terminate.stopped_at is not None
    epoch, batch = terminate.stopped_at
    assert history.epochs[-1] == epoch and len(history) == epoch < 20 and 1 <= batch <= 8
    assert not math.isfinite(history.history["loss"][-1])
    assert all(math.isfinite(v) for v in history.history["loss"][:-1])
    assert epoch in record.weights  # the other callbacks still saw the epoch end


def test_terminate_on_nan_costs_nothing_per_batch():
    assert not TerminateOnNaN().wants_batches
    assert not CallbackList([TerminateOnNaN()], FakeModel()).wants_batches  # type: ignore[arg-type]


# --- ModelCheckpoint ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_model_checkpoint_saves_only_improvements_with_formatted_names(tmp_path):
    x, y = tiny_data()
    record = RecordWeights()
    checkpoint = ModelCheckpoint(
        tmp_path / "ckpt-{epoch:02d}-{scripted:.1f}", monitor="scripted", save_best_only=True, mode="min"
    )
    with tiny_model() as model:
        model.fit(
            x, y, epochs=4, batch_size=8, verbose=0,
            callbacks=[ScriptFigure("scripted", [3.0, 2.0, 2.5, 1.0]), record, checkpoint],
        )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "ckpt-01-3.0", "ckpt-02-2.0", "ckpt-04-1.0",
    ]  # fmt: skip
    assert checkpoint.last_saved == tmp_path / "ckpt-04-1.0"
    with load_model(tmp_path / "ckpt-02-2.0") as loaded:
        for name, value in record.weights[2].items():
            np.testing.assert_array_equal(loaded.get_weights()[name], value)


def test_model_checkpoint_without_fields_replaces_one_directory(tmp_path):
    x, y = tiny_data()
    record = RecordWeights()
    with tiny_model() as model:
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[record, ModelCheckpoint(tmp_path / "last")])
    with load_model(tmp_path / "last") as loaded:
        np.testing.assert_array_equal(loaded.get_weights()["dense_2.kernel"], record.weights[3]["dense_2.kernel"])


def test_model_checkpoint_names_an_unknown_format_field(tmp_path):
    x, y = tiny_data()
    with (
        tiny_model() as model,
        pytest.raises(
            InvalidArgumentError, match=r"ModelCheckpoint\(directory=.*reads 'val_loss'.*hold \['accuracy', 'loss'"
        ),
    ):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "{val_loss:.2f}")])
    assert not list(tmp_path.iterdir())  # refused before the first epoch


@pytest.mark.parametrize("field", ["{loss.x}", "{loss[0]}", "{loss:d}"])
def test_model_checkpoint_names_a_field_its_value_cannot_fill(tmp_path, field):
    # An attribute or an index of a float, a format code of another type: each fails on the value, not the key.
    x, y = tiny_data()
    with (
        tiny_model() as model,
        pytest.raises(InvalidArgumentError, match=r"has a field the epoch logs cannot fill .*available: \['epoch'"),
    ):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / f"ckpt-{field}")])


# --- CSVLogger ------------------------------------------------------------------------------------------
def test_csv_logger_writes_what_history_holds_and_appends_across_fits(tmp_path):
    x, y = tiny_data()
    path = tmp_path / "log.csv"
    with tiny_model() as model:
        first = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
        assert History.from_csv(path).history == first.history
        assert list(History.from_csv(path).history) == list(first.history)  # Keras' CSVLogger sorts its columns
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path, True)])
        assert History.from_csv(path).epochs == [1, 2, 3, 4]
        third = model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[CSVLogger(path)])
    # Keras' CSVLogger: where the first epoch it logs has no val_ figure, a val_ column for each (nan without
    # validation), which History.from_csv leaves out
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss" and lines[1].endswith(",nan,nan")
    replaced = History.from_csv(path)
    assert replaced.epochs == [5] and list(replaced.history) == ["accuracy", "loss"]
    assert replaced == third


def test_csv_logger_refuses_to_append_to_a_foreign_file(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("name,value\n")
    x, y = tiny_data()
    with tiny_model() as model, pytest.raises(InvalidArgumentError, match="does not start with 'epoch'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])


# --- LearningRateScheduler ------------------------------------------------------------------------------
class RecordRate(Callback):
    def __init__(self) -> None:
        self.per_epoch: list[float] = []
        self.per_batch: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(self.model.learning_rate)

    def on_batch_end(self, batch, logs=None):
        self.per_batch.append(self.model.learning_rate)


def test_scheduler_sets_the_rate_per_epoch_from_one_based_epochs():
    x, y = tiny_data()
    calls, record = [], RecordRate()

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return 0.1 / epoch

    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[LearningRateScheduler(schedule), record])
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[LearningRateScheduler(schedule), record])
    assert [c[0] for c in calls] == [1, 2, 3] and calls[0][1] == pytest.approx(1e-3)
    assert record.per_epoch == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_scheduler_per_step_sets_the_rate_before_every_step():
    x, y = tiny_data()  # 4 batches per epoch
    record = RecordRate()
    steps: list[int] = []

    def schedule(step: int, lr: float) -> float:
        steps.append(step)
        return 0.01 * step

    scheduler = LearningRateScheduler(schedule, per_step=True)
    # Its per-step work is at batch begin, which needs no running figures; per epoch it needs no batch call.
    assert scheduler.wants_batch_begin and not scheduler.wants_batches
    assert not LearningRateScheduler(lambda e, lr: lr).wants_batch_begin
    with tiny_model() as model:
        initial = model.learning_rate
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[scheduler, record])
        final = model.learning_rate
    # Set right before each step: the rate read at the end of step k is step k's, and no step 9 is scheduled.
    assert steps == list(range(1, 9))
    assert record.per_batch == pytest.approx([0.01 * k for k in range(1, 9)])
    assert record.per_epoch == pytest.approx([initial, 0.04]) and final == pytest.approx(0.08)


def test_scheduler_rate_reaches_the_optimizer():
    x, y = tiny_data()
    with tiny_model() as model:
        before = model.get_weights()
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 1e-30)])
        after = model.get_weights()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])  # steps of ~1e-30 vanish in float32


@pytest.mark.parametrize("value", [-1.0, math.nan, "0.1", None])
def test_scheduler_rejects_a_bad_rate(value):
    x, y = tiny_data()
    with (
        tiny_model() as model,
        pytest.raises(InvalidArgumentError, match=r"finite number >= 0.*at epoch 1"),
    ):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: value)])


def test_learning_rate_property_checks_state_and_value():
    with tiny_model() as model:
        model.learning_rate = 0.5
        assert model.learning_rate == 0.5
        with pytest.raises(InvalidArgumentError, match="learning_rate expects a finite number >= 0"):
            model.learning_rate = -0.1
    with pytest.raises(ModelStateError, match="compiled"):
        _ = Sequential.of(Input(2), Dense(1)).learning_rate


# --- TimeStopping ---------------------------------------------------------------------------------------
def test_time_stopping_stops_after_the_first_epoch_past_the_limit():
    ticks = iter([0.0, 3.0, 6.0, 9.5, 12.0])  # train begin, then one reading per epoch end
    callback = TimeStopping(seconds=9, clock=lambda: next(ticks))
    model, last = run_scripted(callback, "val_loss", [1.0] * 10)
    assert last == 3 and callback.stopped_epoch == 3 and model.stop_training


def test_time_stopping_in_fit_with_a_generous_limit_does_not_stop():
    x, y = tiny_data()
    callback = TimeStopping(seconds=3600)
    with tiny_model() as model:
        assert len(model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])) == 2
    assert callback.stopped_epoch == 0


# --- the base class and the list ------------------------------------------------------------------------
def test_callback_list_rejects_what_is_not_a_callback():
    with pytest.raises(InvalidTypeError, match=r"callbacks\[1\]"):
        CallbackList([TerminateOnNaN(), "early"], FakeModel())  # type: ignore[list-item,arg-type]


def test_only_callbacks_that_use_on_batch_end_ask_for_batch_figures():
    class Batches(Callback):
        def on_batch_end(self, batch, logs=None):
            pass

    assert Batches().wants_batches and not Callback().wants_batches and not EarlyStopping().wants_batches


def test_a_callback_sees_every_hook_in_order():
    class Trace(Callback):
        def __init__(self):
            self.events = []

        def on_train_begin(self, logs=None):
            self.events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            self.events.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            self.events.append(f"batch {batch} {sorted(logs)}")

        def on_epoch_end(self, epoch, logs=None):
            self.events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            self.events.append(f"train_end {sorted(logs)}")

    x, y = tiny_data(16)
    trace = Trace()
    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation=(x, y), callbacks=trace)
    figures, running = "['accuracy', 'loss', 'val_accuracy', 'val_loss']", "['accuracy', 'loss']"
    assert trace.events == [
        "train_begin",
        "epoch_begin 1", f"batch 1 {running}", f"batch 2 {running}", f"epoch_end 1 {figures}",
        "epoch_begin 2", f"batch 1 {running}", f"batch 2 {running}", f"epoch_end 2 {figures}",
        f"train_end {figures}",
    ]  # fmt: skip


# --- argument checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: EarlyStopping(restore_best_weights="no"),
            r"EarlyStopping\(restore_best_weights=...\) expects a bool. Received: restore_best_weights='no'",
        ),
        (
            lambda: EarlyStopping(baseline="x"),
            r"EarlyStopping\(baseline=...\) expects a finite number or None. Received: baseline='x'",
        ),
        (lambda: EarlyStopping(baseline=math.nan), r"Received: baseline=nan"),
        (lambda: EarlyStopping(min_delta=math.inf), r"min_delta=...\) expects a finite number >= 0. .*min_delta=inf"),
        (lambda: EarlyStopping(patience=True), r"patience=...\) expects an int >= 0. Received: patience=True"),
        (
            lambda: ModelCheckpoint("ckpt", save_best_only="x"),
            r"ModelCheckpoint\(save_best_only=...\) expects a bool. Received: save_best_only='x'",
        ),
        (lambda: ModelCheckpoint("ckpt", save_optimizer_state=1), r"Received: save_optimizer_state=1"),
        (lambda: CSVLogger("log.csv", append="yes"), r"CSVLogger\(append=...\) expects a bool. Received: append='yes'"),
        (
            lambda: LearningRateScheduler(lambda e, lr: lr, verbose="x"),
            r"LearningRateScheduler\(verbose=...\) expects an int >= 0 or a bool. Received: verbose='x'",
        ),
        (lambda: LearningRateScheduler(lambda e, lr: lr, per_step=None), r"per_step=...\) expects a bool"),
        (lambda: TimeStopping(seconds="60"), r"TimeStopping\(seconds=...\) .* Received: seconds='60'"),
    ],
)
def test_callbacks_reject_bad_arguments_naming_the_value(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_callbacks_accept_numpy_scalars():
    stopping = EarlyStopping(min_delta=np.float32(0.5), patience=np.int64(2), baseline=np.float64(1.0))
    assert (stopping.patience, stopping.baseline, stopping._monitor.min_delta) == (2, 1.0, 0.5)
    assert type(stopping.patience) is int and type(stopping.baseline) is float
    assert EarlyStopping(restore_best_weights=np.True_).restore_best_weights is True
    assert TimeStopping(seconds=np.int64(5)).seconds == 5.0
    assert LearningRateScheduler(lambda e, lr: lr, verbose=True).verbose == 1


def run_schedule(scheduler: LearningRateScheduler, epochs: int) -> list[float]:
    """The rate after each epoch's on_epoch_begin, on a stand-in model that starts at 0.5."""
    model = FakeModel()
    model.learning_rate = 0.5  # type: ignore[attr-defined]
    scheduler.set_model(model)  # type: ignore[arg-type]
    scheduler.on_train_begin()
    rates = []
    for epoch in range(1, epochs + 1):
        scheduler.on_epoch_begin(epoch)
        rates.append(model.learning_rate)  # type: ignore[attr-defined]
    return rates


def test_scheduler_takes_a_one_argument_schedule_of_one_based_epochs():
    assert run_schedule(LearningRateScheduler(lambda epoch: 0.1 / epoch), 3) == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_scheduler_passes_the_rate_to_two_argument_and_unreadable_schedules():
    assert run_schedule(LearningRateScheduler(lambda epoch, lr: lr / 2), 2) == pytest.approx([0.25, 0.125])
    assert run_schedule(LearningRateScheduler(lambda *args: args[1] * 2), 1) == pytest.approx([1.0])
    assert run_schedule(LearningRateScheduler(max), 2) == [1.0, 2.0]  # no signature: max(epoch, lr)


@pytest.mark.parametrize("schedule", [lambda: 0.1, lambda epoch, lr, extra: lr, lambda epoch, *, lr: lr])
def test_scheduler_rejects_a_schedule_it_cannot_call(schedule):
    with pytest.raises(InvalidTypeError, match=r"expects a callable taking \(epoch, lr\) or \(epoch\). Received: "):
        LearningRateScheduler(schedule)


# --- Keras' batch hooks -----------------------------------------------------------------------------------
class TrainBatchEnd(Callback):
    def __init__(self) -> None:
        self.batches: list[tuple[int, list[str]]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((batch, sorted(logs)))


class BatchEnd(Callback):
    def __init__(self) -> None:
        self.batches: list[tuple[int, list[str]]] = []

    def on_batch_end(self, batch, logs=None):
        self.batches.append((batch, sorted(logs)))


class BothEnds(BatchEnd):
    def on_train_batch_end(self, batch, logs=None):  # as in Keras: the alias is then the subclass's to call
        super().on_train_batch_end(batch, logs)


@pytest.mark.parametrize("make", [TrainBatchEnd, BatchEnd, BothEnds])
def test_either_spelling_of_the_batch_end_hook_is_called_once_per_batch(make):
    x, y = tiny_data(16)
    callback = make()
    assert callback.wants_batches and not callback.wants_batch_begin
    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    running = ["accuracy", "loss"]
    assert callback.batches == [(1, running), (2, running), (1, running), (2, running)]  # numbered per epoch


def test_callback_list_dispatches_batch_begin_to_either_spelling():
    class TrainBatchBegin(Callback):
        def __init__(self) -> None:
            self.calls: list[int] = []

        def on_train_batch_begin(self, batch, logs=None):
            self.calls.append(batch)

    class BatchBegin(Callback):
        def __init__(self) -> None:
            self.calls: list[int] = []

        def on_batch_begin(self, batch, logs=None):
            self.calls.append(batch)

    callbacks = [TrainBatchBegin(), BatchBegin()]
    dispatch = CallbackList([*callbacks, EarlyStopping()], FakeModel())  # type: ignore[arg-type]
    assert dispatch.wants_batch_begin and not dispatch.wants_batches
    assert all(c.wants_batch_begin and not c.wants_batches for c in callbacks)
    dispatch.on_batch_begin(1)
    dispatch.on_train_batch_begin(2)
    assert [c.calls for c in callbacks] == [[1, 2], [1, 2]]
    assert not CallbackList([EarlyStopping(), TerminateOnNaN()], FakeModel()).wants_batch_begin  # type: ignore[arg-type]


def test_fit_calls_the_batch_begin_hooks_once_per_batch():
    class Begin(Callback):
        def __init__(self) -> None:
            self.calls: list[int] = []

        def on_train_batch_begin(self, batch, logs=None):
            self.calls.append(batch)

    x, y = tiny_data(16)
    begin = Begin()
    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[begin])
    assert begin.calls == [1, 2, 1, 2]


def test_hooks_that_are_never_called_are_named_in_a_warning():
    class KerasHabits(Callback):
        def on_test_end(self, logs=None):
            pass

        def on_predict_batch_end(self, batch, logs=None):
            pass

    x, y = tiny_data(16)
    with tiny_model() as model, pytest.warns(UserWarning) as caught:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[KerasHabits(), EarlyStopping(monitor="loss")])
    assert [str(w.message) for w in caught] == [
        "Callback KerasHabits overrides on_test_end, on_predict_batch_end, which onnxtrain never calls: evaluate "
        "and predict take no callbacks, and fit's validation runs none. Move the code to on_epoch_end (its logs "
        "hold the val_* figures), or run it after evaluate()/predict()."
    ]
    assert caught[0].filename == __file__  # points at the fit call


def test_stock_callbacks_warn_about_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stock = [EarlyStopping(), TerminateOnNaN(), TimeStopping(60), Callback(), CSVLogger("log.csv")]
        stock += [ModelCheckpoint("ckpt"), LearningRateScheduler(lambda epoch: 0.1)]
        CallbackList(stock, FakeModel())  # type: ignore[arg-type]


def test_subclasses_of_callbacks_that_skip_batches_still_get_their_own_batch_hooks():
    class Scheduler(LearningRateScheduler):
        def __init__(self) -> None:
            super().__init__(lambda epoch, lr: lr)  # per epoch: the base needs no batch call
            self.begins: list[int] = []

        def on_train_batch_begin(self, batch, logs=None):
            self.begins.append(batch)
            super().on_train_batch_begin(batch, logs)

    class Terminate(TerminateOnNaN):
        def __init__(self) -> None:
            self.ends: list[int] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(batch)
            super().on_train_batch_end(batch, logs)

    assert not LearningRateScheduler(lambda e, lr: lr).wants_batch_begin and not TerminateOnNaN().wants_batches
    x, y = tiny_data()  # 4 batches per epoch
    scheduler, terminate = Scheduler(), Terminate()
    with tiny_model() as model:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[scheduler, terminate])
    assert scheduler.begins == [1, 2, 3, 4] and terminate.ends == [1, 2, 3, 4]


# --- LambdaCallback -------------------------------------------------------------------------------------
def test_lambda_callback_calls_each_function_as_keras_does():
    # Keras 3.15.1's LambdaCallback in the same fit (keras_fit_ref.py, "lambda") records this list with
    # 0-based epochs and batches; onnxtrain numbers both from 1. Begin hooks get an empty dict, as in Keras.
    calls: list[tuple] = []
    callback = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch, logs)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch, logs)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, sorted(logs))),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_end=lambda logs: calls.append(("train_end", sorted(logs))),
    )
    x, y = tiny_data(32)
    with tiny_model() as model:
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    figures = ["accuracy", "loss"]
    assert calls == [
        ("train_begin", {}),
        ("epoch_begin", 1, {}), ("batch_begin", 1, {}), ("batch_end", 1, figures), ("batch_begin", 2, {}),
        ("batch_end", 2, figures), ("epoch_end", 1, figures),
        ("epoch_begin", 2, {}), ("batch_begin", 1, {}), ("batch_end", 1, figures), ("batch_begin", 2, {}),
        ("batch_end", 2, figures), ("epoch_end", 2, figures),
        ("train_end", figures),
    ]  # fmt: skip


def test_lambda_callback_takes_the_batch_aliases_and_costs_nothing_per_batch_otherwise():
    begins: list[int] = []
    ends: list[int] = []
    alias = LambdaCallback(on_batch_begin=lambda batch, logs: begins.append(batch), on_batch_end=lambda b, logs: None)
    assert alias.wants_batch_begin and alias.wants_batches
    epochs_only = LambdaCallback(on_epoch_end=lambda epoch, logs: None)
    assert not epochs_only.wants_batches and not epochs_only.wants_batch_begin
    # The on_train_batch_* function replaces its alias, as a method overriding it does.
    both = LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(batch), on_batch_end=lambda b, logs: 1 / 0)
    x, y = tiny_data(16)
    with tiny_model() as model:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[alias, both, epochs_only])
    assert begins == [1, 2] and ends == [1, 2]


def test_lambda_callback_rejects_unknown_hooks_and_warns_about_uncalled_ones():
    with pytest.raises(InvalidArgumentError, match=r"LambdaCallback takes functions by hook name: .*Received: on_step"):
        LambdaCallback(on_step=lambda: None)
    with pytest.raises(InvalidTypeError, match=r"LambdaCallback\(on_epoch_end=...\) expects a function. Received: 1"):
        LambdaCallback(on_epoch_end=1)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="Callback LambdaCallback overrides on_test_end, which onnxtrain never calls"):
        CallbackList([LambdaCallback(on_test_end=lambda logs: None)], FakeModel())  # type: ignore[arg-type]


# --- History.params and History.epoch, Callback.params ----------------------------------------------------
def test_history_and_callbacks_get_kerass_params():
    # Keras 3.15.1 (keras_fit_ref.py, "rlr"): History.params {'verbose': 0, 'epochs': 6, 'steps': 4} for
    # fit(epochs=6, batch_size=8, verbose=0) over 32 rows; History.epoch [0, ..., 5], here 1-based and counting on.
    seen: list[dict] = []
    callback = LambdaCallback(on_train_begin=lambda logs: seen.append(dict(callback.params)))
    x, y = tiny_data(30)  # 4 batches of 8, the last partial
    with tiny_model() as model:
        first = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        second = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    assert first.params == {"verbose": 0, "epochs": 2, "steps": 4} and first.epoch == [1, 2]
    assert second.params == seen[0] == {"verbose": 0, "epochs": 3, "steps": 4}
    assert second.epoch is second.epochs and second.epoch == [3, 4, 5]
    assert Callback().params == {}


# --- what a fit will not log, refused before its first step -------------------------------------------------
NO_VALIDATION = r"The val_ figures need validation data: pass validation=\(x_val, y_val\).*or validation_split=0\.2"
UNLOGGED = [
    (
        "early stopping on val_loss",
        lambda path: [EarlyStopping(patience=2)],
        {},
        r"^fit: EarlyStopping\(monitor='val_loss'\) reads 'val_loss', which this fit's epoch logs will not hold: they "
        r"hold \['accuracy', 'loss'\]\. " + NO_VALIDATION + r" to fit, or monitor 'loss'\. Nothing was trained\.$",
    ),
    (
        "early stopping on val_accuracy",
        lambda path: [EarlyStopping(monitor="val_accuracy")],
        {},
        NO_VALIDATION + r" to fit, or monitor 'accuracy'",
    ),
    (
        "reduce on plateau",
        lambda path: [ReduceLROnPlateau()],
        {},
        r"ReduceLROnPlateau\(monitor='val_loss'\).*or monitor",
    ),
    (
        "best checkpoint",
        lambda path: [ModelCheckpoint(path, save_best_only=True)],
        {},
        r"ModelCheckpoint\(monitor='val_loss'\) reads 'val_loss'",
    ),
    (
        "checkpoint field",
        lambda path: [ModelCheckpoint(str(path) + "-{epoch}-{val_accuracy:.2f}")],
        {},
        r"ModelCheckpoint\(directory='.*'\) reads 'val_accuracy'.*or use 'accuracy'",
    ),
    (
        "a name compile was not given",
        lambda path: [EarlyStopping(monitor="val_acc")],
        {"validation_split": 0.25},
        r"reads 'val_acc'.*hold \['accuracy', 'loss', 'val_accuracy', 'val_loss'\]\. Name one of those",
    ),
    (
        "learning_rate before the callback that adds it",
        lambda path: [EarlyStopping(monitor="learning_rate"), LearningRateScheduler(lambda epoch: 0.1)],
        {},
        r"EarlyStopping\(monitor='learning_rate'\) reads 'learning_rate'",
    ),
]


@pytest.mark.parametrize(("callbacks", "kwargs", "match"), [row[1:] for row in UNLOGGED], ids=[r[0] for r in UNLOGGED])
def test_a_figure_the_fit_will_not_log_is_refused_before_the_first_step(tmp_path, callbacks, kwargs, match):
    # Keras 3 warns at each epoch's end and watches nothing; here the fit is refused before any step, so nothing
    # (weights, epochs, files) is lost or changed.
    x, y = tiny_data()
    with tiny_model() as model:
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=match):
            model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=callbacks(tmp_path / "ckpt"), **kwargs)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])
        assert model.fit(x, y, epochs=1, verbose=0).epochs == [1]  # no epoch was counted
    assert not list(tmp_path.iterdir())


def add_custom(epoch, logs):
    logs["custom"] = float(epoch)


ACCEPTED = [
    ("a checkpoint of every epoch watches nothing", lambda path: [ModelCheckpoint(path)]),
    (
        "added by a callback before",
        lambda path: [LearningRateScheduler(lambda e: 0.1), EarlyStopping("learning_rate", mode="min")],
    ),
    (
        "added by one's own callback",
        lambda path: [ScriptFigure("custom", [1.0, 0.5]), EarlyStopping("custom", mode="max")],
    ),
    (
        "added by a LambdaCallback",
        lambda path: [LambdaCallback(on_epoch_end=add_custom), EarlyStopping("custom", mode="max")],
    ),
    ("a field it adds", lambda path: [ReduceLROnPlateau("loss"), ModelCheckpoint(str(path) + "{learning_rate}")]),
]


@pytest.mark.parametrize("callbacks", [row[1] for row in ACCEPTED], ids=[row[0] for row in ACCEPTED])
def test_figures_the_fit_or_a_callback_before_logs_are_accepted(tmp_path, callbacks):
    x, y = tiny_data()
    with tiny_model() as model:
        assert model.fit(x, y, epochs=2, verbose=0, callbacks=callbacks(tmp_path / "ckpt")).epochs == [1, 2]


def two_outputs() -> Model:
    x = Input(4)
    hidden = Dense(8)(x)
    return Model(x, [Dense(3, activation="linear", name="kind")(hidden), Dense(1, name="size")(hidden)], seed=0)


def tiny_labels(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y


FIT_SETTINGS = [
    ("metrics", tiny_model, None, tiny_labels),
    (
        "metrics and weighted metrics",
        lambda: Sequential.of(Input(4), Dense(3, activation="linear"), seed=0),
        {"metrics": ["acc", SparseTopKCategoricalAccuracy(k=2, name="top2")], "weighted_metrics": ["acc"]},
        tiny_labels,
    ),
    (
        "several outputs",
        two_outputs,
        {"loss": ["sparse_categorical_crossentropy", "mse"], "metrics": [["acc"], ["mae"]]},
        lambda x, y: [y, x[:, :1]],
    ),
]


@pytest.mark.parametrize(
    ("make", "settings", "labels"), [r[1:] for r in FIT_SETTINGS], ids=[r[0] for r in FIT_SETTINGS]
)
def test_every_figure_the_history_holds_can_be_watched_and_no_other(make, settings, labels):
    x, y = tiny_data()
    with make() as model:
        if settings is not None:
            model.compile(**{"optimizer": "adam", "loss": "sparse_categorical_crossentropy", **settings})
        keys = list(model.fit(x, labels(x, y), epochs=1, verbose=0, validation_split=0.25).history)
        for key in keys:
            stopper = EarlyStopping(key)
            model.fit(x, labels(x, y), epochs=1, verbose=0, validation_split=0.25, callbacks=[stopper])
        with pytest.raises(InvalidArgumentError, match=r"reads 'val_val_loss'.*they hold \["):
            model.fit(
                x, labels(x, y), epochs=1, verbose=0, validation_split=0.25, callbacks=[EarlyStopping("val_val_loss")]
            )
    assert len(keys) > 2 and all(f"val_{key}" in keys for key in keys if not key.startswith("val_"))


LABEL_MISMATCHES = [
    (
        "top-k categorical under softmax cross-entropy",
        {
            "loss": "softmax_cross_entropy_with_logits",
            "metrics": [Metrics.ACCURACY, Metrics.TOP_K_CATEGORICAL_ACCURACY],
        },
        r"^compile: Metric 'top_k_categorical_accuracy' reads targets shaped like the output, but loss "
        r"'softmax_cross_entropy_with_logits' takes class indices\. Use sparse_categorical_accuracy or "
        r"sparse_top_k_categorical_accuracy",
    ),
    (
        "categorical accuracy weighted",
        {"loss": "sparse_categorical_crossentropy", "weighted_metrics": ["categorical_accuracy"]},
        r"compile: Metric 'categorical_accuracy' reads targets shaped like the output, but loss "
        r"'sparse_categorical_crossentropy' takes class indices",  # the loss as it was given, Keras' name
    ),
    (
        "sparse accuracy under mse",
        {"loss": "mse", "metric": "sparse_categorical_accuracy"},
        r"compile: Metric 'sparse_categorical_accuracy' reads class indices.*but loss 'mse' takes targets shaped like "
        r"the output\. Use categorical_accuracy, binary_accuracy or top_k_categorical_accuracy",
    ),
]


@pytest.mark.parametrize(("settings", "match"), [r[1:] for r in LABEL_MISMATCHES], ids=[r[0] for r in LABEL_MISMATCHES])
def test_a_metric_that_cannot_read_the_losss_labels_is_refused_at_compile(settings, match):
    with Sequential.of(Input(4), Dense(8), Dense(10, activation="linear"), seed=0) as model:
        with pytest.raises(InvalidArgumentError, match=match):
            model.compile(optimizer="adam", **settings)
        assert not model.is_compiled


def test_a_metric_of_one_output_that_cannot_read_its_losss_labels_is_refused_at_compile():
    with two_outputs() as model, pytest.raises(InvalidArgumentError, match=r"compile: Metric 'categorical_accuracy'"):
        model.compile(loss=["sparse_categorical_crossentropy", "mse"], metrics={"kind": ["categorical_accuracy"]})


@pytest.mark.parametrize(
    ("mode", "monitor", "resolved"),
    [
        (EarlyStoppingMode.MAX, "loss", "max"),
        (EarlyStoppingMode.MIN, "val_accuracy", "min"),
        (EarlyStoppingMode.AUTO, "val_loss", "min"),  # another figure's direction is known when fit starts
        ("AUTO", "val_loss", "min"),
        ("Max", "loss", "max"),
    ],
)
def test_mode_takes_kotlindls_early_stopping_mode_and_any_case(mode, monitor, resolved):
    assert EarlyStopping(monitor=monitor, mode=mode).mode == resolved
    assert ReduceLROnPlateau(monitor=monitor, mode=mode).mode == resolved
    assert ModelCheckpoint("ckpt", monitor=monitor, mode=mode)._monitor.mode == resolved


@pytest.mark.parametrize("mode", ["up", "", None, 1])
def test_mode_rejects_what_names_no_mode(mode):
    with pytest.raises(
        InvalidArgumentError,
        match=r"EarlyStopping\(mode=...\) expects 'auto', 'min' or 'max' \(any case\), "
        r"or an EarlyStoppingMode\. Received: mode=",
    ):
        EarlyStopping(mode=mode)


def test_time_stopping_takes_kotlindls_verbose_and_default(capsys):
    ticks = iter([0.0, 5.0, 10.0])
    callback = TimeStopping(seconds=9, verbose=True, clock=lambda: next(ticks))
    run_scripted(callback, "loss", [1.0] * 5)
    assert capsys.readouterr().out == "Timed stopping at epoch 2 after training for 9 seconds.\n"
    assert TimeStopping().seconds == 86400 and TimeStopping().verbose == 0  # KotlinDL's and TF Addons' day
    with pytest.raises(InvalidArgumentError, match=r"TimeStopping\(verbose=...\) expects an int >= 0 or a bool"):
        TimeStopping(verbose="yes")


def test_monitors_of_validation_figures_skip_the_epochs_validation_freq_skips(tmp_path):
    # Keras' callbacks skip an epoch whose monitored figure is not available; with validation_freq=2 the val_
    # figures exist on epochs 2 and 4 only, and nothing may raise or count the other epochs.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    seen: list[list[str]] = []
    stopping = EarlyStopping(monitor="val_loss", patience=1)
    plateau = ReduceLROnPlateau(monitor="val_loss", patience=1)
    best = ModelCheckpoint(str(tmp_path / "best"), monitor="val_loss", save_best_only=True)
    keys = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(sorted(logs)))
    with Sequential.of(Input(4), Dense(3), seed=1) as model:
        model.compile(optimizer=SGD(0.01), loss="sparse_categorical_crossentropy")
        model.fit(
            x, y, epochs=4, batch_size=16, verbose=0, validation_data=(x, y), validation_freq=2,
            callbacks=[stopping, plateau, best, keys],
        )  # fmt: skip
    assert ["val_loss" in logs for logs in seen] == [False, True, False, True]
    assert stopping.stopped_epoch == 0 and (tmp_path / "best").is_dir()
