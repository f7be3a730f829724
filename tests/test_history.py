"""History: Keras-compatible per-epoch figures from fit, validation data, CSV round trip, the curves PNG."""

from __future__ import annotations

import copy
import math
import pickle
import struct
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnxtrain import Dataset, History, Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, RuntimeSetupError
from onnxtrain.history import EvaluationResult, MetricValues
from onnxtrain.layers import Dense, Input
from onnxtrain.metrics import Metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_model(seed: int = 0) -> Sequential:
    model = Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=seed)
    model.compile(optimizer="adam", metric="accuracy")
    return model


def tiny_data(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)


# --- History as fit returns it --------------------------------------------------------------------------
def test_fit_history_has_keras_keys_and_epoch_numbers_that_continue_across_fits():
    x, y = tiny_data()
    with tiny_model() as model:
        first = model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation=(x[:8], y[:8]))
        second = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    # Keras 3 sorts the logs (tests/data/keras/keras_key_order.json; tests/test_history_key_order.py)
    assert list(first.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert first.epochs == [1, 2] and all(len(v) == 2 for v in first.history.values())
    assert second.epochs == [3] and list(second.history) == ["accuracy", "loss"]


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x, y = tiny_data(40)
    with tiny_model() as model:
        history = model.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, validation_batch_size=5, verbose=0)
        last = model.evaluate(x[30:], y[30:], batch_size=5)
        first = model.evaluate(x[:10], y[:10], batch_size=5)
    assert history.history["val_loss"][0] == pytest.approx(last.loss, rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(last.metrics["accuracy"])
    assert history.history["val_loss"][0] != pytest.approx(first.loss, rel=1e-6)


@pytest.mark.parametrize("as_dataset", [False, True], ids=["tuple", "Dataset"])
def test_validation_accepts_a_tuple_or_a_dataset_and_its_own_batch_size(as_dataset):
    x, y = tiny_data()
    validation = Dataset(x[:10], y[:10]) if as_dataset else (x[:10], y[:10])
    with tiny_model() as model:
        history = model.fit(x, y, epochs=1, batch_size=16, validation=validation, validation_batch_size=3, verbose=0)
        result = model.evaluate(x[:10], y[:10], batch_size=10)
    assert history.history["val_loss"][0] == pytest.approx(result.loss, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_split": 1.0}, r"validation_split expects a float in \[0, 1\)"),
        ({"validation_split": True}, r"validation_split expects a float in \[0, 1\)\. Received: True"),
        ({"validation_split": 0.001}, "leaves no training or no validation examples"),
        ({"validation_split": 0.2, "validation": "tiny"}, "not both"),
    ],
)
def test_fit_rejects_bad_validation_arguments(kwargs, match):
    x, y = tiny_data()
    if kwargs.get("validation") == "tiny":
        kwargs["validation"] = (x[:4], y[:4])
    with tiny_model() as model, pytest.raises(InvalidArgumentError, match=match):
        model.fit(x, y, epochs=1, verbose=0, **kwargs)


def test_append_back_fills_keys_first_seen_later_with_nan():
    history = History()
    history.append(1, {"loss": 1.0})
    history.append(2, {"loss": 0.5, "val_loss": 0.7})
    assert history.epochs == [1, 2]
    assert math.isnan(history.history["val_loss"][0]) and history.history["val_loss"][1] == 0.7
    assert history.last() == {"loss": 0.5, "val_loss": 0.7} and len(history) == 2


HISTORY_ATTRIBUTES = [  # KotlinDL's TrainingHistory names, and a name neither has
    (
        "lastEpochEvent",
        r"^'History' object has no attribute 'lastEpochEvent'\. For KotlinDL's lastEpochEvent, use history\.last\(\): "
        r"the last epoch's figures",
    ),
    ("epochHistory", r"For KotlinDL's epochHistory, use history\.history \(\{key: one value per epoch\}\)"),
    ("batchHistory", r"For KotlinDL's batchHistory, use a Callback's on_train_batch_end\(batch, logs\)"),
    (
        "toCsv",
        r"^'History' object has no attribute 'toCsv'\. Python's spelling of KotlinDL's camelCase names is snake_case: "
        r"history\.to_csv$",
    ),
    ("losses", r"^'History' object has no attribute 'losses'$"),
]


@pytest.mark.parametrize(("attribute", "match"), HISTORY_ATTRIBUTES, ids=[row[0] for row in HISTORY_ATTRIBUTES])
def test_kotlindl_names_of_a_historys_attributes_name_what_stands_for_them(attribute, match):
    history = History(history={"loss": [0.5]}, epochs=[1])
    with pytest.raises(AttributeError, match=match) as raised:
        getattr(history, attribute)
    assert raised.value.name == attribute and raised.value.obj is history
    assert getattr(history, "_private", None) is None and not hasattr(history, attribute)
    assert copy.deepcopy(history) == pickle.loads(pickle.dumps(history)) == history  # they probe attributes too


# --- CSV ------------------------------------------------------------------------------------------------
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    columns=st.lists(st.sampled_from(["loss", "accuracy", "mae", "val_loss", "val_accuracy"]), unique=True,
                     min_size=1, max_size=5),
    rows=st.integers(1, 6),
    data=st.data(),
)  # fmt: skip
def test_csv_round_trip_preserves_every_value(tmp_path_factory, columns, rows, data):
    history = History()
    for epoch in range(1, rows + 1):
        history.append(epoch + 10, {key: data.draw(floats) for key in columns})
    path = history.to_csv(tmp_path_factory.mktemp("csv") / "history.csv")
    loaded = History.from_csv(path)
    empty = [key for key, values in history.history.items() if key.startswith("val_") and np.isnan(values).all()]
    assert loaded.epochs == history.epochs and list(loaded.history) == [k for k in history.history if k not in empty]
    for key, values in loaded.history.items():
        np.testing.assert_array_equal(values, history.history[key])  # equal_nan by default, bit-exact otherwise


def test_csv_from_fit_reads_back_equal(tmp_path):
    x, y = tiny_data()
    with tiny_model() as model:
        history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    loaded = History.from_csv(history.to_csv(tmp_path / "h.csv"))
    assert loaded.history == history.history and loaded.epochs == [1, 2, 3]
    assert list(loaded.history) == list(history.history)
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not a History CSV"),
        ("step,loss\n1,0.5\n", "not a History CSV"),
        ("epoch,loss\n1,abc\n", "line 2: not a History row"),
        ("epoch,loss\n1,0.5,0.7\n", "line 2: not a History row .*3 fields, expected 2"),
        ("epoch,loss\none,0.5\n", "line 2"),
    ],
)
def test_from_csv_rejects_files_that_are_not_history(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=match):
        History.from_csv(path)


def test_from_csv_names_a_file_it_cannot_read(tmp_path):
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00")
    for path, reason in [
        (tmp_path / "missing.csv", "No such file or directory"),
        (tmp_path, "Is a directory"),
        (tmp_path / "binary.csv", "UnicodeDecodeError"),
    ]:
        with pytest.raises(InvalidArgumentError, match=rf"Received: '{path}', which cannot be read as one \({reason}"):
            History.from_csv(path)


def test_from_csv_skips_blank_lines(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("epoch,loss\n1,0.5\n\n2,0.25\n\n")
    assert History.from_csv(path).history == {"loss": [0.5, 0.25]}


NAN = math.nan
EMPTY_COLUMNS = [  # a CSV, and the History read from it (nan where a value is missing)
    (  # a CSVLogger of a fit without validation: Keras' val_ columns, which hold no value, are left out
        "epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,1.0,nan,nan\n2,0.75,0.5,nan,nan\n",
        {"accuracy": [0.5, 0.75], "loss": [1.0, 0.5]},
    ),
    (  # validation_freq=2: a val_ column with a value is kept, with its nan
        "epoch,loss,val_loss\n1,1.0,nan\n2,0.5,0.75\n",
        {"loss": [1.0, 0.5], "val_loss": [NAN, 0.75]},
    ),
    (  # only val_ columns: a figure of the training's with no value is kept
        "epoch,learning_rate,loss,val_learning_rate,val_loss\n1,nan,nan,nan,0.25\n",
        {"learning_rate": [NAN], "loss": [NAN], "val_loss": [0.25]},
    ),
]


@pytest.mark.parametrize(("text", "expected"), EMPTY_COLUMNS, ids=["no_validation", "validation_freq", "train_nan"])
def test_from_csv_leaves_out_the_val_columns_that_hold_no_value(tmp_path, text, expected):
    path = tmp_path / "log.csv"
    path.write_text(text)
    loaded = History.from_csv(path)
    assert list(loaded.history) == list(expected)
    for key, values in expected.items():
        np.testing.assert_array_equal(loaded.history[key], values)


def test_a_csv_logger_of_a_fit_without_validation_reads_back_equal_to_its_history(tmp_path):
    from onnxtrain.callbacks import CSVLogger

    x, y = tiny_data()
    with tiny_model() as model:
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[CSVLogger(tmp_path / "log.csv")])
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    loaded = History.from_csv(tmp_path / "log.csv")
    assert loaded == history and list(loaded.history) == list(history.history) == ["accuracy", "loss"]


# --- plot -----------------------------------------------------------------------------------------------
def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_plot_writes_a_valid_png_with_one_panel_per_figure(tmp_path):
    history = History()
    for epoch, loss in enumerate([1.0, 0.6, 0.5], start=1):
        history.append(epoch, {"loss": loss, "accuracy": 1 - loss, "val_loss": loss + 0.1, "val_accuracy": 0.4})
    path = history.plot(tmp_path / "sub" / "curves.png")
    width, height = png_size(path.read_bytes())
    assert (width, height) == (1000, 400)  # two panels of 5x4 inches at 100 dpi
    assert png_size(History(history={"loss": [1.0]}, epochs=[1]).plot(tmp_path / "one.png").read_bytes()) == (
        500,
        400,
    )


@pytest.mark.slow
def test_plot_leaves_pyplot_backend_alone(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    History(history={"loss": [1.0, 0.5]}, epochs=[1, 2]).plot(tmp_path / "c.png")
    assert matplotlib.get_backend() == before


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeSetupError, match=r"pip install onnxtrain\[plot\]"):
        History(history={"loss": [1.0]}, epochs=[1]).plot(tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


@pytest.mark.slow
def test_plot_of_an_empty_history_is_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match="at least one epoch"):
        History().plot(tmp_path / "c.png")


@pytest.mark.slow
def test_plot_writes_the_format_its_suffix_names(tmp_path):
    history = History(history={"loss": [1.0, 0.5]}, epochs=[1, 2])
    assert history.plot(tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in history.plot(tmp_path / "c.svg").read_bytes()[:400]
    assert history.plot(tmp_path / "curves").read_bytes()[:8] == PNG_SIGNATURE  # no suffix: PNG
    with pytest.raises(InvalidArgumentError, match=r"one of \[.*'pdf'.*'png'.*\]\. Received: path='.*c\.docx'"):
        history.plot(tmp_path / "c.docx")
    assert not (tmp_path / "c.docx").exists()


# --- EvaluationResult -----------------------------------------------------------------------------------
def test_evaluation_result_unpacks_as_keras_list_loss_then_metrics_in_compile_order():
    x, y = tiny_data()
    model = Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0)
    with model:
        model.compile(optimizer="adam", metrics=["mse", "accuracy"])
        result = model.evaluate(x, y)
        loss, mse, accuracy = model.evaluate(x, y)
    assert (loss, mse, accuracy) == (result.loss, result.metrics["mse"], result.metrics["accuracy"])
    assert len(result) == 3 and list(result) == [loss, mse, accuracy]
    assert str(result) == f"loss: {loss:.4f} - mse: {mse:.4f} - accuracy: {accuracy:.4f}"  # str unchanged
    with tiny_model() as plain:
        plain.compile(optimizer="adam")
        (only_loss,) = plain.evaluate(x, y)
        assert len(plain.evaluate(x, y)) == 1 and only_loss == plain.evaluate(x, y).loss


def test_an_evaluation_result_without_metrics_is_its_loss_as_keras_returns_a_scalar():
    result = EvaluationResult(0.25, {})
    assert float(result) == 0.25 and f"{result:.3f}" == "0.250" and f"{result}" == str(result) == "loss: 0.2500"
    with_metrics = EvaluationResult(0.25, {Metrics.ACCURACY: 0.5})
    assert f"{with_metrics}" == "loss: 0.2500 - accuracy: 0.5000"
    with pytest.raises(InvalidTypeError, match=r"evaluate without metrics.*\['accuracy'\]: use result\.loss"):
        float(with_metrics)
    with pytest.raises(InvalidTypeError, match="evaluate without metrics"):
        f"{with_metrics:.3f}"


def test_an_evaluation_result_indexes_as_keras_list_and_computes_as_its_loss():
    score = EvaluationResult(0.25, MetricValues({Metrics.ACCURACY: 0.75, "head_mae": 0.5}))
    assert (score[0], score[1], score[-1], score[1:]) == (0.25, 0.75, 0.5, [0.75, 0.5])  # keras.io: score[0]
    with pytest.raises(
        IndexError, match=r"index 3 is out of range: it holds 3 values \['loss', 'accuracy', 'head_mae'\]"
    ):
        score[3]
    with pytest.raises(InvalidTypeError, match=r"by an int or a slice.*Received: 'accuracy'"):
        score["accuracy"]  # type: ignore[call-overload]
    loss = EvaluationResult(0.25, {})
    assert loss < 0.5 and loss <= 0.25 and loss > 0.1 and loss >= 0.25 and loss == 0.25 and loss != 0.3
    assert (loss + 1, 1 + loss, loss - 1, 1 - loss, loss * 2, 2 * loss, loss / 2, 1 / loss) == (
        1.25,
        1.25,
        -0.75,
        0.75,
        0.5,
        0.5,
        0.125,
        4.0,
    )
    assert round(loss, 1) == 0.2 and np.isclose(loss, 0.25) and np.asarray(loss).dtype == np.float64
    assert score != 0.25 and score == EvaluationResult(0.25, MetricValues({Metrics.ACCURACY: 0.75, "head_mae": 0.5}))
    np.testing.assert_array_equal(np.array(score), [0.25, 0.75, 0.5])  # numpy reads Keras' list
    np.testing.assert_array_equal(np.round(score, 1), [0.2, 0.8, 0.5])
    with pytest.raises(InvalidTypeError, match="evaluate without metrics"):
        score < 0.5  # noqa: B015 (Keras' list has no order against a number either)


def test_evaluation_result_to_dict_is_keras_return_dict_keyed_as_the_logs():
    result = EvaluationResult(0.5, MetricValues({Metrics.ACCURACY: 0.75, "head_mae": 0.25}))
    assert result.to_dict() == {"loss": 0.5, "accuracy": 0.75, "head_mae": 0.25}
    assert list(result.to_dict().values()) == list(result)
