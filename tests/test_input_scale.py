"""onnxtrain/_input_scale.py: pixels scaled twice, by the data's input_scale and a first Rescaling layer."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Flatten, Input, Rescaling

PIXELS = np.arange(8 * 4, dtype=np.float32).reshape(8, 2, 2, 1) / 255  # as fashion_mnist() scales them
LABELS = np.arange(8) % 2


def _model(*first: object) -> Sequential:
    return Sequential.of(Input(2, 2, 1), *first, Flatten(), Dense(2, activation="linear"), seed=0)


def test_scaled_pixels_into_a_first_rescaling_of_one_over_255_are_refused_before_training():
    model = _model(Rescaling(1 / 255))
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError) as caught:
            model.fit(Dataset(PIXELS, LABELS, input_scale=1 / 255), epochs=1, verbose=0)
        assert all(np.array_equal(before[k], v) for k, v in model.get_weights().items())  # nothing trained
    message = str(caught.value)
    assert "pixels already divided by 255 (a Dataset of input_scale 0.00392157" in message, message
    assert "Rescaling(scale=0.00392157), divides them again: the model would train on pixels / 65025" in message
    assert "Remove that Rescaling layer" in message


@pytest.mark.parametrize(
    ("first", "data"),
    [
        ((Rescaling(1 / 255),), Dataset(PIXELS * 255, LABELS)),  # raw 0-255 floats: Keras' own habit, once
        ((Rescaling(2.0),), Dataset(PIXELS, LABELS, input_scale=1 / 255)),  # not a pixel rescaling
        ((), Dataset(PIXELS, LABELS, input_scale=1 / 255)),  # no Rescaling
    ],
    ids=["unscaled data", "other scale", "no rescaling"],
)
def test_data_and_rescaling_that_scale_once_train(first, data):
    model = _model(*first)
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
