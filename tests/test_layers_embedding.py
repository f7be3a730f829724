"""Embedding through the layer harness (numpy reference, Keras fixtures, training its table on both engines: the
gradient of Gather), its float32 input cast to indices, mask_zero in its config and a saved model, and bad
arguments. What the mask does downstream: test_layers_masking.py."""

from __future__ import annotations

import numpy as np
import pytest
from layer_harness import LayerCase, forward, table_tests

from onnxtrain import Sequential, load_model
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers import LSTM, Dense, Embedding, Flatten, Input, Layer
from onnxtrain.regularizers import L1


def lookup(layer: Embedding, x: np.ndarray) -> np.ndarray:
    return layer.params["embeddings"][x.astype(np.int64)]  # truncates, as the layer's Cast and Keras' do


def table(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"embeddings": weights[0]}


CASES = [
    LayerCase(
        "embedding",
        lambda: Embedding(6, 3),
        (4,),
        (4, 3),
        18,
        lookup,
        table,
        input_range=(0.0, 6.0),
        integer_inputs=True,
    ),
    LayerCase(
        "embedding_2d",
        lambda: Embedding(5, 2),
        (2, 3),
        (2, 3, 2),
        10,
        lookup,
        table,
        input_range=(0.0, 5.0),
        integer_inputs=True,
    ),
]


# The Keras fixtures' inputs lie in [-2, 2): -1 reads the last row, as in Keras (jax.numpy.take wraps it too).
test_layer_forward_matches_numpy_and_keras, test_layer_trains_and_exports = table_tests(CASES)


def test_embedding_defaults_are_keras():
    layer = Embedding(10, 4)
    assert layer.embeddings_initializer.get_config() == {
        "name": "random_uniform",
        "minval": -0.05,
        "maxval": 0.05,
        "seed": None,
    }
    model = Sequential.of(Input(3), layer, seed=0)
    assert np.abs(model.layers[1].params["embeddings"]).max() <= 0.05


def test_embedding_reads_rows_by_integer_valued_float_input():
    model = Sequential.of(Input(3), Embedding(4, 2), seed=0)
    rows = model.layers[1].params["embeddings"]
    x = np.array([[0, 3, 1], [2, 2, 0]], np.float32)
    np.testing.assert_array_equal(forward(model, x), rows[x.astype(np.int64)])


BAD_LAYERS = [
    (lambda: Embedding(0, 3), InvalidArgumentError, r"Embedding\(input_dim=...\) expects a positive int"),
    (lambda: Embedding(3, 2.5), InvalidArgumentError, r"Embedding\(output_dim=...\).*output_dim=2.5"),
    (lambda: Embedding(3, 2, mask_zero="yes"), InvalidArgumentError, r"Embedding\(mask_zero=...\) expects a bool"),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD_LAYERS)
def test_bad_embedding_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


def test_embeddings_regularizer_adds_to_the_loss():
    embedding = Embedding(4, 2, embeddings_initializer="ones", embeddings_regularizer=L1(0.25))
    model = Sequential.of(Input(3), embedding, Flatten(), Dense(3, activation="linear", kernel_initializer="zeros"))
    with model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        loss = model.evaluate(np.zeros((5, 3), np.float32), np.zeros(5, np.int64), verbose=0).loss
        bias = model.get_weights()["dense_1.bias"]
        data_loss = -np.log(np.exp(bias[0]) / np.exp(bias).sum())  # every logit is the bias
        assert loss == pytest.approx(data_loss + 0.25 * 8, rel=1e-5)  # the table: 8 ones


@pytest.mark.parametrize("mask_zero", [True, False])
def test_mask_zero_is_kept_in_the_config(mask_zero: bool):
    layer = Embedding(5, 2, mask_zero=mask_zero)
    assert layer.get_config()["mask_zero"] is mask_zero
    rebuilt = Layer.from_config(layer.serialize())
    assert isinstance(rebuilt, Embedding) and rebuilt.mask_zero is mask_zero
    assert rebuilt.get_config() == layer.get_config()


def test_a_saved_model_keeps_mask_zero_and_masks_after_loading(tmp_path):
    ids = np.array([[0, 0, 2, 3], [1, 4, 0, 0]], np.int64)
    model = Sequential.of(Input(4, dtype="int64"), Embedding(5, 3, mask_zero=True), LSTM(2), seed=0)
    with model:
        model.compile(optimizer="sgd", loss="mse")
        expected = model.predict(ids)
        model.save(tmp_path / "model")
    with load_model(tmp_path / "model") as loaded:
        assert loaded.layers[1].mask_zero
        np.testing.assert_allclose(loaded.predict(ids), expected, rtol=1e-6)
    unmasked = Sequential.of(Input(4, dtype="int64"), Embedding(5, 3), LSTM(2), seed=0)  # the padding steps count
    unmasked.set_weights(model.get_weights())
    with unmasked:
        unmasked.compile(optimizer="sgd", loss="mse")
        assert not np.allclose(unmasked.predict(ids), expected, rtol=1e-3)


def test_keras_2_input_length_is_taken_with_keras_3s_warning_and_ignored():
    # Keras 3.15 (layers/core/embedding.py) pops input_length, warns "Argument `input_length` is deprecated. Just
    # remove it." (a UserWarning) and keeps nothing of it.
    with pytest.warns(UserWarning, match=r"^Argument `input_length` is deprecated. Just remove it.$") as warned:
        layer = Embedding(10, 4, input_length=40)
    assert warned[0].filename == __file__  # the line that passed it
    assert layer.get_config() == Embedding(10, 4).get_config()
    model = Sequential.of(Input(6, dtype="int64"), layer, seed=0)
    assert model.output_shape == (6, 4)  # the Input's length, not input_length
