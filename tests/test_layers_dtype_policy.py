"""Keras' dtype policies as a layer's `dtype` (`layers/_input_arguments.py`): the float32 policy that Keras 3's
`get_config()` writes (`{"class_name": "DTypePolicy", "config": {"name": "float32"}, ...}`) and "float32" are taken
by every layer type, any other policy is refused naming it, and the layer configs Keras 3 writes
(tests/data/keras/layer_configs.json, from tools/keras_layer_configs.py) load as the layers they describe."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from layer_harness import KERAS_FIXTURES

from onnxtrain import Sequential
from onnxtrain.errors import UnsupportedError
from onnxtrain.layers import Dense, Layer
from onnxtrain.layers._input_arguments import declared_input

FIXTURE = json.loads((KERAS_FIXTURES / "layer_configs.json").read_text())
POLICIES: dict[str, dict[str, Any]] = FIXTURE["policies"]
LAYERS: dict[str, dict[str, Any]] = FIXTURE["layers"]
FLOAT32 = POLICIES["float32"]

# onnxtrain's layer types that the fixture has no Keras 3 config of, and why
NO_KERAS_CONFIG = {
    "BaseConv": "a private base",
    "Functional": "a model: Keras writes a Functional config, not a layer's",
    "Input": "its dtype is its own argument (Keras' InputLayer writes a dtype name)",
    "Lambda": "Keras writes its function as Python bytecode",
    "OnnxLayer": "onnxtrain's own",
    "OnnxOutput": "onnxtrain's own",
    "ThresholdedReLU": "not in Keras 3",
    "Hashing": "Keras 3 makes it with TensorFlow only",
    "IntegerLookup": "Keras 3 makes it with TensorFlow only",
}

KERAS_REWRITES = {  # arguments Keras' config writes otherwise than it was given: the config's value is the layer's
    "RandomBrightness": ("factor",),  # 0.1 as [-0.1, 0.1]
    "RandomContrast": ("factor",),
    "RandomRotation": ("factor",),
    "RandomCrop": ("seed",),  # a seed Keras drew
}
# Keras' defaults of arguments whose onnxtrain default is KotlinDL's ("relu", "same", he_normal, he_uniform): the
# config writes Keras' own, and the layer it describes has them
KERAS_DEFAULTS = {
    "activation": "linear",
    "padding": "valid",
    "kernel_initializer": "glorot_uniform",
    "depthwise_initializer": "glorot_uniform",
    "pointwise_initializer": "glorot_uniform",
    "bias_initializer": "zeros",
}
_DENSE = ("activation", "kernel_initializer", "bias_initializer")
KOTLINDL_DEFAULTS = {
    "Dense": _DENSE,
    **dict.fromkeys(
        ["Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose"], (*_DENSE, "padding")
    ),
    "DepthwiseConv2D": ("activation", "padding", "depthwise_initializer", "bias_initializer"),
    "SeparableConv2D": ("activation", "padding", "depthwise_initializer", "pointwise_initializer", "bias_initializer"),
}


def as_keras_made(class_name: str, arguments: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """`arguments` with Keras' values where its `config` says otherwise than they do (`KERAS_REWRITES`) or onnxtrain's
    defaults differ (`KOTLINDL_DEFAULTS`); a wrapper's layer likewise."""
    result = arguments | {key: config[key] for key in KERAS_REWRITES.get(class_name, ())}
    result |= {key: KERAS_DEFAULTS[key] for key in KOTLINDL_DEFAULTS.get(class_name, ())}
    inner = arguments.get("layer")
    if isinstance(inner, dict):
        made = as_keras_made(inner["class_name"], inner["arguments"], config["layer"]["config"])
        result["layer"] = {**inner, "arguments": made}
    return result


def make(class_name: str, arguments: dict[str, Any], extra: dict[str, Any], wrapped: dict[str, Any]) -> Layer:
    """onnxtrain's layer of `class_name`, made with the arguments Keras' was made with and `extra` (a wrapper's
    layer with `wrapped`)."""
    arguments = dict(arguments)
    inner = arguments.get("layer")
    if isinstance(inner, dict):
        arguments["layer"] = make(inner["class_name"], inner["arguments"], wrapped, wrapped)
    return Layer.registry[class_name](**arguments, **extra)


def made(class_name: str, **extra: Any) -> Layer:
    return make(class_name, LAYERS[class_name]["arguments"], extra, extra)


def keras_serialized(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """`config` as `keras.saving.serialize_keras_object` writes a layer (and a model's config its layers)."""
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def load_outcome(class_name: str, config: dict[str, Any]) -> tuple[str, Any]:
    """("loaded", the loaded layer's config) or ("refused", the error's type and message)."""
    try:
        return "loaded", Layer.from_config(keras_serialized(class_name, config)).get_config()
    except (ValueError, TypeError) as e:
        return "refused", (type(e).__name__, str(e))


class DTypePolicy:
    """What onnxtrain reads of a `keras.DTypePolicy` object (onnxtrain never imports Keras): its class name and
    `name`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


def test_the_fixture_has_every_layer_type_that_keras_has() -> None:
    public = {name for name, cls in Layer.registry.items() if "." not in name and not cls.__name__.startswith("_")}
    assert sorted(LAYERS) == sorted(public - NO_KERAS_CONFIG.keys())
    assert FLOAT32 == {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }


@pytest.mark.parametrize("class_name", sorted(LAYERS))
def test_every_layer_type_takes_the_float32_policy_keras_writes(class_name: str) -> None:
    written = LAYERS[class_name]["config"]["dtype"]
    assert written in (FLOAT32, "float32")  # Keras 3 writes the policy; a few preprocessing layers its name
    expected = made(class_name).get_config()
    for dtype in (written, FLOAT32, "float32", np.float32, DTypePolicy("float32")):
        assert made(class_name, dtype=dtype).get_config() == expected, dtype


@pytest.mark.parametrize("class_name", sorted(LAYERS))
def test_every_layer_type_refuses_a_mixed_precision_policy_naming_it(class_name: str) -> None:
    arguments = LAYERS[class_name]["arguments"]
    with pytest.raises(
        UnsupportedError,
        match=rf"^{class_name}\(dtype=\.\.\.\) is Keras' dtype policy 'mixed_float16', .* float32 only.*"
        r"Received: dtype=\{.*'class_name': 'DTypePolicy', 'config': \{'name': 'mixed_float16'\}",
    ):
        make(class_name, arguments, {"dtype": POLICIES["mixed_float16"]}, {})


@pytest.mark.parametrize("class_name", sorted(LAYERS))
def test_a_keras_layer_config_loads_the_same_with_its_dtype_policy_or_without(class_name: str) -> None:
    config = LAYERS[class_name]["config"]
    without = {key: value for key, value in config.items() if key != "dtype"}
    assert load_outcome(class_name, config) == load_outcome(class_name, without)


@pytest.mark.parametrize("class_name", sorted(LAYERS))
def test_a_keras_layer_config_loads_as_the_layer_it_describes(class_name: str) -> None:
    entry = LAYERS[class_name]
    config = entry["config"]
    layer = Layer.from_config(keras_serialized(class_name, config))
    assert type(layer).__name__ == class_name
    expected = make(class_name, as_keras_made(class_name, entry["arguments"], config), {"name": config["name"]}, {})
    assert layer.get_config() == expected.get_config()


def test_a_float32_policy_beside_input_shape_declares_a_float32_input() -> None:
    layer = Dense(3, input_shape=(4,), dtype=FLOAT32)
    assert declared_input(layer) == declared_input(Dense(3, input_shape=(4,)))
    declared = declared_input(layer)
    assert declared is not None and declared.shape == (4,) and declared.dtype == np.float32
    with (
        Sequential([layer], seed=0, name="m") as model,
        Sequential([Dense(3, input_shape=(4,))], seed=0, name="m") as plain,
    ):
        assert model.get_config() == plain.get_config()
        assert model.get_config()["layers"][0]["config"]["dtype"] == "float32"  # its Input


@pytest.mark.parametrize(
    "policy",
    [
        {"class_name": "Policy", "config": {"name": "float32"}},  # Keras 2's mixed_precision.Policy
        {"module": "keras.dtype_policies", "class_name": "FloatDTypePolicy", "config": {"name": "float32"}},  # 3.0
    ],
)
def test_the_float32_policies_of_earlier_keras_versions_are_taken(policy: dict[str, Any]) -> None:
    assert Dense(3, dtype=policy).get_config() == Dense(3).get_config()


MIXED_FLOAT16 = POLICIES["mixed_float16"]
REFUSED_POLICY = r"is Keras' dtype policy '{}', and onnxtrain computes and keeps its weights in float32 only"
BAD = [
    *(
        ({"dtype": POLICIES[name]}, REFUSED_POLICY.format(name) + r".*Received: dtype=\{.*'class_name': '\w*Policy'")
        for name in sorted(POLICIES)
        if name != "float32"
    ),
    ({"dtype": "mixed_bfloat16"}, REFUSED_POLICY.format("mixed_bfloat16") + r".*Received: dtype='mixed_bfloat16'$"),
    ({"dtype": "int8_from_float32"}, REFUSED_POLICY.format("int8_from_float32")),
    ({"dtype": DTypePolicy("mixed_float16")}, REFUSED_POLICY.format("mixed_float16") + r'.*<DTypePolicy "mixed'),
    ({"dtype": {"class_name": "Policy", "config": {"name": "mixed_float16"}}}, REFUSED_POLICY.format("mixed_float16")),
    ({"dtype": MIXED_FLOAT16, "input_shape": (4,)}, REFUSED_POLICY.format("mixed_float16")),
    ({"dtype": "mixed_float16", "input_dim": 4}, REFUSED_POLICY.format("mixed_float16")),
    (
        {"dtype": {"class_name": "DTypePolicy", "config": {}}},
        r"is a Keras dtype policy naming no dtype, .*Received: dtype=\{'class_name': 'DTypePolicy', 'config': \{\}\}",
    ),
    ({"dtype": "float16"}, r"without input_shape is Keras' compute dtype, .*Received: dtype='float16'$"),
    ({"dtype": {"units": 3}}, r"without input_shape is Keras' compute dtype, .*Received: dtype=\{'units': 3\}$"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_other_dtypes_and_policies_are_refused_naming_them(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedError, match=rf"^Dense\(dtype=\.\.\.\) {message}"):
        Dense(3, **kwargs)
    with pytest.raises(UnsupportedError, match=message):  # as a config Keras wrote, loading
        Dense.from_config({**Dense(3).get_config(), **kwargs})
