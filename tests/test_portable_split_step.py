"""The portable engine's split step (onnxtrain/portable/_split_step.py): when an engine splits its batches, and that
a split step trains as the unsplit one does (to float32 rounding), Dropout masks and clipping included."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential, losses
from onnxtrain._runtime import Device
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from onnxtrain.optimizers import SGD, Adam
from onnxtrain.portable import PortableEngine, _fused
from onnxtrain.portable._graphs import FIRST_ROW, gradient_model
from onnxtrain.portable._split_step import share_count

SCE = losses.get("softmax_cross_entropy_with_logits")
pytestmark = pytest.mark.skipif(not _fused.available(), reason="the split step runs the fused update (numba)")


def cnn(dropout: float = 0.5, batch_norm: bool = False) -> Sequential:
    return Sequential.of(
        Input(8, 8, 1),
        Conv2D(4, 3, padding="same", activation="relu"),
        *([BatchNormalization()] if batch_norm else []),
        MaxPooling2D(2),
        Flatten(),
        Dense(8, activation="relu"),
        *([Dropout(dropout)] if dropout else []),
        Dense(3, activation="linear"),
        seed=5,
    )


def mlp() -> Sequential:
    return Sequential.of(Input(8, 8, 1), Flatten(), Dense(8, activation="relu"), Dense(3), seed=5)


def data(rows: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, rows).astype(np.int64)


def engine(model: Sequential, optimizer, setting: str, monkeypatch, threads: int = 2) -> PortableEngine:
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", setting)
    return PortableEngine(model.layers, SCE, optimizer, threads=threads)


def test_convolution_networks_split_and_mlps_do_not(monkeypatch):
    model = gradient_model(cnn().layers, SCE, Adam())
    dense = gradient_model(mlp().layers, SCE, Adam())
    cpu = Device("cpu")
    assert share_count(model, cpu, 2, eligible=True) == 2
    assert share_count(model, cpu, 3, eligible=True) == 3
    assert share_count(model, cpu, 64, eligible=True) == 8  # at most MAX_SHARES
    assert share_count(dense, cpu, 2, eligible=True) == 1
    assert share_count(model, cpu, 1, eligible=True) == 1  # one thread: nothing to split over
    assert share_count(model, cpu, 2, eligible=False) == 1
    assert share_count(model, Device("cuda"), 2, eligible=True) == 1
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "0")
    assert share_count(model, cpu, 2, eligible=True) == 1
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "1")
    assert share_count(dense, cpu, 2, eligible=True) == 2
    monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", "yes")
    with pytest.raises(InvalidArgumentError, match=r"ONNXTRAIN_SPLIT_STEP expects one of .*Received: 'yes'"):
        share_count(model, cpu, 2, eligible=True)


@pytest.mark.slow
def test_engines_split_only_where_the_step_can(monkeypatch):
    assert engine(cnn(), Adam(), "auto", monkeypatch)._shares == 2
    assert engine(cnn(), Adam(), "auto", monkeypatch, threads=1)._shares == 1
    assert engine(mlp(), Adam(), "auto", monkeypatch)._shares == 1
    # BatchNormalization's moving statistics are updated by each step: each share would compute its own
    assert engine(cnn(batch_norm=True), Adam(), "1", monkeypatch)._shares == 1


def test_a_share_numbers_its_rows_from_the_first_row_input():
    with_dropout = gradient_model(cnn().layers, SCE, Adam(), shares=True)
    assert FIRST_ROW in {i.name for i in with_dropout.graph.input}
    unsplit = gradient_model(cnn().layers, SCE, Adam())
    assert FIRST_ROW not in {i.name for i in unsplit.graph.input}
    without_dropout = gradient_model(cnn(dropout=0).layers, SCE, Adam(), shares=True)
    assert FIRST_ROW not in {i.name for i in without_dropout.graph.input}


@pytest.mark.parametrize(
    "optimizer, rows",
    [(Adam(), 32), (SGD(0.1, clip_norm=0.05), 32), (SGD(0.1, clip_value=0.01), 7)],
    ids=["Adam", "SGD clip_norm", "SGD clip_value, 7 rows (uneven shares)"],
)
def test_split_steps_train_as_unsplit_ones(monkeypatch, optimizer, rows):
    x, y = data()
    split, unsplit = engine(cnn(), optimizer, "1", monkeypatch), engine(cnn(), optimizer, "0", monkeypatch)
    assert (split._shares, unsplit._shares) == (2, 1)
    for start in range(0, 4 * rows, rows):
        loss, logits = split.train_step(x[start : start + rows], y[start : start + rows])
        expected_loss, expected_logits = unsplit.train_step(x[start : start + rows], y[start : start + rows])
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-6)
    for name, expected in unsplit.get_weights().items():
        # The Dropout masks are the same (a share reads its first row's index): different masks would move the
        # weights by ~1e-2 here.
        np.testing.assert_allclose(split.get_weights()[name], expected, rtol=1e-4, atol=1e-6, err_msg=name)
    assert split.step == unsplit.step == 4
    split.close()
    unsplit.close()


@pytest.mark.slow
def test_a_batch_of_one_row_runs_in_one_share(monkeypatch):
    x, y = data()
    split, unsplit = engine(cnn(), SGD(0.1), "1", monkeypatch), engine(cnn(), SGD(0.1), "0", monkeypatch)
    loss, _ = split.train_step(x[:1], y[:1])
    assert loss == pytest.approx(unsplit.train_step(x[:1], y[:1])[0], rel=1e-6)
    for name, expected in unsplit.get_weights().items():
        np.testing.assert_allclose(split.get_weights()[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_non_finite_loss_in_one_share_skips_the_update(monkeypatch):
    x, y = data()
    split = engine(cnn(dropout=0), SGD(0.1), "1", monkeypatch)
    before = {name: value.copy() for name, value in split.get_weights().items()}
    x = x[:8].copy()
    x[6] = np.inf  # the second share's
    loss, _ = split.train_step(x, y[:8])
    assert not np.isfinite(loss)
    for name, value in split.get_weights().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert split.step == 0
    split.close()
    assert split._split is None


@pytest.mark.slow
def test_a_model_of_several_outputs_logs_each_outputs_loss_over_the_whole_batch(monkeypatch):
    # Each share's packed outputs carry that share's own mean loss per output: the logs must weigh them by rows.
    x, y = data()
    histories = []
    for setting in ("0", "1"):
        monkeypatch.setenv("ONNXTRAIN_SPLIT_STEP", setting)
        inputs = Input(8, 8, 1)
        trunk = Flatten()(MaxPooling2D(2)(Conv2D(4, 3, padding="same", activation="relu")(inputs)))
        kind, size = Dense(3, name="kind")(trunk), Dense(2, name="size")(trunk)
        model = Model(inputs=inputs, outputs=[kind, size], seed=5)
        with model:
            model.compile(optimizer=SGD(0.05), loss=["sparse_categorical_crossentropy", "mse"], threads=2)
            assert model._trainer.engine._shares == (2 if setting == "1" else 1)
            sizes = np.stack([x.mean(axis=(1, 2, 3)), x.std(axis=(1, 2, 3))], axis=1).astype(np.float32)
            history = model.fit(x[:96], [y[:96], sizes[:96]], epochs=2, batch_size=32, shuffle=False, verbose=0)
            histories.append(history.history)
    unsplit, split = histories
    assert set(split) == {"loss", "kind_loss", "size_loss"}
    for key, values in unsplit.items():
        np.testing.assert_allclose(split[key], values, rtol=1e-5, err_msg=key)
