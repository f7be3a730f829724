"""`_layer_names`: Keras' automatic layer names, and names held unique in a model."""

from __future__ import annotations

import pytest

from onnxtrain._layer_names import name_layers, to_snake_case
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import Functional
from onnxtrain.layers import Conv2D, Dense, Flatten, Input

# Keras 3's names for these classes (keras.src.utils.naming.to_snake_case, as `layer.name` shows them)
KERAS_NAMES = [
    ("Dense", "dense"),
    ("Conv2D", "conv2d"),
    ("MaxPooling2D", "max_pooling2d"),
    ("GlobalAveragePooling2D", "global_average_pooling2d"),
    ("BatchNormalization", "batch_normalization"),
    ("ReLU", "re_lu"),
]


@pytest.mark.parametrize(("class_name", "expected"), KERAS_NAMES)
def test_to_snake_case_names_a_class_as_keras_does(class_name: str, expected: str) -> None:
    assert to_snake_case(class_name) == expected


def test_unnamed_layers_are_numbered_per_class_skipping_taken_names() -> None:
    layers = [Input(4), Dense(3, name="dense_2"), Flatten(), Dense(3), Conv2D(2, 3), Dense(3)]
    name_layers(layers)
    assert [layer.name for layer in layers] == ["input_1", "dense_2", "flatten_1", "dense_1", "conv2d_1", "dense_3"]


def test_two_layers_with_one_name_are_refused() -> None:
    x = Input(2)
    with pytest.raises(InvalidArgumentError, match=r"unique in a model. Received duplicates: \['same'\]"):
        Functional(x, Dense(2, name="same")(Dense(2, name="same")(x)))
