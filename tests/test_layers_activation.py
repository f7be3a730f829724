"""The activation layers (Activation, ReLU, ThresholdedReLU, LeakyReLU, ELU, Softmax, PReLU) through the layer
harness (numpy references, Keras fixtures, training on both engines), their bad arguments and their layouts."""

from __future__ import annotations

import numpy as np
import pytest
from layer_gradients import check_input_gradient
from layer_harness import LayerCase, ToChannelsFirst, forward, table_tests

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, ShapeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.graph import GraphBuilder
from onnxtrain.layers import (
    ELU,
    Activation,
    ActivationLayer,
    Dense,
    Flatten,
    Input,
    LeakyReLU,
    PReLU,
    ReLU,
    Softmax,
    ThresholdedReLU,
)
from onnxtrain.layers._layout import emit_layer, is_channels_first
from onnxtrain.regularizers import L2


def relu(x: np.ndarray, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0):
    """Keras' relu, piece by piece."""
    y = np.where(x > threshold, x, 0.0) if threshold else np.maximum(x, 0.0)
    if max_value is not None:
        y = np.minimum(y, max_value)
    return np.where(x < threshold, negative_slope * (x - threshold), y)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def prelu(layer, x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, layer.params["alpha"] * x)


def alpha(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"alpha": weights[0]}


CASES = [
    LayerCase("activation_tanh", lambda: Activation("tanh"), (3, 4), (3, 4), 0, lambda _, x: np.tanh(x)),
    LayerCase("activation_softmax", lambda: Activation("softmax"), (3, 4), (3, 4), 0, lambda _, x: softmax(x, -1)),
    LayerCase("relu_default", lambda: ReLU(), (6,), (6,), 0, lambda _, x: relu(x)),
    LayerCase("relu_max_value", lambda: ReLU(max_value=1.0), (6,), (6,), 0, lambda _, x: relu(x, 1.0)),
    LayerCase("relu_slope_max", lambda: ReLU(6.0, negative_slope=0.1), (6,), (6,), 0, lambda _, x: relu(x, 6.0, 0.1)),
    LayerCase(
        "relu_all_arguments",
        lambda: ReLU(max_value=1.5, negative_slope=0.2, threshold=0.5),
        (6,),
        (6,),
        0,
        lambda _, x: relu(x, 1.5, 0.2, 0.5),
    ),
    LayerCase("thresholded_relu", lambda: ThresholdedReLU(0.5), (6,), (6,), 0, lambda _, x: relu(x, threshold=0.5)),
    LayerCase("leaky_relu_default", lambda: LeakyReLU(), (6,), (6,), 0, lambda _, x: np.where(x >= 0, x, 0.3 * x)),
    LayerCase(
        "leaky_relu_alpha", lambda: LeakyReLU(alpha=0.1), (6,), (6,), 0, lambda _, x: np.where(x >= 0, x, 0.1 * x)
    ),
    LayerCase("elu", lambda: ELU(0.7), (6,), (6,), 0, lambda _, x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    LayerCase("softmax_last", lambda: Softmax(), (3, 4), (3, 4), 0, lambda _, x: softmax(x, -1)),
    LayerCase("softmax_axis1", lambda: Softmax(axis=1), (3, 4), (3, 4), 0, lambda _, x: softmax(x, 1)),
    LayerCase("prelu", lambda: PReLU("random_normal"), (3, 4), (3, 4), 12, prelu, alpha),
    LayerCase(
        "prelu_shared_axes", lambda: PReLU("random_normal", shared_axes=[1, 2]), (3, 4, 2), (3, 4, 2), 2, prelu, alpha
    ),
]


test_layer_forward_matches_numpy_and_keras, test_layer_trains_and_exports = table_tests(CASES)


def test_defaults_are_keras_3s():
    assert LeakyReLU().negative_slope == 0.3
    assert ELU().alpha == 1.0
    assert ThresholdedReLU().theta == 1.0
    assert Softmax().axis == -1
    assert ReLU().get_config() == {
        "max_value": None,
        "negative_slope": 0.0,
        "threshold": 0.0,
        "name": None,
        "trainable": True,
    }
    assert ActivationLayer is Activation  # KotlinDL's name
    assert LeakyReLU(alpha=0.2).get_config()["negative_slope"] == 0.2  # KotlinDL's (and Keras 2's) spelling


def test_prelu_starts_as_a_relu():
    model = Sequential.of(Input(3, 4), PReLU(shared_axes=2))
    assert model.layers[1].params["alpha"].shape == (3, 1)
    assert not model.layers[1].params["alpha"].any()


@pytest.mark.parametrize(
    ("make", "stays_channels_first"),
    [
        (lambda: ReLU(1.0, 0.1, 0.2), True),
        (lambda: ELU(), True),
        (lambda: LeakyReLU(), True),
        (lambda: ThresholdedReLU(), True),
        (lambda: Activation("tanh"), True),
        (lambda: Softmax(), True),
        (lambda: Softmax(axis=2), True),
        (lambda: Activation("softmax"), False),  # over the last axis: it takes channels-last values
        (lambda: PReLU("random_normal"), False),  # alpha is laid out channels last
    ],
)
def test_activation_layers_on_channels_first_values(make, stays_channels_first):
    # After a convolution the value is channels first: elementwise layers keep it so (no Transpose), and Softmax
    # moves its axis with it. Either way the outputs are the channels-last model's.
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    plain = Sequential.of(Input(3, 4, 5), make(), seed=1)
    moved = Sequential.of(Input(3, 4, 5), ToChannelsFirst(), make(), seed=1)
    moved.layers[2].params = plain.layers[1].params  # PReLU's alpha
    np.testing.assert_allclose(forward(moved, x), forward(plain, x), rtol=1e-6, atol=1e-6)
    builder = GraphBuilder()
    value = builder.add_input("input", np.float32, (None, 3, 4, 5))
    for layer in moved.layers[1:]:
        value = emit_layer(builder, layer, value)
    assert is_channels_first(builder, value) is stays_channels_first


BAD_LAYERS = [
    (lambda: Activation("relux"), UnknownIdentifierError, r"Could not interpret activation 'relux'"),
    (lambda: ReLU(max_value=-1), InvalidArgumentError, r"ReLU\(max_value=...\) expects a non-negative finite number"),
    (lambda: ReLU(negative_slope=-0.1), InvalidArgumentError, r"Received: negative_slope=-0.1"),
    (lambda: ReLU(threshold=float("nan")), InvalidArgumentError, r"Received: threshold=nan"),
    (lambda: ReLU(threshold="1"), InvalidArgumentError, r"Received: threshold='1'"),
    (lambda: ThresholdedReLU(-1.0), InvalidArgumentError, r"ThresholdedReLU\(theta=...\).*Received: theta=-1.0"),
    (lambda: LeakyReLU(-0.3), InvalidArgumentError, r"LeakyReLU\(negative_slope=...\).*Received: negative_slope=-0.3"),
    (lambda: LeakyReLU(0.1, alpha=0.2), InvalidArgumentError, r"takes negative_slope or its other name alpha"),
    (lambda: ELU(alpha=float("inf")), InvalidArgumentError, r"ELU\(alpha=...\) expects a finite number"),
    (
        lambda: Softmax(axis=(1, 2)),
        UnsupportedError,
        r"over several axes is not supported: pass one int\. Received: axis=\(1, 2\)$",
    ),
    (
        lambda: Softmax(axis="1"),
        InvalidArgumentError,
        r"expects one int \(several axes are not supported\)\. Received: axis='1'$",
    ),
    (
        lambda: Sequential.of(Input(3, 4), Softmax(axis=0)),
        ShapeError,
        r"other than the batch axis 0: one of 1..2 or -2..-1. Received: input shape \[None, 3, 4\]",
    ),
    (lambda: Sequential.of(Input(3), Softmax(axis=2)), ShapeError, r"axis=2"),
    (lambda: PReLU(shared_axes=0), InvalidArgumentError, r"axes numbered from 1.*Received: shared_axes=0"),
    (lambda: Sequential.of(Input(3), PReLU(shared_axes=2)), ShapeError, r"expects inputs of rank at least 2"),
]


@pytest.mark.parametrize(("factory", "error", "message"), BAD_LAYERS)
def test_bad_activation_arguments_fail_with_clear_messages(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient_through_the_layer_matches_finite_differences(case: LayerCase):
    check_input_gradient(case)


def test_prelu_alpha_regularizer_adds_to_the_loss(blobs):
    x, y = blobs
    model = Sequential.of(
        Input(4, 3),
        PReLU(alpha_initializer="ones", alpha_regularizer=L2(0.5)),
        Flatten(),
        Dense(3, activation="linear", use_bias=False, kernel_initializer="zeros"),
        seed=0,
    )
    with model:
        model.compile(optimizer="sgd", loss="softmax_cross_entropy_with_logits")
        # Zero logits: the data loss is log(3); PReLU's alpha (12 ones) adds 0.5 * 12.
        assert model.evaluate(x, y, verbose=0).loss == pytest.approx(np.log(3) + 6.0, rel=1e-5)
