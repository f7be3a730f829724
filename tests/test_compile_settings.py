"""compile's settings: the checks that refuse a model that could only train into nothing, and the warnings about a
last activation that does not fit the loss (`onnxtrain._compile_settings`)."""

from __future__ import annotations

import warnings

import pytest

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.losses import Losses
from onnxtrain.sequential import Sequential


def test_activation_on_logits_warns_and_linear_or_default_logits_do_not():
    with (
        Sequential.of(Input(3), Dense(2, activation="relu")) as model,
        pytest.warns(UserWarning, match=r"expects logits.*'relu'"),
    ):
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
    for last in (Dense(2, activation="linear"), Dense(2)):
        with Sequential.of(Input(3), last) as model, warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)


@pytest.mark.parametrize("activation", ["relu", "linear", "softmax"])
def test_binary_cross_entropy_without_a_sigmoid_warns(activation):
    with (
        Sequential.of(Input(3), Dense(1, activation=activation)) as model,
        pytest.warns(UserWarning, match=rf"expects probabilities.*'{activation}'.*activation=\"sigmoid\""),
    ):
        model.compile(loss="binary_crossentropy")
    with Sequential.of(Input(3), Dense(1, activation="sigmoid")) as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(loss="binary_crossentropy")


def test_models_that_could_only_train_into_nothing_are_refused_at_compile():
    with pytest.raises(InvalidArgumentError, match=r"no trainable parameters.*flatten_1 \(Flatten\)"):
        Sequential.of(Input(3), Flatten()).compile(loss="mse")
    with pytest.raises(InvalidArgumentError, match="no trainable parameters"):
        Sequential.of(Input(3), Dense(2, trainable=False)).compile(loss="mse")
    with pytest.raises(InvalidArgumentError, match=r"at least 2 output units.*dense_1 with 1 unit"):
        Sequential.of(Input(3), Dense(1, activation="linear")).compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)


def test_the_activation_warning_points_at_the_line_that_calls_compile():
    with Sequential.of(Input(3), Dense(2, activation="relu")) as model, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile(loss=Losses.SOFT_MAX_CROSS_ENTROPY_WITH_LOGITS)
    assert [w.filename for w in caught if "expects logits" in str(w.message)] == [__file__]
