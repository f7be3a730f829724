"""Sequential: a layer list checked, named and built when the model is made, and KotlinDL's summary table."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import Dense, Flatten, Input
from onnxtrain.sequential import Sequential


def test_summary_is_kotlindls_table():
    model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10))
    text = model.summary(print_fn=None)
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "dense_1(Dense)" in text and "[None, 300]" in text and "235500" in text
    assert "Total trainable params: 266610" in text
    assert "Total frozen params: 0" in text
    assert "Total params: 266610" in text
    assert model.print_summary(print_fn=None) == text


def test_a_layer_of_one_model_is_refused_by_another():
    dense = Dense(3)
    first = Sequential.of(Input(4), dense, seed=1)
    with pytest.raises(InvalidArgumentError, match=r"layers\[1\] \(dense_1, Dense\) already belongs to a model"):
        Sequential.of(Input(6), dense)
    assert first.layers[1].params["kernel"].shape == (4, 3)


def test_sequential_takes_numpy_seeds_and_refuses_a_name_that_is_not_text():
    assert Sequential.of(Input(2), Dense(2), seed=np.int64(5)).seed == 5
    with pytest.raises(InvalidArgumentError, match=r"name=\.\.\.\) expects a non-empty string. Received: name=123"):
        Sequential.of(Input(2), Dense(2), name=123)


def test_layers_passed_without_a_list_say_how_to_pass_them():
    with pytest.raises(InvalidTypeError, match=r"Sequential\(\[Input\(...\), Dense\(...\)\]\), or use Sequential\.of"):
        Sequential(Input(3), Dense(3))  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"Received: the layers as separate arguments: name=Dense\(...\), seed="):
        Sequential(Input(3), Dense(3), Dense(2))  # type: ignore[arg-type]
