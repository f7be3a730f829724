"""Keras 3 layer configs that carry more than their defaults load as the layers they describe (tests/data/keras/
layer_configs.json's `variants` and `regularizers`, from tools/keras_layer_configs.py), and the Keras arguments they
carry compute as Keras computes them (tests/data/keras/layer_arguments.npz, from
tools/keras_layer_argument_fixtures.py): BatchNormalization's and LayerNormalization's beta_regularizer and
gamma_regularizer (the loss with the penalties and one SGD step), LayerNormalization's rms_scaling, the recurrent
layers' zero_output_for_mask. The Keras arguments onnxtrain takes at one value only are refused naming it, and an
Input takes Keras' float32 dtype policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Sequential, regularizers
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnknownIdentifierError, UnsupportedError
from onnxtrain.initializers import (
    Constant,
    GlorotNormal,
    HeNormal,
    HeUniform,
    LeCunUniform,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
)
from onnxtrain.layers import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Embedding,
    Flatten,
    GroupNormalization,
    Input,
    Layer,
    LayerNormalization,
    Masking,
    MultiHeadAttention,
    PReLU,
    SeparableConv2D,
    SimpleRNN,
)
from onnxtrain.optimizers import SGD
from onnxtrain.regularizers import L1, L1L2, L2

CONFIGS = json.loads((KERAS_FIXTURES / "layer_configs.json").read_text())
with np.load(KERAS_FIXTURES / "layer_arguments.npz") as _data:
    ARGUMENTS = dict(_data)


def f32(value: float) -> float:
    """`value` as Keras writes L1's factor in its config: a float32's."""
    return float(np.float32(value))


# --- Keras' configs of layers made with more than their defaults ----------------------------------------------
VARIANTS: dict[str, Callable[[], Layer]] = {  # each as tools/keras_layer_configs.py made it in Keras
    "Dense/initializers": lambda: Dense(
        3,
        activation="linear",
        kernel_initializer=RandomNormal(0.1, 0.2, seed=3),
        bias_initializer=Constant(0.5),
        kernel_regularizer=L1L2(0.01, 0.02),
        bias_regularizer=L2(0.01),
    ),
    "Dense/constant_array": lambda: Dense(
        2, activation="linear", kernel_initializer=Constant(np.arange(6.0).reshape(3, 2)), bias_initializer="zeros"
    ),
    "Conv2D/variance_scaling": lambda: Conv2D(
        2,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=1),
        bias_initializer=RandomUniform(-0.1, 0.2, seed=2),
    ),
    "LSTM/zero_output_for_mask": lambda: LSTM(
        2,
        kernel_initializer="he_uniform",
        recurrent_initializer=Orthogonal(gain=0.5, seed=2),
        bias_initializer=TruncatedNormal(0.0, 0.1),
        return_sequences=True,
        zero_output_for_mask=True,
    ),
    "Bidirectional/sequences": lambda: Bidirectional(GRU(2, return_sequences=True)),
    "Embedding/lecun_normal": lambda: Embedding(
        10, 3, embeddings_initializer="lecun_normal", embeddings_regularizer=L2(0.001)
    ),
    "BatchNormalization/regularizers": lambda: BatchNormalization(
        beta_regularizer=L1(f32(0.01)), gamma_regularizer=L2(0.02), moving_variance_initializer=Constant(2.0)
    ),
    "LayerNormalization/rms_scaling": lambda: LayerNormalization(
        axis=[1, 2], rms_scaling=True, gamma_initializer=GlorotNormal(seed=4), gamma_regularizer=L1(f32(0.01))
    ),
    "GroupNormalization/he_uniform": lambda: GroupNormalization(
        groups=2, gamma_initializer=HeUniform(seed=4), beta_regularizer=L2(0.1)
    ),
    "PReLU/constant": lambda: PReLU(alpha_initializer=Constant(0.25), shared_axes=[1]),
    "MultiHeadAttention/he_normal": lambda: MultiHeadAttention(
        2, 3, kernel_initializer=HeNormal(seed=5), bias_initializer="ones"
    ),
    "DepthwiseConv2D/lecun_uniform": lambda: DepthwiseConv2D(
        3,
        padding="valid",
        activation="linear",
        depthwise_initializer=LeCunUniform(seed=6),
        bias_initializer="zeros",
        depthwise_regularizer=L1(f32(0.01)),
    ),
    "SeparableConv2D/orthogonal": lambda: SeparableConv2D(
        2,
        3,
        padding="valid",
        activation="linear",
        depthwise_initializer="zeros",
        pointwise_initializer="orthogonal",
        bias_initializer="zeros",
    ),
}


def test_the_fixture_has_every_variant() -> None:
    assert sorted(CONFIGS["variants"]) == sorted(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_keras_config_with_its_initializers_and_regularizers_loads_as_the_layer_keras_made(name: str) -> None:
    entry = CONFIGS["variants"][name]
    serialized = {"module": "keras.layers", "class_name": entry["class_name"], "config": entry["config"]}
    loaded = Layer.from_config(serialized | {"registered_name": None})
    assert type(loaded).__name__ == entry["class_name"]
    assert loaded.get_config() == {**VARIANTS[name]().get_config(), "name": entry["config"]["name"]}


@pytest.mark.parametrize("name", sorted(CONFIGS["regularizers"]))
def test_a_keras_serialized_regularizer_penalizes_as_keras_does(name: str) -> None:
    facts = CONFIGS["regularizers"][name]
    regularizer = regularizers.get(facts["config"])
    assert regularizer is not None
    assert regularizer(np.array(facts["weight"], np.float32)) == pytest.approx(facts["penalty"], rel=1e-6)


@pytest.mark.parametrize(
    ("identifier", "error", "message"),
    [
        (
            {"module": "keras.regularizers", "class_name": "OrthogonalRegularizer", "config": {"factor": 0.01}},
            UnknownIdentifierError,
            r"^Could not interpret regularizer 'OrthogonalRegularizer'\. .*Keras' OrthogonalRegularizer .* is not in "
            r"onnxtrain: use l1, l2 or l1_l2\.$",
        ),
        (
            {"module": "my_package", "class_name": "MyPenalty", "config": {}, "registered_name": "Custom>MyPenalty"},
            UnsupportedError,
            r"^Keras' serialized regularizer 'MyPenalty' is a class of one's own .* onnxtrain\.regularizers has",
        ),
        (
            {"class_name": "L2", "config": {"l2": 0.1, "factor": 2}},
            InvalidArgumentError,
            r"unknown key\(s\) \['factor'\] for L2",
        ),
    ],
)
def test_a_keras_regularizer_onnxtrain_does_not_have_is_refused(identifier: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        regularizers.get(identifier)


# --- the loss with BatchNormalization's and LayerNormalization's penalties, and one step ----------------------
STEP: dict[str, tuple[tuple[int, ...], Callable[[], list[Layer]]]] = {  # as the fixture's tool made them in Keras
    "batch_norm_regularized": (
        (4,),
        lambda: [
            Dense(3, activation="linear", name="dense"),
            BatchNormalization(beta_regularizer=L1(0.05), gamma_regularizer=L2(0.1), name="batch_norm"),
            Dense(2, activation="linear", name="dense_b"),
        ],
    ),
    "batch_norm_regularized_axis_1": (
        (3, 4),
        lambda: [
            BatchNormalization(axis=1, gamma_regularizer=L1L2(0.02, 0.05), name="batch_norm"),
            Flatten(name="flatten"),
            Dense(2, activation="linear", name="dense"),
        ],
    ),
    "layer_norm_regularized": (
        (3, 4),
        lambda: [
            LayerNormalization(beta_regularizer=L2(0.1), gamma_regularizer=L1L2(0.05, 0.1), name="layer_norm"),
            Flatten(name="flatten"),
            Dense(2, activation="linear", name="dense"),
        ],
    ),
    "layer_norm_rms_scaling": (
        (3, 4),
        lambda: [
            LayerNormalization(rms_scaling=True, gamma_regularizer=L2(0.1), name="layer_norm"),
            Flatten(name="flatten"),
            Dense(2, activation="linear", name="dense"),
        ],
    ),
}
KERAS_ORDER = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")  # get_weights() order


def case(name: str) -> dict[str, np.ndarray]:
    return {key.partition("/")[2]: value for key, value in ARGUMENTS.items() if key.startswith(f"{name}/")}


def keras_weights(model: Sequential, data: dict[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
    """The fixture's `<prefix><layer>.<i>` (Keras' get_weights() of each layer) as the model's parameters."""
    ours = {}
    for layer in model.layers:
        names = [local for local in KERAS_ORDER if local in layer.params]
        ours |= {f"{layer.name}.{local}": data[f"{prefix}{layer.name}.{i}"] for i, local in enumerate(names)}
    return ours


@pytest.mark.parametrize("name", sorted(STEP))
def test_normalization_penalties_are_in_the_loss_and_the_step_as_in_keras(name: str) -> None:
    shape, layers = STEP[name]
    data = case(name)
    model = Sequential([Input(*shape), *layers()], seed=0)
    model.set_weights(keras_weights(model, data))
    expected = keras_weights(model, data, prefix="after.")
    assert len(expected) == sum(1 for key in data if key.startswith("after."))
    with model:
        model.compile(optimizer=SGD(0.1), loss="mse", engine="portable")
        evaluated = model.evaluate(data["x"], data["y"], batch_size=8, verbose=0).loss
        history = model.fit(data["x"], data["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
        stepped = model.get_weights()
    assert evaluated == pytest.approx(float(data["evaluate"]), rel=1e-5)  # inference mode, with the penalties
    assert history.history["loss"][0] == pytest.approx(float(data["loss"]), rel=1e-5)
    for weight, value in expected.items():
        np.testing.assert_allclose(stepped[weight], value, rtol=1e-5, atol=1e-6, err_msg=weight)


def test_a_frozen_normalization_layer_adds_no_penalty() -> None:
    data = case("layer_norm_regularized")
    shape, layers = STEP["layer_norm_regularized"]

    def loss(trainable: bool, regularized: bool) -> float:
        made = layers()
        if not regularized:
            made[0] = LayerNormalization(name="layer_norm")
        made[0].trainable = trainable
        model = Sequential([Input(*shape), *made], seed=0)
        model.set_weights(keras_weights(model, data))
        with model:
            model.compile(optimizer=SGD(0.1), loss="mse")
            return model.evaluate(data["x"], data["y"], batch_size=8, verbose=0).loss

    assert loss(trainable=False, regularized=True) == pytest.approx(loss(trainable=True, regularized=False))
    assert loss(trainable=True, regularized=True) > loss(trainable=True, regularized=False)


# --- forward: zero_output_for_mask, and rms_scaling over several axes ----------------------------------------
FORWARD: dict[str, Callable[[], Sequential]] = {
    "lstm_zero_output_for_mask": lambda: Sequential(
        [
            Input(5, 3),
            Masking(0.0),
            LSTM(3, return_sequences=True, zero_output_for_mask=True, name="recurrent"),
        ]
    ),
    "gru_zero_output_for_mask_backwards": lambda: Sequential(
        [
            Input(5, 3),
            Masking(0.0),
            GRU(3, return_sequences=True, go_backwards=True, zero_output_for_mask=True, name="recurrent"),
        ]
    ),
    "simple_rnn_zero_output_for_mask": lambda: Sequential(
        [
            Input(5, 3),
            Masking(0.0),
            SimpleRNN(2, return_sequences=True, zero_output_for_mask=True, name="recurrent"),
        ]
    ),
    "layer_norm_rms_scaling_axes": lambda: Sequential(
        [
            Input(3, 4, 2),
            LayerNormalization(axis=[1, 3], rms_scaling=True, scale=False, epsilon=0.01, name="layer_norm"),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_forward_matches_keras(name: str) -> None:
    data, model = case(name), FORWARD[name]()
    layer = model.layers[-1]
    keras = [data[f"{layer.name}.{i}"] for i in range(len([k for k in data if k.startswith(f"{layer.name}.")]))]
    if isinstance(layer, LSTM | GRU | SimpleRNN):
        layer.set_weights(layer.from_keras_weights(keras))
    else:
        model.set_weights(keras_weights(model, data))
    with model:
        model.compile(optimizer=SGD(0.1), loss="mse")
        predicted = model.predict(data["x"])
    np.testing.assert_allclose(predicted, data["y"], rtol=1e-5, atol=1e-5)


def test_rms_scaling_scales_by_the_standard_deviation_without_centering() -> None:
    """Keras 3's rms_scaling=True (numpy reference): gamma * x / sqrt(var(x) + epsilon) over the axis; no beta."""
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(5, 4)) + 2.0).astype(np.float32)
    model = Sequential([Input(4), LayerNormalization(rms_scaling=True, epsilon=0.01, name="norm")], seed=0)
    gamma = rng.normal(size=4).astype(np.float32)
    model.set_weights({"norm.gamma": gamma})
    assert sorted(model.layers[-1].params) == ["gamma"]
    with model:
        model.compile(optimizer=SGD(0.1), loss="mse")
        predicted = model.predict(x)
    expected = gamma * x / np.sqrt(x.var(axis=-1, keepdims=True) + 0.01)
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)


# --- zero_output_for_mask: kept where True, decided by Bidirectional ------------------------------------------
@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_zero_output_for_mask_is_in_the_config_where_true(cls: type[LSTM]) -> None:
    zeros = cls(2, return_sequences=True, zero_output_for_mask=True)
    assert zeros.zero_output_for_mask is True and zeros.get_config()["zero_output_for_mask"] is True
    assert cls.from_config(zeros.get_config()).get_config() == zeros.get_config()
    default = cls(2).get_config()
    assert "zero_output_for_mask" not in default
    for keras_false in (False, None, np.False_):  # Keras reads None as False
        assert cls(2, zero_output_for_mask=keras_false).get_config() == default


def test_bidirectional_decides_zero_output_for_mask_as_keras_does() -> None:
    """Keras' Bidirectional sets its directions' zero_output_for_mask to their return_sequences (and writes so in
    its config): the wrapped layer's own value changes nothing."""
    plain = Bidirectional(LSTM(2, return_sequences=True)).get_config()
    assert Bidirectional(LSTM(2, return_sequences=True, zero_output_for_mask=True)).get_config() == plain
    assert "zero_output_for_mask" not in plain["layer"]["config"]


# --- arguments taken at one value only, and Input's dtype policy ---------------------------------------------
def test_keras_defaults_of_arguments_onnxtrain_takes_at_one_value_are_accepted() -> None:
    keras_defaults = {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99, "synchronized": False}
    assert BatchNormalization(**keras_defaults).get_config() == BatchNormalization().get_config()
    assert Dense(3, quantization_config=None).get_config() == Dense(3).get_config()
    assert Embedding(10, 3, quantization_config=None).get_config() == Embedding(10, 3).get_config()


FLOAT32 = CONFIGS["policies"]["float32"]
MIXED = CONFIGS["policies"]["mixed_float16"]
REFUSED = [
    (
        lambda: Dense(3, quantization_config={"mode": "int8"}),
        UnsupportedError,
        r"^Dense\(quantization_config=\.\.\.\) supports only quantization_config=None: onnxtrain trains and exports "
        r"float32 weights and does not quantize\..* Received: quantization_config=\{'mode': 'int8'\}$",
    ),
    (lambda: Embedding(10, 3, quantization_config="int8"), UnsupportedError, r"^Embedding\(quantization_config="),
    (  # Keras' Conv2D takes none
        lambda: Conv2D(2, 3, quantization_config=None),
        InvalidTypeError,
        r"^Conv2D\(\) got an unexpected keyword argument 'quantization_config'",
    ),
    (
        lambda: BatchNormalization(renorm=True),
        UnsupportedError,
        r"^BatchNormalization\(renorm=\.\.\.\) supports only renorm=False: onnxtrain has no batch renormalization",
    ),
    (
        lambda: BatchNormalization(renorm_clipping={"rmax": 3.0}),
        UnsupportedError,
        r"^BatchNormalization\(renorm_clipping=\.\.\.\) supports only Keras' default, renorm_clipping=None: it sets "
        r"batch renormalization.* Received: renorm_clipping=\{'rmax': 3\.0\}$",
    ),
    (
        lambda: BatchNormalization(renorm_momentum=0.9),
        UnsupportedError,
        r"^BatchNormalization\(renorm_momentum=\.\.\.\) supports only Keras' default, renorm_momentum=0\.99",
    ),
    (
        lambda: BatchNormalization(synchronized=True),
        UnsupportedError,
        r"^BatchNormalization\(synchronized=\.\.\.\) supports only synchronized=False: each process of a "
        r"data-parallel fit normalizes with its own rows' statistics",
    ),
    (
        lambda: LayerNormalization(rms_scaling="yes"),
        InvalidArgumentError,
        r"^LayerNormalization\(rms_scaling=\.\.\.\) expects a bool\. Received: rms_scaling='yes'$",
    ),
    (
        lambda: LSTM(2, zero_output_for_mask="yes"),
        InvalidArgumentError,
        r"^LSTM\(zero_output_for_mask=\.\.\.\) expects a bool\. Received: zero_output_for_mask='yes'$",
    ),
    (  # a layer that is not recurrent has no zero_output_for_mask
        lambda: Dense(3, zero_output_for_mask=False),
        InvalidTypeError,
        r"^Dense\(\) got an unexpected keyword argument 'zero_output_for_mask'",
    ),
    (
        lambda: Input(4, dtype=MIXED),
        InvalidArgumentError,
        r"^Input\(dtype=\.\.\.\) expects one of \['float32', 'int32', 'int64'\] .* Keras' dtype policy "
        r"'mixed_float16' is none of them: onnxtrain computes in float32 only\. Received: dtype=\{.*'DTypePolicy'",
    ),
    (
        lambda: Input(4, dtype={"name": "float32"}),  # no policy, and no dtype numpy reads: a clear refusal
        InvalidArgumentError,
        r"^Input\(dtype=\.\.\.\) expects one of .* Received: dtype=\{'name': 'float32'\}$",
    ),
]


@pytest.mark.parametrize(("make", "error", "message"), REFUSED)
def test_keras_arguments_onnxtrain_takes_at_one_value_are_refused_naming_it(
    make: Callable[[], Layer], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_an_input_takes_keras_float32_policy_and_a_policy_of_token_ids() -> None:
    assert Input(4, dtype=FLOAT32).get_config() == Input(4).get_config()
    int64 = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "int64"}, "registered_name": None}
    assert Input(4, dtype=int64).dtype == np.int64
