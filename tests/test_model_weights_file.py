"""Keras' `model.save_weights(path)` / `model.load_weights(path, skip_mismatch=False)`: one .npz of the parameters
by name, written crash-safely, read back by name into an uncompiled or a compiled model (KotlinDL's transfer
learning loads a trained base into a new model)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ModelExistsError, ModelFileError
from onnxtrain.layers import Dense, Input

RNG = np.random.default_rng(0)
X = RNG.random((32, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 32)


def base_model(seed: int = 0, head: int = 3) -> Sequential:
    return Sequential.of(Input(4), Dense(8), Dense(6), Dense(head, activation="linear"), seed=seed)


def assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_saved_weights_load_into_a_new_model_by_name(tmp_path):
    source = base_model(seed=0)
    written = source.save_weights(tmp_path / "base.weights.npz")
    assert written == tmp_path / "base.weights.npz"
    with np.load(written) as plain:  # numpy reads it as it is: one array per parameter, by name
        assert_same_weights(dict(plain), source.get_weights())
    target = base_model(seed=1)
    target.load_weights(str(written))
    assert_same_weights(target.get_weights(), source.get_weights())


def test_a_compiled_model_gets_the_weights_in_its_engine(tmp_path):
    with base_model(seed=0) as trained:
        trained.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        trained.fit(X, Y, epochs=2, batch_size=8, verbose=0)
        trained.save_weights(tmp_path / "w.npz")  # the engine's trained weights
        expected, weights = trained.predict_softly(X), trained.get_weights()
    with base_model(seed=1) as fresh:
        fresh.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        fresh.predict(X)  # a prediction session of the old weights, which the load must replace
        fresh.load_weights(tmp_path / "w.npz")
        assert_same_weights(fresh.get_weights(), weights)
        np.testing.assert_allclose(fresh.predict_softly(X), expected, rtol=1e-6, atol=1e-7)
        history = fresh.fit(X, Y, epochs=1, batch_size=8, verbose=0)  # and trains on from them
        assert np.isfinite(history.history["loss"][0])


def test_skip_mismatch_loads_a_trained_base_under_a_new_head_as_kotlindls_transfer_learning(tmp_path):
    trained = base_model(seed=0, head=3)
    trained.save_weights(tmp_path / "w.npz")
    new = base_model(seed=1, head=5)
    head_before = new.get_weights()["dense_3.kernel"]
    with pytest.raises(
        InvalidArgumentError,
        match=r"^load_weights: '.*w\.npz' does not fit this model: other shapes: dense_3\.kernel \(6, 3\) \(the "
        r"model's: \(6, 5\)\), dense_3\.bias \(3,\) \(the model's: \(5,\)\)\. Pass skip_mismatch=True",
    ):
        new.load_weights(tmp_path / "w.npz")
    assert_same_weights(new.get_weights(), base_model(seed=1, head=5).get_weights())  # nothing loaded
    with pytest.warns(UserWarning, match=r"skip_mismatch=True\) left out of .* other shapes: dense_3\.kernel"):
        new.load_weights(tmp_path / "w.npz", skip_mismatch=True)
    loaded, source = new.get_weights(), trained.get_weights()
    for name in ("dense_1.kernel", "dense_1.bias", "dense_2.kernel", "dense_2.bias"):
        np.testing.assert_array_equal(loaded[name], source[name])
    np.testing.assert_array_equal(loaded["dense_3.kernel"], head_before)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (lambda w: {k: v for k, v in w.items() if k != "dense_2.bias"}, r"parameters the file lacks: 'dense_2\.bias'"),
        (lambda w: {**w, "dense_9.kernel": np.zeros(2, np.float32)}, r"arrays for no parameter of the model: 'dense_9"),
    ],
)
def test_missing_and_unknown_parameters_are_refused_by_name_or_skipped(tmp_path, arrays, match):
    model = base_model()
    np.savez(tmp_path / "w.npz", **arrays({k: v + 1 for k, v in model.get_weights().items()}))
    with pytest.raises(InvalidArgumentError, match=match):
        model.load_weights(tmp_path / "w.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(tmp_path / "w.npz", skip_mismatch=True)
    assert len(caught) == 1 and "left out" in str(caught[0].message)
    np.testing.assert_array_equal(
        model.get_weights()["dense_1.kernel"], base_model().get_weights()["dense_1.kernel"] + 1
    )


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        (
            "model.weights.h5",
            InvalidArgumentError,
            r"^save_weights\(path=...\) expects a path ending in \.npz\. Received: 'model\.weights\.h5': Keras writes "
            r"HDF5 \(\.weights\.h5\) with h5py; onnxtrain writes numpy's \.npz instead, with no h5py dependency .* Use "
            r"e\.g\. 'model\.weights\.npz'\.$",
        ),
        ("model.keras", InvalidArgumentError, r"Received: 'model\.keras': Keras writes HDF5"),
        (
            "weights",
            InvalidArgumentError,
            r"Received: 'weights': the weights file is numpy's \.npz.* Use e\.g\. 'weights\.weights\.npz'",
        ),
        ("", InvalidTypeError, r"save_weights\(path=...\) expects a file path ending in \.npz\. Received: ''"),
    ],
)
def test_save_weights_refuses_what_is_not_an_npz_path(tmp_path, monkeypatch, path, error, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        base_model().save_weights(path)
    assert not list(tmp_path.iterdir())


def test_files_and_folders_that_hold_no_weights_are_refused(tmp_path):
    model = base_model()
    with pytest.raises(ModelFileError, match=r"load_weights found no file '.*missing\.npz'"):
        model.load_weights(tmp_path / "missing.npz")
    with pytest.raises(InvalidArgumentError, match=r"Received: '.*', a folder; .*load_model\(folder\)\.get_weights"):
        model.load_weights(tmp_path)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ModelFileError, match=r"text\.npz' is not a readable \.npz archive"):
        model.load_weights(tmp_path / "text.npz")
    np.savez(tmp_path / "pickle.npz", **{"dense_1.kernel": np.array([object()], dtype=object)})
    with pytest.raises(ModelFileError, match=r"Python objects .* never unpickles"):
        model.load_weights(tmp_path / "pickle.npz")
    weights = model.get_weights()
    weights["dense_1.bias"][2] = np.nan
    np.savez(tmp_path / "nan.npz", **weights)
    with pytest.raises(InvalidArgumentError, match=r"set_weights: dense_1\.bias expects finite float32 values"):
        model.load_weights(tmp_path / "nan.npz")
    with pytest.raises(InvalidArgumentError, match=r"load_weights\(skip_mismatch=...\) expects a bool"):
        model.load_weights(tmp_path / "nan.npz", skip_mismatch="yes")


def test_save_weights_replaces_a_file_atomically_unless_told_not_to(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    first = base_model(seed=0)
    first.save_weights(path)
    with pytest.raises(ModelExistsError, match=r"already exists and overwrite=False"):
        base_model(seed=1).save_weights(path, overwrite=False)

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", fail)  # the write dies half-way
    with pytest.raises(OSError, match="The disk is full"):
        base_model(seed=1).save_weights(path)
    monkeypatch.undo()
    assert [entry.name for entry in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left
    second = base_model(seed=2)
    second.load_weights(path)  # the old file, whole
    assert_same_weights(second.get_weights(), first.get_weights())
    base_model(seed=1).save_weights(path)  # overwrite=True, the default
    second.load_weights(path)
    assert_same_weights(second.get_weights(), base_model(seed=1).get_weights())
