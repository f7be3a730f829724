"""The order of the keys of `fit(...).history`, of the logs each callback hook gets, of a CSVLogger's columns, of
the progress line and of `evaluate`/`test_on_batch(..., return_dict=True)`, against Keras 3.15's
(tests/data/keras/keras_key_order.json, written by tools/keras_key_order_fixtures.py with KERAS_BACKEND=jax).

Keras 3's CallbackList hands every hook its logs sorted by key (`python_utils.pythonify_logs`): its History lists
the first epoch's keys sorted, then those first logged later (val_ keys under `validation_freq=2`) and those a
callback adds (a figure of its own, ReduceLROnPlateau's `learning_rate`), as they came; `on_train_end` gets the last
epoch's logs without the keys callbacks added; its CSVLogger sorts its columns, and adds a val_ column for each where
the first epoch logged none. Keras' epochs are 0-based, onnxtrain's 1-based.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnxtrain import History, Model
from onnxtrain.callbacks import Callback, CSVLogger, ReduceLROnPlateau
from onnxtrain.layers import Dense, Input

KERAS = json.loads((Path(__file__).parent / "data" / "keras" / "keras_key_order.json").read_text())["logs"]
EXAMPLES, FEATURES, BATCH = 16, 4, 8
FITS = {  # fit -> (validation data, epochs, validation_freq, callbacks that add keys), as the generator's
    "validation": (True, 2, 1, False),
    "validation_every_second_epoch": (True, 3, 2, False),
    "callbacks_add_keys": (True, 2, 1, True),
    "no_validation": (False, 1, 1, False),
}


class Recorder(Callback):
    """The key order of the logs each hook gets (the first call of each), named as the generator names them."""

    def __init__(self, name: str, seen: dict[str, list[str]]):
        self.name, self.seen = name, seen

    def _keep(self, hook: str, logs: Any) -> None:
        self.seen.setdefault(f"{self.name}.{hook}", list(logs or {}))

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._keep("on_train_batch_end", logs)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._keep(f"on_epoch_end[{epoch - 1}]", logs)  # Keras' 0-based index

    def on_train_end(self, logs: Any = None) -> None:
        self._keep("on_train_end", logs)


class AddsFigure(Callback):
    """Adds a figure of its own, "scripted", to the epoch logs."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs["scripted"] = 1.0 / epoch  # type: ignore[index]


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, FEATURES)).astype(np.float32)
    return x, rng.normal(size=(EXAMPLES, 2)).astype(np.float32), rng.integers(0, 3, EXAMPLES).astype(np.int64)


def compiled(case: str) -> tuple[Model, Any]:
    """The generator's model of `case`, compiled alike, and its targets."""
    _, regression, classes = data()
    x = Input(FEATURES)
    if case == "metrics":
        model = Model(x, Dense(2, activation="linear")(x), seed=0)
        model.compile(optimizer="sgd", loss="mse", metrics=["mse", "mae"])
        return model, regression
    if case == "weighted":
        model = Model(x, Dense(3, activation="softmax")(x), seed=0)
        model.compile(
            optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"]
        )
        return model, classes
    reg = Dense(2, activation="linear", name="reg")(x)
    cls = Dense(3, activation="softmax", name="cls")(x)
    if case == "two_outputs":
        model = Model(x, [reg, cls], seed=0)
        model.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"], metrics=[["mae"], ["accuracy"]])
        return model, [regression, classes]
    model = Model(x, {"zeta": reg, "alpha": cls}, seed=0)
    model.compile(
        optimizer="sgd",
        loss={"zeta": "mse", "alpha": "sparse_categorical_crossentropy"},
        metrics={"zeta": ["mae", "mse"], "alpha": ["accuracy"]},
    )
    return model, {"zeta": regression, "alpha": classes}


@pytest.mark.parametrize("case_fit", sorted(KERAS))
def test_history_and_logs_list_their_keys_in_keras_order(case_fit: str, tmp_path: Path) -> None:
    case, fit = case_fit.split("/")
    validating, epochs, validation_freq, adds = FITS[fit]
    keras = KERAS[case_fit]
    x, _, _ = data()
    seen: dict[str, list[str]] = {}
    path = tmp_path / "log.csv"
    callbacks: list[Callback] = [Recorder("first", seen)]
    if adds:
        callbacks += [AddsFigure(), ReduceLROnPlateau(patience=0)]
    callbacks += [Recorder("last", seen), CSVLogger(path)]
    model, y = compiled(case)
    with model:
        history = model.fit(
            x,
            y,
            validation_data=(x, y) if validating else None,
            validation_freq=validation_freq,
            epochs=epochs,
            batch_size=BATCH,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
    assert list(history.history) == keras["history"]
    hooks = {key: keys for key, keys in keras.items() if key.startswith(("first.", "last."))}
    assert {key: seen[key] for key in hooks} == hooks
    assert path.read_text().splitlines()[0].split(",") == keras["csv_header"]


@pytest.mark.parametrize("case", ["weighted", "two_outputs", "dict_outputs"])
def test_evaluate_and_test_on_batch_return_dicts_in_keras_order(case: str) -> None:
    keras = KERAS[f"{case}/no_validation"]
    x, _, _ = data()
    model, y = compiled(case)
    with model:
        evaluated = model.evaluate(x, y, batch_size=BATCH, return_dict=True)
        tested = model.test_on_batch(x, y, return_dict=True)
        listed, tested_list = list(model.evaluate(x, y, batch_size=BATCH)), model.test_on_batch(x, y)
        trained = model.train_on_batch(x, y, return_dict=True)
    assert (list(evaluated), list(tested)) == (keras["evaluate_return_dict"], keras["test_on_batch_return_dict"])
    assert list(trained) == keras["test_on_batch_return_dict"]  # Keras' train_on_batch logs as its test_on_batch
    # The lists keep the loss first, as Keras' (`_flatten_metrics_in_order`: `metrics_names` order).
    assert isinstance(tested_list, list)
    for dict_form, list_form in ((evaluated, listed), (tested, tested_list)):
        assert list_form[0] == dict_form["loss"] and sorted(list_form) == sorted(dict_form.values())


def test_the_train_end_logs_are_the_last_epochs_without_the_keys_callbacks_added() -> None:
    # Keras' fit keeps the last epoch's logs as it built them (its CallbackList hands each hook a sorted copy, to
    # which callbacks add): on_train_end gets those, with no learning_rate and, where validation skipped the last
    # epoch, no val_ key (not the NaN the History's last row holds for it).
    got: list[dict[str, float]] = []

    class TrainEnd(Callback):
        def on_train_end(self, logs: Any = None) -> None:
            got.append(dict(logs))

    x, _, _ = data()
    model, y = compiled("metrics")
    with model:
        history = model.fit(
            x, y, validation_data=(x, y), validation_freq=2, epochs=3, batch_size=BATCH, verbose=0,
            callbacks=[AddsFigure(), ReduceLROnPlateau(patience=0), TrainEnd()],
        )  # fmt: skip
    assert {"scripted", "learning_rate"} <= set(history.history) and np.isnan(history.history["val_loss"][-1])
    assert got == [{key: history.history[key][-1] for key in ("loss", "mae", "mse")}]


@pytest.mark.parametrize("case", ["weighted", "dict_outputs"])
@pytest.mark.parametrize("verbose", [1, 2])
def test_the_progress_line_lists_the_figures_as_keras_progress_bar(
    case: str, verbose: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # Keras' ProgbarLogger prints each epoch's logs (without the keys callbacks add, which onnxtrain leaves off the
    # line). At verbose=1 its Progbar keeps the order it first saw the keys in: the batches' (sorted), then the
    # val_ ones the epoch's end brings; at verbose=2 it gets only the epoch's logs, sorted.
    keras = KERAS[f"{case}/validation"]
    batch_keys, epoch_keys = keras["first.on_train_batch_end"], keras["first.on_epoch_end[0]"]
    expected = epoch_keys if verbose == 2 else [*batch_keys, *(key for key in epoch_keys if key not in batch_keys)]
    x, _, _ = data()
    model, y = compiled(case)
    with model:
        model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=BATCH, shuffle=False, verbose=verbose)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch 1/1")]
    assert re.findall(r"(\w+): ", line) == expected
    assert expected != sorted(expected) if verbose == 1 else expected == sorted(expected)  # the two orders differ


@pytest.mark.parametrize("validation_freq", [2, None])
def test_csv_logger_writes_the_val_figures_of_a_fit_whose_first_epoch_did_not_validate(
    validation_freq: int | None, tmp_path: Path
) -> None:
    # Keras' CSVLogger: where the first epoch logs no val_ key, a val_ column for each key follows the sorted ones
    # (Keras writes "NA" where an epoch has no such figure, onnxtrain nan, which History.from_csv reads, leaving out
    # the val_ columns that hold no value: those of a fit without validation).
    keras = KERAS["metrics/validation_every_second_epoch" if validation_freq else "metrics/no_validation"]
    x, _, _ = data()
    model, y = compiled("metrics")
    with model:
        history = model.fit(
            x, y, validation_data=(x, y) if validation_freq else None, validation_freq=validation_freq or 1,
            epochs=3, batch_size=BATCH, verbose=0, callbacks=[CSVLogger(tmp_path / "log.csv")],
        )  # fmt: skip
    assert (tmp_path / "log.csv").read_text().splitlines()[0].split(",") == keras["csv_header"]
    logged = History.from_csv(tmp_path / "log.csv")
    kept = [key for key in keras["csv_header"][1:] if validation_freq or not key.startswith("val_")]
    assert list(logged.history) == kept and logged.epochs == history.epochs == [1, 2, 3]
    for key, values in logged.history.items():
        np.testing.assert_array_equal(values, history.history[key], err_msg=key)  # NaN where an epoch has no figure
    if validation_freq:
        assert np.isnan(logged.history["val_loss"]).tolist() == [True, False, True]
    else:
        assert logged == history
