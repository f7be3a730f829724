"""Write the layer configs Keras 3 writes (`layer.get_config()`) for the layers onnxtrain has, and the dtype policies
as Keras serializes them, for `tests/test_layers_dtype_policy.py` (tests/data/keras/layer_configs.json).

Each layer is made with `arguments` that onnxtrain's layer of the same class name takes too (a wrapper's `layer` is
`{"class_name", "arguments"}` of the layer it wraps), so a test can make both and compare. `policies` holds
`keras.saving.serialize_keras_object` of each policy named (the `"dtype"` entry a layer made with it writes):
float32, Keras' default, and the mixed, half, double and quantized policies onnxtrain refuses.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds. Keras' IntegerLookup and Hashing need TensorFlow
to be made: they are left out.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_layer_configs.py
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

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


def make(class_name: str, arguments: dict[str, Any]) -> keras.layers.Layer:
    wrapped = arguments.get("layer")
    if isinstance(wrapped, dict):
        arguments = {**arguments, "layer": make(wrapped["class_name"], wrapped["arguments"])}
    return getattr(keras.layers, class_name)(**arguments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    policies = {name: keras.saving.serialize_keras_object(keras.dtype_policies.get(name)) for name in POLICIES}
    layers = {
        name: {"arguments": arguments, "config": make(name, arguments).get_config()}
        for name, arguments in LAYERS.items()
    }
    fixture = {"keras_version": keras.__version__, "policies": policies, "layers": layers}
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"Keras {keras.__version__}: {len(layers)} layer configs, {len(policies)} policies -> {OUT}")


if __name__ == "__main__":
    main()
