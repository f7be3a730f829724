"""What a Model's graph is checked for when the model is made (`onnxtrain._model_base.check_model_base`)."""

from __future__ import annotations

import pytest

from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import BatchNormalization, Concatenate, Dense, Input
from onnxtrain.model import Model


def test_an_input_named_like_a_graph_input_is_refused():
    a, labels = Input(4, name="a"), Input(4, name="labels")
    with pytest.raises(InvalidArgumentError, match="'labels'"):
        Model([a, labels], Dense(2)(Concatenate()([a, labels])))


def test_a_shared_batch_normalization_is_refused():
    a, b, norm = Input(4), Input(4), BatchNormalization()
    with pytest.raises(UnsupportedError, match="called more than once"):
        Model([a, b], Dense(2)(Concatenate()([norm(a), norm(b)])))
