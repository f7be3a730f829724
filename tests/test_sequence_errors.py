"""The mistakes of a Keras user with sequence models, and what onnxtrain says: examples that are padding only behind
a NaN loss (`_padding_examples`), sequences of different lengths given as they are (pad_sequences), and an Input of
no fixed length (the advice for token ids, and for a float series with a feature axis)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain._padding_examples import padding_note, padding_only_rows, padding_values
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, NonFiniteLossError
from onnxtrain.layers import (
    LSTM,
    Concatenate,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    Input,
    Masking,
)
from onnxtrain.utils import pad_sequences

RNG = np.random.default_rng(0)


def _text_model(body: str = "average") -> Sequential:
    pooled = GlobalAveragePooling1D() if body == "average" else LSTM(4)
    model = Sequential([Input(shape=(10,), dtype="int64"), Embedding(30, 8, mask_zero=True), pooled, Dense(2)], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _texts(empty: list[int], n: int = 24) -> np.ndarray:
    """`n` padded texts, those at `empty` with no token (a text whose words are all out of the vocabulary)."""
    sequences = [[] if i in empty else list(RNG.integers(1, 30, size=RNG.integers(1, 10))) for i in range(n)]
    return pad_sequences(sequences, maxlen=10)


# --- examples that are padding only -------------------------------------------------------------------------------
def test_a_nan_loss_from_padding_only_examples_names_them_before_the_usual_fixes():
    """GlobalAveragePooling1D over no unmasked step divides by zero (NaN, as Keras' does); the message names the
    examples of the batch by their index in x (fit shuffles them into other rows) and keeps the usual fixes."""
    x, y = _texts([5, 17]), RNG.integers(0, 2, 24)
    with _text_model() as model:
        assert np.isnan(model.predict_softly(x[5:6])).all()
        with pytest.raises(
            NonFiniteLossError,
            match=r"update was skipped\)\. 2 examples of the batch are padding only \(every position masked, by "
            r"Embedding\(mask_zero=True\) or Masking\): x\[(5|17)\], x\[(5|17)\]\. A layer that averages .*"
            r"GlobalAveragePooling1D.* Lower the learning rate",
        ):
            model.fit(x, y, epochs=1, batch_size=24, verbose=0)
        with pytest.raises(
            NonFiniteLossError, match=r"batch 1/3; .* 1 example of the batch is padding only .*: x\[5\]\."
        ):
            model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        with pytest.raises(NonFiniteLossError, match=r"no update was made\. 1 example of the batch is padding only.*"):
            model.train_on_batch(x[4:7], y[4:7])


def test_a_recurrent_layer_reads_padding_only_examples_without_nan():
    """Keras' LSTM keeps its initial state over masked steps: no NaN, and so no message to give."""
    x, y = _texts([3]), RNG.integers(0, 2, 24)
    with _text_model("lstm") as model:
        history = model.fit(x, y, epochs=1, batch_size=24, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def _masked_models() -> list[tuple[Model | Sequential, list[float | None]]]:
    ids, series, other = Input(4, dtype="int64"), Input(4, 2), Input(3)
    mixed = Model(
        [ids, series, other],
        Dense(1)(
            Concatenate()(
                [GlobalAveragePooling1D()(Embedding(9, 2, mask_zero=True)(ids)), LSTM(2)(Masking(-1.0)(series)), other]
            )
        ),
    )
    inner_ids = Input(4, dtype="int64")
    inner = Model(inner_ids, GlobalAveragePooling1D()(Embedding(9, 2, mask_zero=True)(inner_ids)))
    outer_ids = Input(4, dtype="int64")
    nested = Model(outer_ids, Dense(1)(inner(outer_ids)))
    plain = Sequential([Input(4, dtype="int64"), Embedding(9, 2), GlobalAveragePooling1D()])
    return [(mixed, [0.0, -1.0, None]), (nested, [0.0]), (plain, [None])]


@pytest.mark.parametrize("case", [0, 1, 2], ids=["inputs of a Model", "a nested Model", "no mask"])
def test_padding_values_are_those_of_the_masking_layers_that_read_each_input(case):
    model, expected = _masked_models()[case]
    assert padding_values(model.graph) == expected


def test_padding_only_rows_are_those_masked_in_every_position_of_some_input():
    model, _ = _masked_models()[0]
    ids = np.array([[1, 2, 0, 0], [0, 0, 0, 0], [3, 0, 0, 0], [5, 5, 5, 5]])
    series = np.ones((4, 4, 2), np.float32)
    series[2] = -1.0  # every step of example 2 equals Masking's mask_value
    series[3, :, 0] = -1.0  # one feature only: its steps are not masked
    other = np.zeros((4, 3), np.float32)  # zeros, but no masking layer reads this input
    np.testing.assert_array_equal(padding_only_rows(model.graph, [ids, series, other]), [1, 2])


@pytest.mark.parametrize(
    ("examples", "expected"),
    [
        (None, " 7 examples of the batch are padding only (every position masked, by Embedding(mask_zero=True) or "
         "Masking): row 0, row 1, row 2, row 3, row 4 and 2 more."),
        (np.arange(100, 107), " 7 examples of the batch are padding only (every position masked, by "
         "Embedding(mask_zero=True) or Masking): x[100], x[101], x[102], x[103], x[104] and 2 more."),
    ],
)  # fmt: skip
def test_the_padding_note_names_five_examples_and_counts_the_rest(examples, expected):
    model = _text_model()
    note = padding_note(model.graph, [np.zeros((7, 10), np.int64)], examples)
    assert note.startswith(expected)
    assert padding_note(model.graph, [np.ones((7, 10), np.int64)], examples) == ""


# --- sequences of different lengths -------------------------------------------------------------------------------
RAGGED = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [1] * 12]


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda m: m.fit(RAGGED, np.zeros(3, np.int64), verbose=0), "x"),
        (lambda m: m.predict(RAGGED), "x"),
        (lambda m: m.predict(np.array(RAGGED, dtype=object)), "x"),
        (
            lambda m: m.fit(RNG.integers(1, 9, (3, 10)), np.zeros(3), validation_data=(RAGGED, np.zeros(3)), verbose=0),
            "x",
        ),
    ],
    ids=["fit", "predict", "object array", "validation_data"],
)
def test_sequences_of_different_lengths_are_refused_with_pad_sequences(call, argument):
    with (
        _text_model() as model,
        pytest.raises(
            InvalidTypeError,
            match=r"Its sequences have lengths 3 to 12: pad them to the length n of the model's Input first, "
            rf"onnxtrain\.utils\.pad_sequences\({argument}, maxlen=n\) \(Keras' pad_sequences",
        ),
    ):
        call(model)


def test_a_ragged_list_of_numbers_and_lists_gets_no_padding_advice():
    with _text_model() as model, pytest.raises(InvalidTypeError, match=r"Received: a ragged list$"):
        model.predict([1, [2, 3]])


# --- an Input of no fixed length -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "advice"),
    [
        (
            lambda: Input(shape=(None,), dtype="int64"),
            r"Input\(shape=\(40,\), dtype='int64'\); with Embedding\(\.\.\., mask_zero=True\)",
        ),
        (lambda: Input(shape=(None,)), r"Input\(shape=\(40,\), dtype='int64'\)"),
        (
            lambda: Input(shape=(None, 3)),
            r"For series of different lengths.*pad_sequences\(series, maxlen=40, dtype='float32', value=0\.0\).*"
            r"Input\(shape=\(40, 3\)\); a Masking\(mask_value=0\.0\) layer after it",
        ),
        (lambda: Input(shape=(None, None)), r"Input\(shape=\(40, features\)\)"),
        (lambda: Input(shape=(None, None, 3)), r"Resize or pad the examples to one size"),
    ],
    ids=["int64 ids", "float ids", "float series", "no feature size", "images"],
)  # fmt: skip
def test_an_input_of_no_fixed_length_says_how_to_pad_for_its_kind(make, advice):
    with pytest.raises(InvalidArgumentError, match=r"has no size at dims\[0\] \(dims\[0\] is None\).*" + advice):
        make()
