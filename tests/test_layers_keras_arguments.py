"""Keras' arguments onnxtrain's layers have no parameter for (onnxtrain/layers/_keras_arguments.py): data_format
accepted as channels last and refused as channels first, constraints refused unless None, and any other unknown
keyword named with the layer's public class. The table-wide check that Keras' defaults of these rebuild every layer
of the layer tables is `layer_harness.check_keras_defaults`."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from onnxtrain import Sequential
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError
from onnxtrain.layers import (
    AveragePooling1D,
    BatchNormalization,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Cropping2D,
    Dense,
    DepthwiseConv2D,
    Embedding,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    Input,
    Layer,
    LayerNormalization,
    MaxPooling2D,
    PReLU,
    SeparableConv2D,
    SpatialDropout2D,
    UpSampling2D,
    ZeroPadding2D,
)
from onnxtrain.layers._keras_arguments import keras_arguments

# Every layer Keras gives `data_format`, made with its other required arguments
DATA_FORMAT_LAYERS = [
    ("Conv1D", lambda **kw: Conv1D(2, 3, **kw)),
    ("Conv2D", lambda **kw: Conv2D(2, 3, **kw)),
    ("Conv2DTranspose", lambda **kw: Conv2DTranspose(2, 3, **kw)),
    ("DepthwiseConv2D", lambda **kw: DepthwiseConv2D(3, **kw)),
    ("SeparableConv2D", lambda **kw: SeparableConv2D(2, 3, **kw)),
    ("MaxPooling2D", lambda **kw: MaxPooling2D(**kw)),
    ("AveragePooling1D", lambda **kw: AveragePooling1D(**kw)),
    ("GlobalAveragePooling2D", lambda **kw: GlobalAveragePooling2D(**kw)),
    ("GlobalMaxPooling1D", lambda **kw: GlobalMaxPooling1D(**kw)),
    ("Flatten", lambda **kw: Flatten(**kw)),
    ("UpSampling2D", lambda **kw: UpSampling2D(**kw)),
    ("ZeroPadding2D", lambda **kw: ZeroPadding2D(**kw)),
    ("Cropping2D", lambda **kw: Cropping2D(**kw)),
    ("SpatialDropout2D", lambda **kw: SpatialDropout2D(0.5, **kw)),
]


@pytest.mark.parametrize(("owner", "make"), DATA_FORMAT_LAYERS, ids=[row[0] for row in DATA_FORMAT_LAYERS])
@pytest.mark.parametrize("value", ["channels_last", "CHANNELS_LAST", None])
def test_keras_default_data_format_is_accepted_and_left_out_of_the_config(owner, make, value):
    layer = make(data_format=value)
    assert type(layer).__name__ == owner
    assert "data_format" not in layer.get_config()
    assert layer.get_config() == make().get_config()


@pytest.mark.parametrize(("owner", "make"), DATA_FORMAT_LAYERS, ids=[row[0] for row in DATA_FORMAT_LAYERS])
def test_channels_first_is_refused_naming_the_layer_and_the_fix(owner, make):
    with pytest.raises(UnsupportedError) as raised:
        make(data_format="channels_first")
    message = str(raised.value)
    assert message.startswith(f"{owner}(data_format='channels_first') is not supported: ")
    assert "channels last" in message and "np.moveaxis(x, 1, -1)" in message and "leave data_format out" in message
    assert message.endswith("Received: data_format='channels_first'")
    assert "_Conv" not in message and "__init__" not in message


def test_an_unknown_data_format_is_refused_with_the_one_accepted():
    with pytest.raises(InvalidArgumentError, match=r"^Flatten\(data_format=\.\.\.\) expects 'channels_last'.*"
                       r"Received: data_format='NHWC'$"):  # fmt: skip
        Flatten(data_format="NHWC")


CONSTRAINTS = [
    # (layer, argument, the regularizer the message offers instead, or None)
    (lambda **kw: Dense(3, **kw), "kernel_constraint", "kernel_regularizer"),
    (lambda **kw: Dense(3, **kw), "bias_constraint", "bias_regularizer"),
    (lambda **kw: Conv2D(2, 3, **kw), "kernel_constraint", "kernel_regularizer"),
    (lambda **kw: Conv1D(2, 3, **kw), "bias_constraint", "bias_regularizer"),
    (lambda **kw: Conv2DTranspose(2, 3, **kw), "kernel_constraint", "kernel_regularizer"),
    (lambda **kw: DepthwiseConv2D(3, **kw), "depthwise_constraint", "depthwise_regularizer"),
    (lambda **kw: SeparableConv2D(2, 3, **kw), "pointwise_constraint", "pointwise_regularizer"),
    (lambda **kw: BatchNormalization(**kw), "gamma_constraint", "gamma_regularizer"),
    (lambda **kw: LayerNormalization(**kw), "beta_constraint", "beta_regularizer"),
    (lambda **kw: Embedding(10, 4, **kw), "embeddings_constraint", "embeddings_regularizer"),
    (lambda **kw: PReLU(**kw), "alpha_constraint", "alpha_regularizer"),
]


@pytest.mark.parametrize(
    ("make", "argument", "instead"), CONSTRAINTS, ids=[f"{c[1]}-{i}" for i, c in enumerate(CONSTRAINTS)]
)
def test_a_constraint_is_refused_naming_the_argument_and_the_value(make, argument, instead):
    owner = type(make()).__name__
    with pytest.raises(UnsupportedError) as raised:
        make(**{argument: "max_norm"})
    message = str(raised.value)
    assert message.startswith(f"{owner}({argument}=...) is not supported: onnxtrain has no weight constraints.")
    assert message.endswith(f"Received: {argument}='max_norm'")
    assert (f"{instead}='l2'" in message) if instead else ("regularizer" not in message)


@pytest.mark.parametrize(
    ("make", "argument", "instead"), CONSTRAINTS, ids=[f"{c[1]}-{i}" for i, c in enumerate(CONSTRAINTS)]
)
def test_a_constraint_of_none_is_accepted_as_keras_default(make, argument, instead):
    assert make(**{argument: None}).get_config() == make().get_config()


def test_the_keras_arguments_of_a_layer_follow_its_weights_and_data_format():
    activity = "activity_regularizer"  # every layer's but an Input's (taken at None: test_layers_keras_build.py)
    assert keras_arguments(Dense) == {"kernel_constraint", "bias_constraint", "quantization_config", activity}
    assert keras_arguments(Conv2D) == {"kernel_constraint", "bias_constraint", "data_format", activity}
    assert keras_arguments(SeparableConv2D) == {
        "depthwise_constraint", "pointwise_constraint", "bias_constraint", "data_format", activity
    }  # fmt: skip
    assert keras_arguments(Flatten) == {"data_format", activity}
    assert keras_arguments(Input) == frozenset()


def test_a_layer_keras_gives_no_data_format_refuses_it_as_an_unknown_keyword():
    with pytest.raises(InvalidTypeError, match=r"^Dense\(\) got an unexpected keyword argument 'data_format'\. "
                       r"Dense takes: units, activation, "):  # fmt: skip
        Dense(3, data_format="channels_last")


def test_an_unknown_keyword_names_the_public_class_not_a_private_base():
    with pytest.raises(TypeError) as raised:
        Conv2D(4, 3, paddin="same")
    assert isinstance(raised.value, InvalidTypeError)
    assert str(raised.value).startswith("Conv2D() got an unexpected keyword argument 'paddin'. Conv2D takes: filters,")
    assert "_Conv" not in str(raised.value)


def test_layer_signatures_stay_those_of_their_init():
    assert list(inspect.signature(Conv2D).parameters)[:2] == ["filters", "kernel_size"]
    assert "data_format" not in inspect.signature(Conv2D).parameters


def test_a_model_of_layers_given_keras_defaults_trains_as_without_them():
    def model(**keras):
        return Sequential.of(
            Input(6, 6, 1),
            Conv2D(2, 3, activation="linear", **keras),
            MaxPooling2D(data_format=keras.get("data_format")),
            Flatten(data_format=keras.get("data_format")),
            Dense(2, activation="linear", kernel_constraint=keras.get("kernel_constraint")),
            seed=1,
        )

    x = np.random.default_rng(0).normal(size=(16, 6, 6, 1)).astype(np.float32)
    y = np.arange(16) % 2
    weights = []
    for keras in ({}, {"data_format": "channels_last", "kernel_constraint": None}):
        with model(**keras) as m:
            m.compile(optimizer="adam", loss="softmax_cross_entropy_with_logits", engine="portable")
            m.fit(x, y, epochs=1, batch_size=8, verbose=0)
            weights.append(m.get_weights())
    for name, value in weights[0].items():
        np.testing.assert_array_equal(weights[1][name], value)


class Scale(Layer):
    """A custom layer taking a `kernel_constraint` of its own: it gets it as given."""

    keras_data_format = True  # Keras would give it data_format too

    def __init__(self, kernel_initializer="ones", kernel_constraint=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.kernel_constraint = kernel_constraint

    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_custom_layer_keeps_the_arguments_it_takes_and_gets_the_checks_of_the_rest():
    assert Scale(kernel_constraint="mine").kernel_constraint == "mine"
    assert keras_arguments(Scale) == {"data_format", "activity_regularizer"}
    with pytest.raises(UnsupportedError, match=r"^Scale\(data_format='channels_first'\) is not supported"):
        Scale(data_format="channels_first")


class ScaledDense(Dense):
    """A subclass passing Dense's arguments on with **kwargs."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(units, **kwargs)
        self.scale = scale


def test_a_subclass_passing_arguments_on_gets_its_base_classes_checks():
    assert ScaledDense(3, kernel_constraint=None).units == 3
    with pytest.raises(UnsupportedError, match=r"^Dense\(kernel_constraint=\.\.\.\) is not supported.*"
                       r"Received: kernel_constraint='non_neg'$"):  # fmt: skip
        ScaledDense(3, kernel_constraint="non_neg")
