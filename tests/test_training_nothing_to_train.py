"""fit's warning for a model with no trainable parameters (onnxtrain/training.py): Keras trains such a model
without a word; onnxtrain warns, and says what to do, which differs: unfreeze a layer, or add one with weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.layers import Dense, Flatten, Input, Softmax


def _fit_warnings(model: Sequential) -> list[str]:
    x = np.random.default_rng(0).standard_normal((8, 2, 3)).astype(np.float32)
    y = np.zeros_like(model.predict(x, verbose=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    return [str(w.message) for w in caught if "no trainable parameters" in str(w.message)]


@pytest.mark.slow
def test_a_model_without_any_layer_with_weights_is_told_to_add_one_naming_its_layers():
    with Sequential.of(Input(2, 3), Flatten(), Softmax(), seed=0) as model:
        model.compile(optimizer="adam", loss="mse")
        names = [layer.name for layer in model.layers[1:]]
        assert _fit_warnings(model) == [
            f"fit: the model has no trainable parameters: no layer has weights ('{names[0]}', '{names[1]}'), so "
            "training changes nothing. Add a layer with weights (e.g. Dense) to train."
        ]


@pytest.mark.slow
def test_a_model_whose_weights_are_all_frozen_is_told_to_unfreeze_them():
    with Sequential.of(Input(2, 3), Flatten(), Dense(2, trainable=False, activation="linear"), seed=0) as model:
        model.compile(optimizer="adam", loss="mse")
        (message,) = _fit_warnings(model)
        assert "its layers' weights are all frozen or non-trainable" in message
        assert message.endswith("Set trainable=True on the layers to train.") and "Add a layer" not in message
