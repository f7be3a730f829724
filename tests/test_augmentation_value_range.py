"""onnxtrain/_input_scale.py's `refuse_raw_value_ranges`: pixels the loaders divided by 255 meet augmentation layers
whose value_range is Keras' default (0, 255), the range of raw pixels, at the model's start: fit refuses them, as it
refuses a Rescaling of scaled pixels; and so when the model's own input_scale divides integer pixels first
(`refuse_raw_value_ranges_of_model`)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from onnxtrain import Model, Sequential
from onnxtrain._input_scale import refuse_raw_value_ranges
from onnxtrain.datasets import Dataset
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import (
    Conv2D,
    Dense,
    Flatten,
    Input,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomZoom,
    Rescaling,
)

PIXELS = np.arange(8 * 4, dtype=np.float32).reshape(8, 2, 2, 1) / 255  # as fashion_mnist() scales them
LABELS = np.arange(8) % 2


def _model(*first: object) -> Sequential:
    return Sequential.of(Input(2, 2, 1), *first, Flatten(), Dense(2, activation="linear"), seed=0)


REFUSED = [  # the layers before Flatten; the names the message gives, in order
    ("RandomBrightness", lambda: (RandomBrightness(0.2, seed=0, name="bright"),), ["bright"]),
    ("RandomContrast", lambda: (RandomContrast(0.2, seed=0, name="contrast"),), ["contrast"]),
    (
        "both",
        lambda: (RandomBrightness(0.2, seed=0, name="bright"), RandomContrast(0.2, seed=0, name="contrast")),
        ["bright", "contrast"],
    ),
    (
        "after layers that move pixels",
        lambda: (RandomFlip("horizontal", seed=0), RandomZoom(0.1, seed=0), RandomBrightness(0.2, name="bright")),
        ["bright"],
    ),
    (
        "one of two",
        lambda: (RandomBrightness(0.2, (0, 1), seed=0, name="fine"), RandomContrast(0.2, seed=0, name="contrast")),
        ["contrast"],
    ),
    (
        "inside a nested model at the start",
        lambda: (Sequential.of(Input(2, 2, 1), RandomFlip("horizontal"), RandomContrast(0.2, name="contrast")),),
        ["contrast"],
    ),
]


@pytest.mark.parametrize(("first", "names"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_a_value_range_of_raw_pixels_at_the_start_is_refused_for_scaled_pixels(first, names):
    with _model(*first()) as model:
        with pytest.raises(InvalidArgumentError) as caught:
            refuse_raw_value_ranges(model.layers, 1 / 255, "fit's training data")
    message = str(caught.value)
    assert message.startswith("fit's training data holds pixels already divided by 255 (input_scale 0.00392157"), (
        message
    )
    assert re.findall(r"'(\w+)' \(Random\w+, value_range=\(0, 255\)\)", message) == names, message
    assert "Give them the data's range, value_range=(0, 1)" in message, message


ACCEPTED = [  # the layers before Flatten, the data's scale
    (
        "value_range (0, 1)",
        lambda: (RandomBrightness(0.2, (0, 1), seed=0), RandomContrast(0.2, (0, 1), seed=0)),
        1 / 255,
    ),
    ("raw pixels", lambda: (RandomBrightness(0.2, seed=0), RandomContrast(0.2, seed=0)), 1.0),
    ("after a layer that computes", lambda: (Conv2D(1, 1), RandomBrightness(0.2, seed=0)), 1 / 255),
    ("after Keras' Rescaling", lambda: (Rescaling(1 / 255), RandomContrast(0.2, seed=0)), 1.0),
    ("a scale that is no pixel scaling", lambda: (RandomBrightness(0.2, seed=0),), 0.5),
    ("no augmentation", lambda: (), 1 / 255),
]


@pytest.mark.parametrize(("first", "scale"), [r[1:] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_value_ranges_that_fit_the_data_are_accepted(first, scale):
    with _model(*first()) as model:
        assert refuse_raw_value_ranges(model.layers, scale, "fit's training data") is None


def test_a_value_range_layer_after_a_nested_model_that_computes_is_not_refused():
    inputs = Input(2, 2, 1)
    inner = Sequential.of(Input(2, 2, 1), Conv2D(1, 1))
    model = Model(inputs, Dense(2, activation="linear")(Flatten()(RandomBrightness(0.2, seed=0)(inner(inputs)))))
    with model:
        assert refuse_raw_value_ranges(model.layers, 1 / 255, "fit's training data") is None


def test_fit_refuses_scaled_pixels_into_a_default_random_brightness_before_training():
    model = _model(RandomBrightness(0.2, seed=0, name="bright"))
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=r"'bright' \(RandomBrightness, value_range=\(0, 255\)\)"):
            model.fit(Dataset(PIXELS, LABELS, input_scale=1 / 255), epochs=1, verbose=0)
        assert all(np.array_equal(before[k], v) for k, v in model.get_weights().items())  # nothing trained
        assert model.input_scale == 1.0  # nor adopted


def test_fit_trains_scaled_pixels_with_a_value_range_of_0_to_1_and_adopts_their_scale():
    model = _model(RandomBrightness(0.2, (0, 1), seed=0), RandomContrast(0.2, (0, 1), seed=0))
    with model:
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = model.fit(Dataset(PIXELS, LABELS, input_scale=1 / 255), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert model.input_scale == 1 / 255


RAW_PIXELS = np.arange(8 * 4, dtype=np.uint8).reshape(8, 2, 2, 1) * 8  # uint8, as scale_pixels=False gives them


@pytest.mark.parametrize("data", ["arrays", "Dataset"])
def test_fit_refuses_a_model_input_scale_that_divides_pixels_before_a_default_random_brightness(data):
    # docs/images.md's route for unscaled pixels: uint8 in, model.input_scale = 1 / 255; the model divides first
    model = _model(RandomBrightness(0.5, seed=0, name="bright"))
    with model:
        model.input_scale = 1 / 255
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        before = model.get_weights()
        given = (RAW_PIXELS, LABELS) if data == "arrays" else (Dataset(RAW_PIXELS, LABELS),)
        with pytest.raises(InvalidArgumentError) as caught:
            model.fit(*given, epochs=1, verbose=0)
        assert all(np.array_equal(before[k], v) for k, v in model.get_weights().items())  # nothing trained
    message = str(caught.value)
    assert message.startswith("fit: the model's input_scale is 0.00392157 (1/255"), message
    assert "'bright' (RandomBrightness, value_range=(0, 255))" in message, message
    assert "value_range=(0, 1)" in message, message


MODEL_SCALES = [  # the layers before Flatten, the model's input_scale, whether fit refuses
    ("1/255 and (0, 255)", lambda: (RandomContrast(0.2, seed=0, name="contrast"),), 1 / 255, True),
    ("1/127.5 and (0, 255)", lambda: (RandomContrast(0.2, seed=0, name="contrast"),), 1 / 127.5, True),
    ("1/255 and (0, 1)", lambda: (RandomContrast(0.2, (0, 1), seed=0),), 1 / 255, False),
    ("1 and (0, 255): raw pixels", lambda: (RandomContrast(0.2, seed=0),), 1.0, False),
    ("1 then Rescaling", lambda: (RandomContrast(0.2, seed=0), Rescaling(1 / 255)), 1.0, False),
]


@pytest.mark.parametrize(("first", "scale", "refused"), [r[1:] for r in MODEL_SCALES], ids=[r[0] for r in MODEL_SCALES])
def test_fit_judges_integer_pixels_by_the_model_input_scale_that_divides_them(first, scale, refused):
    model = _model(*first())
    with model:
        model.input_scale = scale
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        if refused:
            with pytest.raises(InvalidArgumentError, match=r"'contrast' \(RandomContrast, value_range=\(0, 255\)\)"):
                model.fit(RAW_PIXELS, LABELS, epochs=1, verbose=0)
        else:
            with warnings.catch_warnings():  # input_scale 1 on uint8 without a Rescaling: raw pixels, warned of
                warnings.simplefilter("ignore", UserWarning)
                history = model.fit(RAW_PIXELS, LABELS, epochs=1, verbose=0)
            assert np.isfinite(history.history["loss"][0])
            assert model.input_scale == scale


def test_train_on_batch_refuses_a_model_input_scale_that_divides_pixels_as_fit_does():
    model = _model(RandomBrightness(0.5, seed=0, name="bright"))
    with model:
        model.input_scale = 1 / 255
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        before = model.get_weights()
        with pytest.raises(InvalidArgumentError, match=r"^train_on_batch: the model's input_scale is 0.00392157"):
            model.train_on_batch(RAW_PIXELS, LABELS)
        assert all(np.array_equal(before[k], v) for k, v in model.get_weights().items())
