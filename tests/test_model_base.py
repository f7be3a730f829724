"""What a Model's graph is checked for when the model is made (`onnxtrain._model_base.check_model_base`), and at
compile (`check_probability_outputs`)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.layers import BatchNormalization, Concatenate, Dense, Input
from onnxtrain.model import Model
from onnxtrain.sequential import Sequential


def test_an_input_named_like_a_graph_input_is_refused():
    a, labels = Input(4, name="a"), Input(4, name="labels")
    with pytest.raises(InvalidArgumentError, match="'labels'"):
        Model([a, labels], Dense(2)(Concatenate()([a, labels])))


def test_a_shared_batch_normalization_is_refused():
    a, b, norm = Input(4), Input(4), BatchNormalization()
    with pytest.raises(UnsupportedError, match="called more than once"):
        Model([a, b], Dense(2)(Concatenate()([norm(a), norm(b)])))


def _heads(second: str, inputs: tuple[str, ...] = ("x",)) -> Model:
    xs = [Input(4, name=name) for name in inputs]
    h = Dense(6, name="trunk")(xs[0] if len(xs) == 1 else Concatenate()(xs))
    return Model(xs, [Dense(3, activation="linear", name="kind")(h), Dense(3, activation="softmax", name=second)(h)])


def test_an_output_named_like_another_outputs_probabilities_is_refused_at_compile_naming_both():
    with _heads("kind_probabilities") as model:
        with pytest.raises(InvalidArgumentError) as raised:
            model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
        assert not model.is_compiled
    message = str(raised.value)
    assert message.startswith("Output 'kind' is trained with softmax cross-entropy, so the exported model")
    assert "named 'kind_probabilities'; output layer 'kind_probabilities' has that name already" in message
    assert "Rename that layer, e.g. name='kind_probs', or the output layer 'kind'." in message


def test_an_input_named_like_an_outputs_probabilities_is_refused_at_compile():
    with _heads("size", inputs=("kind_probabilities", "b")) as model:
        with pytest.raises(InvalidArgumentError, match=r"; Input layer 'kind_probabilities' has that name already"):
            model.compile(optimizer="adam", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})


def test_the_name_is_free_when_the_output_has_no_probabilities():
    with _heads("kind_probabilities") as model:
        model.compile(optimizer="adam", loss="mse")  # no softmax cross-entropy: no second output
        assert [p.shape for p in model.predict(np.zeros((2, 4), np.float32))] == [(2, 3), (2, 3)]


def test_get_layer_finds_a_layer_by_name_or_index_as_keras_does():
    model = Sequential([Input(4), Dense(3, name="hidden"), Dense(2)])
    assert model.get_layer("hidden") is model.layers[1]
    assert model.get_layer(index=-1) is model.layers[2] and model.get_layer(index=0) is model.layers[0]
    with pytest.raises(InvalidArgumentError, match=r"no layer named 'hiden'\. The model's layers: \['input_1', 'hid"):
        model.get_layer("hiden")
    with pytest.raises(InvalidArgumentError, match=r"an int in \[-3, 2\] \(the model has 3 layers\)\. Received: in"):
        model.get_layer(index=3)
    with pytest.raises(InvalidArgumentError, match=r"a name or an index, one of them"):
        model.get_layer()


def test_count_params_is_keras_int_total_and_param_counts_splits_it():
    # Keras 3.15 counts 97 for this model: 6*8+8, BatchNormalization's 4*8 (16 trainable, 16 moving statistics),
    # 8*1+1.
    model = Sequential(
        [Input(6), Dense(8, activation="relu"), BatchNormalization(), Dense(1, activation="linear")], seed=0
    )
    count = model.count_params()
    assert type(count) is int and count == 97 and f"{count:,} parameters" == "97 parameters"
    assert model.param_counts() == (81, 16)
    model.layers[1].trainable = False  # frozen weights still count, as in Keras
    assert model.count_params() == 97 and model.param_counts() == (25, 72)
