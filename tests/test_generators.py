"""fit, evaluate and predict over Python generators and Keras PyDatasets (`onnxtrain._batch_stream`), against the
same batches given as arrays: the same batches in the same order give bit-identical losses and weights."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain._batch_stream import is_generator, is_py_dataset, is_streamed
from onnxtrain.callbacks import Callback, EarlyStopping
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from onnxtrain.layers import Concatenate, Dense, Input
from onnxtrain.progress import Progress

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 40)
W = RNG.uniform(0.5, 2.0, 40).astype(np.float32)
XV = RNG.normal(size=(12, 4)).astype(np.float32)
YV = RNG.integers(0, 3, 12)


def tiny() -> Sequential:
    model = Sequential.of(Input(4), Dense(8), Dense(3, activation="linear"), seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def batches(x, y, size, w=None, repeat=True):
    """A generator of (x, y) batches of `size` rows (looping over the data where `repeat`)."""
    while True:
        for start in range(0, len(x), size):
            rows = slice(start, start + size)
            yield (x[rows], y[rows]) if w is None else (x[rows], y[rows], w[rows])
        if not repeat:
            return


class Batches:
    """A keras.utils.PyDataset in all but name: len() batches, the i-th by index, on_epoch_end."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size
        self.read: list[int] = []
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.size)

    def __getitem__(self, index):
        self.read.append(index)
        rows = slice(index * self.size, (index + 1) * self.size)
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        self.epochs_ended += 1


def assert_same_weights(a, b):
    for name, value in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[name], value)


def quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where the data is enough
        return model.fit(*args, verbose=0, **kwargs)


# --- what counts as batches ------------------------------------------------------------------------------------
def test_generators_and_py_datasets_are_streamed_arrays_and_datasets_are_not():
    assert is_generator(batches(X, Y, 8)) and is_generator(iter([(X, Y)]))
    assert is_py_dataset(Batches(X, Y, 8)) and is_streamed(Batches(X, Y, 8))
    for data in (X, (X, Y), [X, Y], {"x": X}, Dataset(X, Y), "xy", range(0)):
        assert not is_generator(data)
    for data in (X, (X, Y), [X, Y], {"x": X}, Dataset(X, Y)):
        assert not is_streamed(data)


# --- fit: the same batches as arrays -----------------------------------------------------------------------------
def test_generator_fit_equals_the_array_fit_of_the_same_batches_bit_for_bit():
    with tiny() as arrays, tiny() as generator:
        expected = quiet_fit(arrays, X, Y, batch_size=8, epochs=3, shuffle=False)
        history = quiet_fit(generator, batches(X, Y, 8), steps_per_epoch=5, epochs=3, shuffle=False)
        assert history.history == expected.history
        assert history.params["steps"] == 5
        assert_same_weights(arrays, generator)


def test_shuffle_does_not_apply_to_a_generator_as_in_keras():
    with tiny() as shuffled, tiny() as ordered:
        a = quiet_fit(shuffled, batches(X, Y, 8), steps_per_epoch=5, epochs=2, shuffle=True)
        b = quiet_fit(ordered, batches(X, Y, 8), steps_per_epoch=5, epochs=2, shuffle=False)
        assert a.history == b.history


def test_a_generator_is_read_on_across_epochs_steps_per_epoch_at_a_time():
    seen = []

    def numbered():
        for i in range(100):
            seen.append(i)
            yield X[i % 5 * 8 : i % 5 * 8 + 8], Y[i % 5 * 8 : i % 5 * 8 + 8]

    with tiny() as model:
        quiet_fit(model, numbered(), steps_per_epoch=3, epochs=3)
    assert seen == list(range(9))  # no batch read twice, none skipped, none read ahead


def test_sample_weights_and_class_weights_of_a_generator_weigh_as_for_arrays():
    classes = {0: 1.0, 1: 3.0, 2: 0.5}
    with tiny() as arrays, tiny() as generator:
        expected = quiet_fit(arrays, X, Y, batch_size=8, epochs=2, shuffle=False, sample_weight=W, class_weight=classes)
        history = quiet_fit(
            generator, batches(X, Y, 8, W), steps_per_epoch=5, epochs=2, shuffle=False, class_weight=classes
        )
        assert history.history == expected.history
        assert_same_weights(arrays, generator)


def test_a_model_of_several_inputs_reads_dicts_from_a_generator():
    def two_inputs() -> Model:
        a, b = Input(3, name="a"), Input(1, name="b")
        model = Model([a, b], Dense(3, activation="linear")(Concatenate()([Dense(4)(a), b])), seed=1)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model

    def dict_batches():
        while True:
            for start in range(0, 40, 10):
                rows = slice(start, start + 10)
                yield {"a": X[rows, :3], "b": X[rows, 3:]}, Y[rows]

    with two_inputs() as arrays, two_inputs() as generator:
        expected = quiet_fit(arrays, [X[:, :3], X[:, 3:]], Y, batch_size=10, epochs=2, shuffle=False)
        history = quiet_fit(generator, dict_batches(), steps_per_epoch=4, epochs=2)
        assert history.history == expected.history
        assert_same_weights(arrays, generator)


def test_py_dataset_fit_equals_the_array_fit_and_ends_each_epoch():
    train, val = Batches(X, Y, 8), Batches(XV, YV, 5)
    with tiny() as arrays, tiny() as streamed:
        expected = quiet_fit(arrays, X, Y, batch_size=8, epochs=3, shuffle=False, validation_data=(XV, YV),
                             validation_batch_size=5)  # fmt: skip
        history = quiet_fit(streamed, train, epochs=3, shuffle=False, validation_data=val)
        assert history.history == expected.history
        assert_same_weights(arrays, streamed)
    assert train.epochs_ended == 3 and val.epochs_ended == 3  # after each epoch, and after each validation
    assert train.read == [*range(5), *range(5), *range(5)]  # batch 0 read once: checked, then the first epoch's


def test_py_dataset_shuffle_orders_its_batches_per_epoch_from_the_seed():
    def orders(seed):
        data = Batches(X, Y, 8)
        with tiny() as model:
            quiet_fit(model, data, epochs=3, seed=seed)
        read = data.read[1:]  # (the first read is the check of batch 0 before any step)
        return [read[i : i + 5] for i in range(0, 15, 5)]

    first = orders(3)
    assert all(sorted(epoch) == list(range(5)) for epoch in first)  # every batch once an epoch
    assert len({tuple(epoch) for epoch in first}) > 1  # a new order each epoch
    assert orders(3) == first and orders(4) != first


def test_py_dataset_steps_per_epoch_goes_on_through_its_batches_across_epochs():
    data = Batches(X, Y, 8)
    with tiny() as model:
        quiet_fit(model, data, epochs=3, steps_per_epoch=2, shuffle=False)
    assert data.read == [0, 1, 2, 3, 4, 0]  # (batch 0 is read once: its check's read is the first epoch's)
    with tiny() as model, pytest.raises(InvalidArgumentError, match=r"asks for more batches than the Batches has"):
        model.fit(Batches(X, Y, 8), steps_per_epoch=6, verbose=0)


# --- running out ---------------------------------------------------------------------------------------------------
def test_a_finite_generator_without_steps_per_epoch_is_one_epoch_then_fit_warns_and_stops():
    with tiny() as model, pytest.warns(UserWarning, match=r"^Your input ran out of data; interrupting training"):
        history = model.fit(batches(X, Y, 8, repeat=False), epochs=3, verbose=0)
    assert history.epochs == [1]
    with tiny() as arrays:
        expected = quiet_fit(arrays, X, Y, batch_size=8, shuffle=False)
    assert history.history == expected.history


def test_a_generator_that_runs_out_within_an_epoch_warns_and_stops_after_it():
    with tiny() as model, pytest.warns(UserWarning, match=r"gave 2 of the 3 batches of epoch 2"):
        history = model.fit(batches(X, Y, 8, repeat=False), steps_per_epoch=3, epochs=4, verbose=0)
    assert history.epochs == [1, 2]


# --- refused -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.fit(batches(X, Y, 8), Y, steps_per_epoch=2), InvalidArgumentError, r"takes no y=\.\.\."),
        (lambda m: m.fit(batches(X, Y, 8), sample_weight=W, steps_per_epoch=2), InvalidArgumentError, "sample_weight"),
        (lambda m: m.fit(batches(X, Y, 8), validation_split=0.2, steps_per_epoch=2), InvalidArgumentError, "split"),
        (lambda m: m.fit(iter([]), steps_per_epoch=2), InvalidArgumentError, "a generator that yields none"),
        (lambda m: m.fit(iter([X]), steps_per_epoch=2), InvalidTypeError, r"expects an \(x, y\) or \(x, y, sample"),
        (lambda m: m.fit(Batches(X[:0], Y[:0], 8)), InvalidArgumentError, r"at least one batch"),
        (lambda m: m.fit(batches(X, Y, 8), steps_per_epoch=0), InvalidArgumentError, r"steps_per_epoch=\.\.\.\)"),
        (lambda m: m.fit(X, Y, validation_data=(XV, YV), validation_freq=0), InvalidArgumentError, "validation_freq"),
        (lambda m: m.fit(X, Y, validation_data=(XV, YV), validation_steps=-1), InvalidArgumentError, "validation_st"),
    ],
)
def test_what_a_generator_fit_refuses_before_any_step(call, error, match):
    with tiny() as model:
        before = model.get_weights()
        with pytest.raises(error, match=match):
            call(model)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name])


def bad_third_batch(x3, y3):
    yield X[:8], Y[:8]
    yield X[8:16], Y[8:16]
    yield x3, y3


@pytest.mark.parametrize(
    ("x3", "y3", "error", "match"),
    [
        (
            X[:8, :3],
            Y[:8],
            ShapeError,
            r"^dataset batch 3 \(from the generator\): x expects shape \[None, 4\]\. Received: x\.shape=\(8, 3\)",
        ),
        (
            np.where(X[:8] > 1, np.nan, X[:8]),
            Y[:8],
            InvalidArgumentError,
            r"^dataset batch 3 \(from the generator\): x expects finite values",
        ),
        (X[:8], Y[:8] + 5, InvalidArgumentError, r"^dataset batch 3 \(from the generator\): .*label"),
        (X[:8], Y[:7], InvalidArgumentError, r"^dataset batch 3 \(from the generator\): "),
    ],
)
def test_a_bad_batch_is_refused_with_the_array_message_naming_the_batch(x3, y3, error, match):
    with tiny() as model, pytest.raises(error, match=match):
        model.fit(bad_third_batch(x3, y3), steps_per_epoch=3, verbose=0)


def test_a_batch_of_another_structure_than_the_first_is_refused():
    def mixed():
        yield X[:8], Y[:8], W[:8]
        yield X[8:16], Y[8:16]

    with tiny() as model, pytest.raises(InvalidArgumentError, match=r"batch 2 .* structure of the first batch"):
        model.fit(mixed(), steps_per_epoch=2, verbose=0)


# --- validation ----------------------------------------------------------------------------------------------------
def test_validation_freq_validates_every_kth_epoch_or_those_listed():
    with tiny() as model:
        history = quiet_fit(model, X, Y, epochs=4, validation_data=(XV, YV), validation_freq=2)
        assert [not math.isnan(v) for v in history.history["val_loss"]] == [False, True, False, True]
        history = quiet_fit(model, X, Y, epochs=3, validation_data=(XV, YV), validation_freq=[5, 7])
        assert [not math.isnan(v) for v in history.history["val_loss"]] == [True, False, True]  # epochs 5, 6, 7


def test_validation_steps_takes_the_next_batches_of_a_generator_each_validation():
    seen = []

    def numbered():
        for i in range(100):
            seen.append(i)
            yield XV[:4], YV[:4]

    with tiny() as model:
        quiet_fit(model, X, Y, epochs=3, validation_data=numbered(), validation_steps=2)
    assert seen == list(range(6))


def test_a_validation_generator_without_steps_is_read_once_and_refused_a_second_time():
    with tiny() as model:
        history = quiet_fit(model, X, Y, batch_size=8, validation_data=batches(XV, YV, 5, repeat=False))
        with tiny() as arrays:
            expected = quiet_fit(arrays, X, Y, batch_size=8, validation_data=(XV, YV), validation_batch_size=5)
        assert history.history == expected.history
        with pytest.raises(InvalidArgumentError, match=r"read it to its end"):
            model.fit(X, Y, epochs=2, validation_data=batches(XV, YV, 5, repeat=False), verbose=0)


# --- evaluate and predict ------------------------------------------------------------------------------------------
def test_evaluate_a_generator_or_py_dataset_as_the_arrays_of_its_batches():
    with tiny() as model:
        model.fit(X, Y, verbose=0)
        expected = model.evaluate(X[:16], Y[:16], batch_size=8)
        assert model.evaluate(batches(X, Y, 8), steps=2) == expected
        assert model.evaluate(X, Y, batch_size=8, steps=2) == expected
        assert model.evaluate(Batches(X, Y, 8), steps=2) == expected
        whole = model.evaluate(X, Y, batch_size=8)
        assert model.evaluate(Batches(X, Y, 8)) == whole
        with pytest.warns(UserWarning, match=r"ran out of data.*has 5 batches, fewer than the 7 steps asked"):
            assert model.evaluate(Batches(X, Y, 8), steps=7) == whole  # each batch once, as Keras
        uneven = model.evaluate(iter([(X[:3], Y[:3]), (X[3:40], Y[3:40])]))  # batches of any size
        np.testing.assert_allclose(uneven.loss, whole.loss, rtol=1e-6)


@pytest.mark.parametrize(
    "wrap",
    [lambda x, y: x, lambda x, y: (x,), lambda x, y: (x, y), lambda x, y: [x, y]],
    ids=["x", "(x,)", "xy", "list"],
)
def test_predict_reads_x_of_each_batch_as_keras(wrap):
    def stream():
        for start in range(0, 40, 16):
            yield wrap(X[start : start + 16], Y[start : start + 16])

    with tiny() as model:
        expected = model.predict_softly(X)
        np.testing.assert_array_equal(model.predict(stream()), model.predict(X))
        np.testing.assert_array_equal(model.predict(stream(), steps=2), model.predict(X[:32]))
        np.testing.assert_array_equal(model.predict(X, batch_size=16, steps=1), model.predict(X[:16]))
        np.testing.assert_array_equal(model.predict(Batches(X, Y, 16)), model.predict(X))
        assert expected.shape == (40, 3)


def test_predict_names_the_batch_it_refuses():
    with (
        tiny() as model,
        pytest.raises(ShapeError, match=r"^x\[0\]: x expects shape \[None, 4\]\. Received: x\.shape=\(8, 5\)"),
    ):
        model.predict(Batches(np.zeros((16, 5), np.float32), Y[:16], 8))


# --- callbacks and the progress display ----------------------------------------------------------------------------
def test_callbacks_see_a_generator_fit_as_an_array_fit():
    class Log(Callback):
        def __init__(self):
            self.calls = []

        def on_batch_end(self, batch, logs=None):
            self.calls.append(("batch", batch))

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append(("epoch", epoch))

    a, b = Log(), Log()
    with tiny() as arrays, tiny() as generator:
        quiet_fit(arrays, X, Y, batch_size=8, epochs=2, shuffle=False, callbacks=[a])
        quiet_fit(generator, batches(X, Y, 8), steps_per_epoch=5, epochs=2, callbacks=[b])
    assert a.calls == b.calls
    with tiny() as model:
        stop = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
        history = quiet_fit(model, batches(X, Y, 8), steps_per_epoch=5, epochs=5, callbacks=[stop])
        assert history.epochs == [1, 2]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_counts_an_epoch_of_unknown_length_and_learns_it():
    stream = Terminal()
    progress = Progress(1, steps=None, epochs=2, stream=stream)
    for epoch in (1, 2):
        progress.epoch_begin(epoch)
        for step in (1, 2, 3):
            progress.batch_end(step, {"loss": 1.0})
        progress.epoch_end(epoch, {"loss": 1.0})
    assert "Epoch 1/2" in stream.getvalue() and "3/3" in stream.getvalue()
    assert progress.steps == 3


def test_a_plain_line_leaves_out_a_count_nothing_gave():
    stream = io.StringIO()
    progress = Progress(2, steps=None, epochs=1, stream=stream)
    progress.epoch_begin(1)
    progress.epoch_end(1, {"loss": 0.5})
    assert stream.getvalue().startswith("Epoch 1/1 - ") and "batches" not in stream.getvalue()
