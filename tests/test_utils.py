"""onnxtrain.utils against Keras 3's keras.utils.to_categorical and pad_sequences: the expected arrays below are what
Keras 3.15 returned for the same calls (KERAS_BACKEND=jax), written out; onnxtrain's one-hot rows are float32."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.utils import pad_sequences, to_categorical

TO_CATEGORICAL = [
    (([0, 2, 1], 3), [[1, 0, 0], [0, 0, 1], [0, 1, 0]]),
    ((np.array([[1], [0]]), None), [[0, 1], [1, 0]]),  # (N, 1) -> (N, classes); classes from the largest index
    ((np.array([[0, 1], [2, 0]]), 3), [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 0, 0]]]),
    ((np.array([1.0, 0.0]), 2), [[0, 1], [1, 0]]),  # integral floats, as Keras casts them
]


@pytest.mark.parametrize(("arguments", "keras"), TO_CATEGORICAL)
def test_to_categorical_gives_keras_one_hot_rows_in_float32(arguments, keras):
    one_hot = to_categorical(*arguments)
    assert one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot, np.array(keras, np.float32))


PAD_SEQUENCES = [
    (([[1, 2, 3], [4], [5, 6]],), {}, [[1, 2, 3], [0, 0, 4], [0, 5, 6]]),
    (([[1, 2, 3], [4], [5, 6]],), {"maxlen": 2}, [[2, 3], [0, 4], [5, 6]]),
    (([[1, 2, 3], [4], [5, 6]],), {"maxlen": 2, "padding": "post", "truncating": "post"}, [[1, 2], [4, 0], [5, 6]]),
    (([[1, 2, 3], [], [5]],), {"maxlen": 4, "value": 9, "padding": "post"}, [[1, 2, 3, 9], [9] * 4, [5, 9, 9, 9]]),
    (
        ([[[1, 2], [3, 4]], [[5, 6]]],),
        {"maxlen": 3, "dtype": "float32"},
        [[[0, 0], [1, 2], [3, 4]], [[0, 0], [0, 0], [5, 6]]],
    ),
]


@pytest.mark.parametrize(("arguments", "options", "keras"), PAD_SEQUENCES)
def test_pad_sequences_gives_keras_arrays(arguments, options, keras):
    padded = pad_sequences(*arguments, **options)
    assert padded.dtype == np.dtype(options.get("dtype", "int32"))  # Keras' default int32
    np.testing.assert_array_equal(padded, np.array(keras, padded.dtype))


def test_pad_sequences_feeds_an_embedding_with_its_padding_masked():
    from onnxtrain import Sequential
    from onnxtrain.layers import LSTM, Dense, Embedding, Input

    ids = pad_sequences([[3, 1, 2], [4], [2, 2]], maxlen=4)
    with Sequential.of(Input(4, dtype="int64"), Embedding(5, 3, mask_zero=True), LSTM(2), Dense(1), seed=0) as model:
        model.compile(optimizer="adam", loss="mse")
        # pre-padding is masked: a sequence gives the same output however many padding ids precede it
        model.fit(ids, np.zeros(3, np.float32), epochs=1, verbose=0)
        longer = pad_sequences([[3, 1, 2], [4], [2, 2]], maxlen=6)
        with Sequential.of(Input(6, dtype="int64"), Embedding(5, 3, mask_zero=True), LSTM(2), Dense(1), seed=0) as twin:
            twin.compile(optimizer="adam", loss="mse")
            twin.set_weights(model.get_weights())
            np.testing.assert_allclose(twin.predict(longer), model.predict(ids), rtol=1e-5, atol=1e-6)


BAD = [
    (
        lambda: to_categorical([0, 3], num_classes=3),
        InvalidArgumentError,
        r"in \[0, 2\]\. Received: 3 at flat position 1",
    ),
    (lambda: to_categorical([-1, 0]), InvalidArgumentError, r"Received: -1 at flat position 0"),
    (lambda: to_categorical([0.5]), InvalidArgumentError, r"integral class indices\. Received: dtype float64"),
    (lambda: to_categorical([0], num_classes=0), InvalidArgumentError, r"num_classes=0"),
    (lambda: pad_sequences([[1]], padding="left"), InvalidArgumentError, r'"pre" or "post"\. Received: \'left\''),
    (lambda: pad_sequences([[1]], maxlen=0), InvalidArgumentError, r"maxlen=0"),
    (lambda: pad_sequences("abc"), InvalidTypeError, r"list of sequences.*Received: str"),
    (lambda: pad_sequences([[1], 2]), InvalidTypeError, r"sequences\[1\] of type int"),
    (lambda: pad_sequences([[[1, 2]], [[1]]]), InvalidArgumentError, r"\(2,\).*\(1,\) in sequences\[1\]"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_is_refused_naming_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()
