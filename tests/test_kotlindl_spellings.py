"""KotlinDL's spellings, as a user porting KotlinDL code writes them: its argument names (snake-cased) where they
differ from Keras', its layer and enum names, `Sequential.of(list)`, its gradient clipping objects; and its freezing
idiom `layer.isTrainable = false` with the other spellings of a setting that would only set a new attribute,
which are refused naming the setting to assign."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from onnxtrain import Model, Sequential, layers
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.layers import (
    BatchNorm,
    BatchNormalization,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Dense,
    DepthwiseConv2D,
    Input,
    Layer,
    SeparableConv2D,
)
from onnxtrain.optimizers import SGD, Adam, ClipGradientByNorm, ClipGradientByValue, NoClipGradient, RMSProp


# --- argument names ---------------------------------------------------------------------------------------------
def config_of(layer: Layer) -> dict[str, Any]:
    return {key: value for key, value in layer.get_config().items() if key != "name"}


SAME_LAYERS = [
    ("Dense output_size", lambda: Dense(output_size=120), lambda: Dense(units=120)),
    ("Dense output_size with others", lambda: Dense(output_size=4, use_bias=False), lambda: Dense(4, use_bias=False)),
    ("Conv1D dilations", lambda: Conv1D(4, 3, dilations=2), lambda: Conv1D(4, 3, dilation_rate=2)),
    ("Conv1D dilations (1, d, 1)", lambda: Conv1D(4, 3, dilations=(1, 2, 1)), lambda: Conv1D(4, 3, dilation_rate=2)),
    ("Conv2D dilations", lambda: Conv2D(4, 3, dilations=(2, 3)), lambda: Conv2D(4, 3, dilation_rate=(2, 3))),
    (
        "Conv2D dilations (1, d, d, 1)",
        lambda: Conv2D(6, 5, dilations=(1, 2, 2, 1)),
        lambda: Conv2D(6, 5, dilation_rate=2),
    ),
    ("Conv3D dilations", lambda: Conv3D(4, 3, dilations=(1, 2, 2, 2, 1)), lambda: Conv3D(4, 3, dilation_rate=2)),
    ("Conv2DTranspose", lambda: Conv2DTranspose(4, 3, dilations=2), lambda: Conv2DTranspose(4, 3, dilation_rate=2)),
    ("DepthwiseConv2D", lambda: DepthwiseConv2D(3, dilations=2), lambda: DepthwiseConv2D(3, dilation_rate=2)),
    ("SeparableConv2D", lambda: SeparableConv2D(4, 3, dilations=2), lambda: SeparableConv2D(4, 3, dilation_rate=2)),
    ("BatchNorm", lambda: BatchNorm(), lambda: BatchNormalization()),
    ("BatchNormalization axis=[3]", lambda: BatchNormalization(axis=[3]), lambda: BatchNormalization(axis=3)),
    ("BatchNorm axis=(-1,)", lambda: BatchNorm(axis=(-1,)), lambda: BatchNormalization(axis=-1)),
    ("BatchNorm axis=[np.int64]", lambda: BatchNorm(axis=[np.int64(2)]), lambda: BatchNormalization(axis=2)),
]


@pytest.mark.parametrize(("kotlindl", "keras"), [row[1:] for row in SAME_LAYERS], ids=[row[0] for row in SAME_LAYERS])
def test_kotlindls_argument_names_make_the_keras_layer(kotlindl, keras):
    made = kotlindl()
    assert type(made) is type(keras()) and config_of(made) == config_of(keras())  # the config keeps Keras' names


def test_batch_norm_is_exported_as_an_alias_of_batch_normalization():
    assert BatchNorm is BatchNormalization and "BatchNorm" in layers.__all__
    model = Sequential.of(Input(4, 4, 2), BatchNorm(axis=[3]), seed=0)
    assert model.get_layer("batch_normalization_1").axis == 3


BAD_ARGUMENTS = [
    (
        lambda: Dense(8, output_size=4),
        InvalidArgumentError,
        r"^Dense takes units or its KotlinDL name output_size, not both\. Received: units \(positional\), "
        r"output_size=4$",
    ),
    (
        lambda: Conv2D(4, 3, dilation_rate=2, dilations=2),
        InvalidArgumentError,
        r"Conv2D takes dilation_rate or its KotlinDL name dilations, not both\. Received: dilation_rate=2, dilations=2",
    ),
    (
        lambda: Dense(outputSize=4),
        InvalidTypeError,
        r"unexpected keyword argument 'outputSize'\. Python's spelling of KotlinDL's camelCase names is snake_case: "
        r"'outputSize' \(in Python: output_size\)\. Dense takes: units, .*; and KotlinDL's output_size for units$",
    ),
    (
        lambda: Conv2D(filters=6, kernelSize=5),
        InvalidTypeError,
        r"'kernelSize' \(in Python: kernel_size\)\. Conv2D takes: filters, kernel_size, .*KotlinDL's dilations for "
        r"dilation_rate$",
    ),
    (lambda: Conv2D(4, 3, dilations=(2, 2, 2, 2)), InvalidArgumentError, r"Conv2D\(dilation_rate=...\) expects"),
    (
        lambda: BatchNorm(axis=[1, 2]),
        InvalidArgumentError,
        r"expects an int, or a list of one int\. Received: axis=\[1, 2\]",
    ),
    (lambda: BatchNorm(axis=["3"]), InvalidArgumentError, r"Received: axis=\['3'\]"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_ARGUMENTS)
def test_kotlindls_names_are_refused_beside_keras_ones_and_camel_case_names_get_their_spelling(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_sequential_of_takes_kotlindls_lists():
    for model in (
        Sequential.of([Input(4), Dense(8), Dense(3)], seed=0),
        Sequential.of(Input(4), [Dense(8), Dense(3)], seed=0),
        Sequential.of(Input(4), Dense(8), Dense(3), seed=0),
    ):
        assert [layer.name for layer in model.layers] == ["input_1", "dense_1", "dense_2"]
    with pytest.raises(InvalidTypeError, match=r"Sequential expects Layer instances\. Received: layers\[1\]='x'"):
        Sequential.of([Input(4), "x"])  # type: ignore[list-item]


# --- gradient clipping objects -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kotlindl", "ours"),
    [
        (lambda: Adam(clip_gradient=ClipGradientByValue(0.1)), lambda: Adam(clip_value=0.1)),
        (lambda: SGD(0.1, clip_gradient=ClipGradientByNorm(1.0)), lambda: SGD(0.1, clip_norm=1.0)),
        (lambda: RMSProp(clip_gradient=NoClipGradient(), clip_norm=2.0), lambda: RMSProp(clip_norm=2.0)),
        (lambda: Adam(clip_gradient=ClipGradientByValue(np.float32(0.5))), lambda: Adam(clip_value=0.5)),
    ],
)
def test_kotlindls_clipping_objects_set_the_clip_settings(kotlindl, ours):
    assert kotlindl() == ours() and kotlindl().get_config() == ours().get_config()


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: Adam(clip_value=0.2, clip_gradient=ClipGradientByValue(0.1)),
            InvalidArgumentError,
            r"^Adam takes clip_value or KotlinDL's clip_gradient=ClipGradientByValue\(value=0\.1\), which sets it, not "
            r"both\. Received: clip_value=0\.2$",
        ),
        (
            lambda: SGD(global_clipnorm=1.0, clip_gradient=ClipGradientByNorm(2.0)),
            InvalidArgumentError,
            r"SGD takes clip_norm or KotlinDL's clip_gradient=.*Received: global_clipnorm=1\.0",
        ),
        (
            lambda: Adam(clip_gradient=0.1),
            InvalidTypeError,
            r"Adam\(clip_gradient=...\) expects KotlinDL's clipping object: ClipGradientByValue\(value\), "
            r"ClipGradientByNorm\(norm\) or NoClipGradient\(\).*Received: 0\.1",
        ),
        (
            lambda: ClipGradientByValue(-1.0),
            InvalidArgumentError,
            r"ClipGradientByValue\(value=...\) expects .*value=-1",
        ),
        (lambda: ClipGradientByNorm(0), InvalidArgumentError, r"ClipGradientByNorm\(norm=...\) expects .*norm=0"),
        (
            lambda: Adam(clipGradient=1),
            InvalidTypeError,
            r"unexpected keyword argument 'clipGradient'.*KotlinDL's clip_gradient",
        ),
    ],
)
def test_kotlindls_clipping_objects_are_checked(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- spellings of a setting that would set a new attribute ------------------------------------------------------
def small_model() -> Sequential:
    return Sequential.of(Input(4, 4, 1), layers.Flatten(), Dense(8), Dense(3), seed=0)


MISSPELLED = [
    ("layer isTrainable", lambda m: m.get_layer("dense_1"), "isTrainable", "trainable", "KotlinDL's name"),
    ("layer is_trainable", lambda m: m.get_layer("dense_1"), "is_trainable", "trainable", "KotlinDL's name"),
    ("layer outputSize", lambda m: m.get_layer("dense_1"), "outputSize", "units", "KotlinDL's name"),
    ("layer output_size", lambda m: m.get_layer("dense_1"), "output_size", "units", "KotlinDL's name"),
    ("layer useBias", lambda m: m.get_layer("dense_1"), "useBias", "use_bias", "the camelCase spelling"),
    ("an unbuilt layer", lambda m: Conv2D(4, 3), "dilations", "dilation_rate", "KotlinDL's name"),
    ("model stopTraining", lambda m: m, "stopTraining", "stop_training", "the camelCase spelling"),
    ("model learningRate", lambda m: m, "learningRate", "learning_rate", "the camelCase spelling"),
    ("model inputScale", lambda m: m, "inputScale", "input_scale", "the camelCase spelling"),
]


@pytest.mark.parametrize(
    ("owner", "attribute", "setting", "kind"), [row[1:] for row in MISSPELLED], ids=[row[0] for row in MISSPELLED]
)
def test_a_new_attribute_spelling_a_setting_is_refused_naming_the_setting(owner, attribute, setting, kind):
    # KotlinDL's `layer.isTrainable = false`, ported as it is, would otherwise set an attribute and freeze nothing
    target = owner(small_model())
    with pytest.raises(
        InvalidArgumentError,
        match=rf"has no attribute '{attribute}', {kind} of '{setting}': assigning it would set a new attribute "
        rf"that changes nothing\. Assign {setting} instead\. Received: {attribute}=False$",
    ):
        setattr(target, attribute, False)
    assert attribute not in vars(target)


def test_freezing_with_the_setting_itself_still_works_and_trains_nothing():
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4, 4, 1), np.float32), rng.integers(0, 3, 16)
    with small_model() as model:
        model.get_layer("dense_1").trainable = False
        before = model.get_weights()["dense_1.kernel"]
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        np.testing.assert_array_equal(model.get_weights()["dense_1.kernel"], before)
        model.stop_training = True  # the setting itself: accepted
        model.my_note = "kept"  # a new attribute of one's own: accepted
    assert model.my_note == "kept"


class Scale(Layer):
    """A custom layer that sets new attributes of its own after construction, in build and by the user."""

    def __init__(self, factor: float = 2.0, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.factor = factor

    def build(self, input_shape, rng):
        self.scale_shape = input_shape  # a new snake_case attribute, set after construction
        self.add_weight("scale", np.full(input_shape[-1:], self.factor, np.float32))

    def compute_output_shape(self, input_shape):
        return input_shape

    def emit(self, builder, x):
        return builder.node("Mul", [x, self.emit_params(builder)["scale"]])

    def get_config(self):
        return {"factor": self.factor, **super().get_config()}


def test_a_custom_layers_own_new_attributes_are_taken_as_they_are():
    model = Sequential.of(Input(3), Scale(), seed=0)
    layer = model.get_layer("scale_1")
    layer.note = "mine"
    layer.runCount = 1  # camelCase with no snake_case twin: its own attribute
    assert (layer.scale_shape, layer.note, layer.runCount) == ((3,), "mine", 1)
    with model:
        model.compile(optimizer="sgd", loss="mse")
        np.testing.assert_allclose(model.predict(np.ones((2, 3), np.float32)), 2.0)
    with pytest.raises(InvalidArgumentError, match=r"'scaleShape', the camelCase spelling of 'scale_shape'"):
        layer.scaleShape = (4,)


def test_a_functional_model_refuses_the_spellings_too():
    x = Input(4)
    model = Model(x, Dense(3)(x), seed=0)
    with pytest.raises(InvalidArgumentError, match=r"^Model 'functional(_\d+)?' has no attribute 'stopTraining'"):
        model.stopTraining = True


# --- Keras' cls.from_config(layer.get_config()) ---------------------------------------------------------------
def test_a_layer_class_rebuilds_its_layer_from_get_config():
    dense = Dense(5, activation="tanh", use_bias=False, name="head")
    rebuilt = Dense.from_config(dense.get_config())
    assert type(rebuilt) is Dense and rebuilt.get_config() == dense.get_config()
    conv = Conv2D(4, 3, dilations=2, name="c")
    assert Conv2D.from_config(conv.get_config()).get_config() == conv.get_config()
    assert Layer.from_config(dense.serialize()).get_config() == dense.get_config()  # the serialized form, as before
