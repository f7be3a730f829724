"""Write the layer configs Keras 3 writes (`layer.get_config()`) for the layers onnxtrain has, and the dtype policies,
initializers and regularizers as Keras serializes them, for `tests/test_layers_dtype_policy.py`,
`tests/test_layers_keras_configs.py` and `tests/test_initializers_keras.py` (tests/data/keras/layer_configs.json).

Each layer of `layers` is made with `arguments` that onnxtrain's layer of the same class name takes too (a wrapper's
`layer` is `{"class_name", "arguments"}` of the layer it wraps), so a test can make both and compare; each is made in
a fresh Keras session, so its name (and a wrapped layer's) is the first of its class. `variants` holds the configs of
layers made with Keras' initializers, regularizers and other arguments that are not their defaults (`{"class_name",
"config"}`; the test states the onnxtrain layer each describes). `policies` holds
`keras.saving.serialize_keras_object` of each policy named (the `"dtype"` entry a layer made with it writes):
float32, Keras' default, and the mixed, half, double and quantized policies onnxtrain refuses. `initializers` holds
each of Keras' initializers that onnxtrain has, serialized, with what it draws for a (100, 200) weight (Keras' fans
100 and 200): the mean, standard deviation, minimum and maximum. `regularizers` holds each of Keras' regularizers
that onnxtrain has, serialized, with a weight and the penalty Keras computes for it.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds. Keras' IntegerLookup and Hashing need TensorFlow
to be made: they are left out.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_layer_configs.py
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

INIT, L, R = keras.initializers, keras.layers, keras.regularizers

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras" / "layer_configs.json"

POLICIES = (
    "float32",
    "mixed_float16",
    "mixed_bfloat16",
    "float16",
    "bfloat16",
    "float64",
    "int8_from_float32",
    "float8_from_float32",
)

# class name: the keyword arguments both Keras' and onnxtrain's layer take (a wrapper's "layer": the wrapped one's).
LAYERS: dict[str, dict[str, Any]] = {
    "Activation": {"activation": "relu"},
    "Add": {},
    "AdditiveAttention": {},
    "Attention": {},
    "Average": {},
    "AveragePooling1D": {"pool_size": 2},
    "AveragePooling2D": {"pool_size": 2},
    "AveragePooling3D": {"pool_size": 2},
    "BatchNormalization": {},
    "Bidirectional": {"layer": {"class_name": "LSTM", "arguments": {"units": 2}}},
    "CategoryEncoding": {"num_tokens": 4},
    "CenterCrop": {"height": 2, "width": 2},
    "Concatenate": {},
    "Conv1D": {"filters": 2, "kernel_size": 3},
    "Conv1DTranspose": {"filters": 2, "kernel_size": 3},
    "Conv2D": {"filters": 2, "kernel_size": 3},
    "Conv2DTranspose": {"filters": 2, "kernel_size": 3},
    "Conv3D": {"filters": 2, "kernel_size": 3},
    "Conv3DTranspose": {"filters": 2, "kernel_size": 3},
    "Cropping1D": {},
    "Cropping2D": {},
    "Cropping3D": {},
    "Dense": {"units": 3},
    "DepthwiseConv2D": {"kernel_size": 3},
    "Discretization": {"bin_boundaries": [0.0, 1.0]},
    "Dot": {"axes": 1},
    "Dropout": {"rate": 0.5},
    "ELU": {},
    "Embedding": {"input_dim": 10, "output_dim": 3},
    "Flatten": {},
    "GRU": {"units": 2},
    "GaussianDropout": {"rate": 0.1},
    "GaussianNoise": {"stddev": 0.1},
    "GlobalAveragePooling1D": {},
    "GlobalAveragePooling2D": {},
    "GlobalAveragePooling3D": {},
    "GlobalMaxPooling1D": {},
    "GlobalMaxPooling2D": {},
    "GlobalMaxPooling3D": {},
    "GroupNormalization": {"groups": 1},
    "LSTM": {"units": 2},
    "LayerNormalization": {},
    "LeakyReLU": {},
    "Masking": {},
    "MaxPooling1D": {},
    "MaxPooling2D": {},
    "MaxPooling3D": {},
    "Maximum": {},
    "Minimum": {},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 3},
    "Multiply": {},
    "Normalization": {"mean": 0.0, "variance": 1.0},
    "PReLU": {},
    "Permute": {"dims": [2, 1]},
    "RandomBrightness": {"factor": 0.1},
    "RandomContrast": {"factor": 0.1},
    "RandomCrop": {"height": 2, "width": 2},
    "RandomFlip": {},
    "RandomRotation": {"factor": 0.1},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomZoom": {"height_factor": 0.1},
    "ReLU": {},
    "RepeatVector": {"n": 2},
    "Rescaling": {"scale": 0.5},
    "Reshape": {"target_shape": [2, 2]},
    "Resizing": {"height": 2, "width": 2},
    "SeparableConv2D": {"filters": 2, "kernel_size": 3},
    "SimpleRNN": {"units": 2},
    "Softmax": {},
    "SpatialDropout1D": {"rate": 0.5},
    "SpatialDropout2D": {"rate": 0.5},
    "SpatialDropout3D": {"rate": 0.5},
    "Subtract": {},
    "TimeDistributed": {"layer": {"class_name": "Dense", "arguments": {"units": 2}}},
    "UnitNormalization": {},
    "UpSampling1D": {},
    "UpSampling2D": {},
    "UpSampling3D": {},
    "ZeroPadding1D": {},
    "ZeroPadding2D": {},
    "ZeroPadding3D": {},
}


# name: a layer made with Keras' objects and settings other than its defaults
VARIANTS: dict[str, Callable[[], keras.layers.Layer]] = {
    "Dense/initializers": lambda: L.Dense(
        3,
        kernel_initializer=INIT.RandomNormal(0.1, 0.2, seed=3),
        bias_initializer=INIT.Constant(0.5),
        kernel_regularizer=R.L1L2(0.01, 0.02),
        bias_regularizer="l2",
    ),
    "Dense/constant_array": lambda: L.Dense(2, kernel_initializer=INIT.Constant(np.arange(6.0).reshape(3, 2))),
    "Conv2D/variance_scaling": lambda: L.Conv2D(
        2,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=INIT.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=1),
        bias_initializer=INIT.RandomUniform(-0.1, 0.2, seed=2),
    ),
    "LSTM/zero_output_for_mask": lambda: L.LSTM(
        2,
        kernel_initializer="he_uniform",
        recurrent_initializer=INIT.Orthogonal(gain=0.5, seed=2),
        bias_initializer=INIT.TruncatedNormal(0.0, 0.1),
        return_sequences=True,
        zero_output_for_mask=True,
    ),
    "Bidirectional/sequences": lambda: L.Bidirectional(L.GRU(2, return_sequences=True)),
    "Embedding/lecun_normal": lambda: L.Embedding(
        10, 3, embeddings_initializer="lecun_normal", embeddings_regularizer=R.L2(0.001)
    ),
    "BatchNormalization/regularizers": lambda: L.BatchNormalization(
        beta_regularizer=R.L1(0.01), gamma_regularizer=R.L2(0.02), moving_variance_initializer=INIT.Constant(2.0)
    ),
    "LayerNormalization/rms_scaling": lambda: L.LayerNormalization(
        axis=[1, 2], rms_scaling=True, gamma_initializer=INIT.GlorotNormal(seed=4), gamma_regularizer="l1"
    ),
    "GroupNormalization/he_uniform": lambda: L.GroupNormalization(
        groups=2, gamma_initializer=INIT.HeUniform(seed=4), beta_regularizer=R.L2(0.1)
    ),
    "PReLU/constant": lambda: L.PReLU(alpha_initializer=INIT.Constant(0.25), shared_axes=[1]),
    "MultiHeadAttention/he_normal": lambda: L.MultiHeadAttention(
        2, 3, kernel_initializer=INIT.HeNormal(seed=5), bias_initializer="ones"
    ),
    "DepthwiseConv2D/lecun_uniform": lambda: L.DepthwiseConv2D(
        3, depthwise_initializer=INIT.LecunUniform(seed=6), depthwise_regularizer=R.L1(0.01)
    ),
    "SeparableConv2D/orthogonal": lambda: L.SeparableConv2D(
        2, 3, pointwise_initializer="orthogonal", depthwise_initializer="zeros"
    ),
}

# name: one of Keras' initializers that onnxtrain has, with arguments that are not its defaults where it takes any
INITIALIZERS: dict[str, Callable[[], keras.initializers.Initializer]] = {
    "zeros": INIT.Zeros,
    "ones": INIT.Ones,
    "constant": lambda: INIT.Constant(0.3),
    "random_normal": lambda: INIT.RandomNormal(0.1, 0.2, seed=1),
    "random_uniform": lambda: INIT.RandomUniform(-0.3, 0.1, seed=2),
    "truncated_normal": lambda: INIT.TruncatedNormal(0.2, 0.05, seed=3),
    "variance_scaling_untruncated_fan_out": lambda: INIT.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
    "variance_scaling_uniform_fan_avg": lambda: INIT.VarianceScaling(0.5, "fan_avg", "uniform", seed=4),
    "variance_scaling_normal_fan_in": lambda: INIT.VarianceScaling(1.5, "fan_in", "normal"),  # Keras: truncated
    "glorot_normal": INIT.GlorotNormal,
    "glorot_uniform": lambda: INIT.GlorotUniform(seed=5),
    "he_normal": INIT.HeNormal,
    "he_uniform": INIT.HeUniform,
    "lecun_normal": INIT.LecunNormal,
    "lecun_uniform": INIT.LecunUniform,
    "orthogonal": lambda: INIT.Orthogonal(gain=2.0, seed=6),
}
DRAWN_SHAPE = (100, 200)

REGULARIZERS: dict[str, Callable[[], keras.regularizers.Regularizer]] = {
    "l1": lambda: R.L1(0.02),
    "l2": lambda: R.L2(0.03),
    "l2_default": R.L2,
    "l1_l2": lambda: R.L1L2(0.01, 0.02),
}


def initializer_facts(make_initializer: Callable[[], keras.initializers.Initializer]) -> dict[str, Any]:
    initializer = make_initializer()
    drawn = np.asarray(initializer(DRAWN_SHAPE), np.float64)
    return {
        "config": keras.saving.serialize_keras_object(initializer),
        "shape": list(DRAWN_SHAPE),
        "mean": float(drawn.mean()),
        "std": float(drawn.std()),
        "min": float(drawn.min()),
        "max": float(drawn.max()),
    }


def regularizer_facts(make_regularizer: Callable[[], keras.regularizers.Regularizer], seed: int) -> dict[str, Any]:
    regularizer = make_regularizer()
    weight = np.random.default_rng(seed).normal(size=(3, 4)).astype(np.float32)
    return {
        "config": keras.saving.serialize_keras_object(regularizer),
        "weight": weight.tolist(),
        "penalty": float(regularizer(weight)),
    }


def make(class_name: str, arguments: dict[str, Any]) -> keras.layers.Layer:
    wrapped = arguments.get("layer")
    if isinstance(wrapped, dict):
        arguments = {**arguments, "layer": make(wrapped["class_name"], wrapped["arguments"])}
    return getattr(keras.layers, class_name)(**arguments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    warnings.filterwarnings("ignore", message=".*rms_scaling=True.*")  # Keras deprecates it; configs still hold it
    policies = {name: keras.saving.serialize_keras_object(keras.dtype_policies.get(name)) for name in POLICIES}
    layers, variants = {}, {}
    for name, arguments in LAYERS.items():
        keras.utils.clear_session()
        layers[name] = {"arguments": arguments, "config": make(name, arguments).get_config()}
    for name, make_variant in VARIANTS.items():
        keras.utils.clear_session()
        variants[name] = {"class_name": name.partition("/")[0], "config": make_variant().get_config()}
    initializers = {name: initializer_facts(make_initializer) for name, make_initializer in INITIALIZERS.items()}
    regularizers = {
        name: regularizer_facts(make_regularizer, i) for i, (name, make_regularizer) in enumerate(REGULARIZERS.items())
    }
    fixture = {
        "keras_version": keras.__version__,
        "policies": policies,
        "layers": layers,
        "variants": variants,
        "initializers": initializers,
        "regularizers": regularizers,
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(
        f"Keras {keras.__version__}: {len(layers)} layer configs, {len(variants)} variants, {len(policies)} "
        f"policies, {len(initializers)} initializers, {len(regularizers)} regularizers -> {OUT}"
    )


if __name__ == "__main__":
    main()
