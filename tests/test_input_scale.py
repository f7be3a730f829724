"""onnxtrain/_input_scale.py: pixels scaled twice, by the data's input_scale and a first Rescaling layer."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain._input_scale import rescales_pixels_again
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import (
    CenterCrop,
    Conv2D,
    Dense,
    Flatten,
    Input,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
    Resizing,
)

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


def _functional(*middle: object) -> Model:
    inputs = Input(2, 2, 1)
    x = inputs
    for layer in middle:
        x = layer(x)
    return Model(inputs, Dense(2, activation="linear")(Flatten()(x)))


@pytest.mark.parametrize(
    "before",
    [
        RandomFlip("horizontal", seed=0),
        RandomRotation(0.1, seed=0),
        RandomZoom(0.1, seed=0),
        RandomTranslation(0.1, 0.1, seed=0),
        RandomCrop(2, 2, seed=0),
        Resizing(2, 2),
        CenterCrop(2, 2),
        RandomContrast(0.5, seed=0),  # these two keep the values in their value_range
        RandomBrightness(0.2, seed=0),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_a_rescaling_after_layers_that_only_move_pixels_or_keep_their_range_is_found(before):
    assert rescales_pixels_again(_model(before, Rescaling(1 / 255, name="scale")).layers, 1 / 255) == ("scale", 1 / 255)


def test_a_rescaling_after_augmentation_in_a_functional_model_is_found():
    model = _functional(RandomFlip("horizontal", seed=0), Rescaling(1 / 255, name="scale"))
    assert rescales_pixels_again(model.layers, 1 / 255) == ("scale", 1 / 255)


def test_a_rescaling_inside_a_nested_model_at_the_start_is_found():
    inner = Sequential.of(Input(2, 2, 1), RandomFlip("horizontal", seed=0), Rescaling(1 / 255, name="scale"))
    assert rescales_pixels_again(_functional(inner).layers, 1 / 255) == ("scale", 1 / 255)


@pytest.mark.parametrize(
    "layers",
    [
        (Conv2D(1, 1), Rescaling(1 / 255)),  # features, not pixels
        (Sequential.of(Input(2, 2, 1), Conv2D(1, 1)), Rescaling(1 / 255)),  # a nested model that computes
    ],
    ids=["after Conv2D", "after a nested model"],
)
def test_a_rescaling_after_a_layer_that_changes_values_is_not_refused(layers):
    model = _functional(*layers) if isinstance(layers[0], Sequential) else _model(*layers)
    assert rescales_pixels_again(model.layers, 1 / 255) is None


@pytest.mark.slow
def test_fit_refuses_a_rescaling_after_a_random_flip():
    model = _model(RandomFlip("horizontal", seed=0), Rescaling(1 / 255))
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        with pytest.raises(InvalidArgumentError, match="divides them again"):
            model.fit(Dataset(PIXELS, LABELS, input_scale=1 / 255), epochs=1, verbose=0)
