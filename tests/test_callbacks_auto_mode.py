"""Mode "auto" of the callbacks that watch a figure (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint), as Keras 3
decides it (keras/src/callbacks/monitor_callback.py): a loss shrinks, a compiled metric improves as its `_direction`
says, and anything else is refused when fit starts."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain.callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Input
from onnxtrain.metrics import (
    AUC,
    Accuracy,
    BinaryAccuracy,
    F1Score,
    FBetaScore,
    Metric,
    Precision,
    Recall,
    SparseTopKCategoricalAccuracy,
    named,
)
from tests.test_callbacks import ScriptFigure


def binary_data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)


def binary_model(metrics: list[object], loss: str = "binary_crossentropy") -> Sequential:
    model = Sequential.of(Input(4), Dense(8), Dense(1, activation="sigmoid"), seed=0)
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    return model


# Keras 3.15's `_direction` of each metric class (keras/src/metrics/*.py): "up" for what grows, "down" for errors.
DIRECTIONS = [
    ("auc", "up"),
    (AUC(curve="PR", name="pr_auc"), "up"),
    ("precision", "up"),
    (Precision(thresholds=0.3), "up"),
    (Recall(), "up"),
    ("accuracy", "up"),
    ("acc", "up"),
    ("binary_accuracy", "up"),
    (BinaryAccuracy(threshold=0.3), "up"),
    ("categorical_accuracy", "up"),
    ("sparse_categorical_accuracy", "up"),
    (SparseTopKCategoricalAccuracy(k=2), "up"),
    (Accuracy(), "up"),
    (F1Score(), "up"),
    (FBetaScore(beta=2.0), "up"),
    ("mae", "down"),
    ("mean_squared_error", "down"),
    ("root_mean_squared_error", "down"),
]


@pytest.mark.parametrize(("metric", "direction"), DIRECTIONS, ids=[str(row[0]) for row in DIRECTIONS])
def test_every_metric_says_which_way_it_improves(metric, direction):
    assert named(metric).direction == direction


def test_a_metric_of_ones_own_says_nothing_unless_it_overrides_direction():
    assert Metric().direction is None


AUTO = [
    ("val_loss", "min"),
    ("loss", "min"),
    ("val_auc", "max"),  # the reported bug: AUC was taken as a loss
    ("auc", "max"),
    ("val_precision", "max"),
    ("val_pr_auc", "max"),
    ("val_acc", "max"),
    ("val_mae", "min"),
]


@pytest.mark.parametrize(("monitor", "mode"), AUTO)
@pytest.mark.parametrize(
    "make",
    [
        lambda monitor: EarlyStopping(monitor=monitor),
        lambda monitor: ReduceLROnPlateau(monitor=monitor),
        lambda monitor: ModelCheckpoint("unused", monitor=monitor, save_best_only=True),
    ],
    ids=["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"],
)
def test_auto_mode_takes_the_direction_of_the_compiled_metric_of_that_name(make, monitor, mode):
    callback = make(monitor)
    assert callback.mode == ("min" if monitor.removeprefix("val_") == "loss" else "auto")  # known at fit start
    metrics = ["auc", "precision", AUC(curve="PR", name="pr_auc"), "acc", "mae"]
    callback.check_fit_start(
        {"loss": "down", **{named(m).name: named(m).direction for m in metrics}}
        | {f"val_{named(m).name}": named(m).direction for m in metrics}
        | {"val_loss": "down"}
    )
    assert callback.mode == mode


def test_early_stopping_on_val_auc_restores_the_epoch_of_the_highest_auc():
    # The reported reproducer: with mode "auto", AUC counted as a loss and the worst epoch came back.
    x, y = binary_data()
    xv, yv = binary_data(64, seed=1)
    record: dict[int, dict[str, np.ndarray]] = {}

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            record[epoch] = self.model.get_weights()

    stopper = EarlyStopping(monitor="val_auc", patience=2, restore_best_weights=True)
    with binary_model(["auc"]) as model:
        history = model.fit(
            x, y, epochs=8, batch_size=16, validation_data=(xv, yv), verbose=0, callbacks=[Record(), stopper]
        )
        restored = model.get_weights()
        final_auc = model.evaluate(xv, yv, return_dict=True)["auc"]
    aucs = history.history["val_auc"]
    best = int(np.argmax(aucs)) + 1  # the first of the highest (later ties do not improve)
    assert stopper.mode == "max" and stopper.best_epoch == best and stopper.best == pytest.approx(max(aucs))
    for name, value in record[best].items():
        np.testing.assert_array_equal(restored[name], value)
    assert final_auc == pytest.approx(max(aucs), abs=1e-6)


def test_reduce_lr_on_plateau_in_auto_mode_waits_on_a_growing_accuracy():
    # val_accuracy scripted to grow: "max" never reduces; taken as a loss it would reduce after `patience` epochs.
    x, y = binary_data()
    scripted = ScriptFigure("val_accuracy", [0.5, 0.6, 0.7, 0.8])
    reducer = ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1)
    with binary_model(["accuracy"]) as model:
        history = model.fit(x, y, epochs=4, verbose=0, validation_split=0.25, callbacks=[scripted, reducer])
    assert reducer.mode == "max" and history.history["learning_rate"] == pytest.approx([0.001] * 4)


def test_the_directions_of_a_model_of_several_outputs_are_its_outputs_metrics_and_losses():
    x = Input(4)
    hidden = Dense(8)(x)
    model = Model(x, [Dense(3, activation="linear", name="kind")(hidden), Dense(1, name="size")(hidden)], seed=0)
    with model:
        model.compile(loss=["sparse_categorical_crossentropy", "mse"], metrics={"kind": ["acc"], "size": ["mae"]})
        directions = model._trainer._figures.directions()  # type: ignore[union-attr]
    assert directions == {
        "loss": "down",
        "kind_loss": "down",
        "size_loss": "down",
        "kind_acc": "up",
        "size_mae": "down",
    }


REFUSED = [
    (lambda: EarlyStopping(monitor="custom"), r"EarlyStopping\(monitor='custom'\)"),
    (lambda: ReduceLROnPlateau(monitor="custom"), r"ReduceLROnPlateau\(monitor='custom'\)"),
    (lambda: ModelCheckpoint("unused", monitor="custom", save_best_only=True), r"ModelCheckpoint\(monitor='custom'\)"),
]


@pytest.mark.parametrize(("make", "owner"), REFUSED, ids=["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"])
def test_auto_mode_refuses_a_figure_whose_direction_nothing_says_before_the_first_step(make, owner):
    # Keras: "...isn't able to automatically determine whether that metric should be maximized or minimized. Pass
    # `mode='max'` ... or pass `mode='min'`"
    x, y = binary_data()
    steps = []

    class Count(Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch)

    with binary_model(["auc"]) as model:
        before = model.get_weights()
        with pytest.raises(
            InvalidArgumentError,
            match=rf"^fit: {owner} has mode 'auto', but nothing says whether 'custom' should be maximized or "
            r"minimized.*Pass mode='max' to monitor its highest value, or mode='min' for its lowest\. Nothing was "
            r"trained\.$",
        ):
            model.fit(x, y, epochs=2, verbose=0, callbacks=[ScriptFigure("custom", [1.0, 0.5]), Count(), make()])
        assert steps == []
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])
        stopper = EarlyStopping(monitor="custom", mode="min")  # what the message asks for
        model.fit(x, y, epochs=2, verbose=0, callbacks=[ScriptFigure("custom", [1.0, 0.5]), stopper])
        assert stopper.best == 0.5


def test_a_checkpoint_of_every_epoch_reads_no_direction(tmp_path):
    x, y = binary_data()
    with binary_model([]) as model:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "ckpt", monitor="custom")])
    assert (tmp_path / "ckpt" / "model.onnx").is_file()
