"""Print what Keras 3 draws for convolution kernels under each fan-based initializer: the facts that
tests/test_initializers.py (`KERAS_KERNEL_FACTS`) checks onnxtrain's kernels against, without Keras installed.

For each case (a layer on an input shape, one of its kernels, an initializer) it builds the Keras layer, draws the
kernel in Keras' layout (*window, in, out) and prints its shape, its standard deviation, and, for Orthogonal,
which of the rows or columns of Keras' flattening (prod(window) * in, out) are orthonormal. The std of a draw of
~10k values is within about 1% of the distribution's.

Runs in a Python with Keras 3 and JAX (not onnxtrain's): seconds.

Usage: KERAS_BACKEND=jax /work/venv-jax/bin/python tools/keras_initializer_facts.py
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

INITIALIZERS = {
    "glorot_uniform": "glorot_uniform",
    "glorot_normal": "glorot_normal",
    "he_normal": "he_normal",
    "he_uniform": "he_uniform",
    "lecun_normal": "lecun_normal",
    "lecun_uniform": "lecun_uniform",
    "variance_scaling_fan_out": {
        "class_name": "VarianceScaling",
        "config": {"scale": 0.5, "mode": "fan_out", "distribution": "uniform"},
    },
    "orthogonal": "orthogonal",
}

# case -> (Keras layer class, its arguments, per-example input shape, the kernel's argument, the kernel's weight)
LAYERS = {
    "conv1d": ("Conv1D", {"filters": 64, "kernel_size": 5}, (16, 32), "kernel_initializer", "kernel"),
    "conv2d": ("Conv2D", {"filters": 64, "kernel_size": 3}, (8, 8, 32), "kernel_initializer", "kernel"),
    "conv2d_groups": (
        "Conv2D",
        {"filters": 64, "kernel_size": 3, "groups": 2},
        (8, 8, 32),
        "kernel_initializer",
        "kernel",
    ),
    "conv2d_wide": ("Conv2D", {"filters": 512, "kernel_size": 2}, (8, 8, 4), "kernel_initializer", "kernel"),
    "conv2d_transpose": (
        "Conv2DTranspose",
        {"filters": 16, "kernel_size": 3},
        (8, 8, 48),
        "kernel_initializer",
        "kernel",
    ),
    "conv1d_transpose": (
        "Conv1DTranspose",
        {"filters": 24, "kernel_size": 4},
        (16, 96),
        "kernel_initializer",
        "kernel",
    ),
    "depthwise_conv2d": (
        "DepthwiseConv2D",
        {"kernel_size": 3, "depth_multiplier": 8},
        (8, 8, 64),
        "depthwise_initializer",
        "kernel",
    ),
    "separable_depthwise": (
        "SeparableConv2D",
        {"filters": 64, "kernel_size": 3, "depth_multiplier": 8},
        (8, 8, 64),
        "depthwise_initializer",
        "depthwise_kernel",
    ),
    "separable_pointwise": (
        "SeparableConv2D",
        {"filters": 96, "kernel_size": 3, "depth_multiplier": 2},
        (8, 8, 64),
        "pointwise_initializer",
        "pointwise_kernel",
    ),
}


def main() -> None:
    keras.utils.set_random_seed(0)
    print("KERAS_KERNEL_FACTS = {  # (layer case, initializer): (Keras' kernel shape, its std, orthonormal)")
    for case, (class_name, arguments, input_shape, argument, weight) in LAYERS.items():
        for name, initializer in INITIALIZERS.items():
            layer = getattr(keras.layers, class_name)(**arguments, **{argument: initializer})
            layer.build((None, *input_shape))
            kernel = np.asarray(next(w for w in layer.weights if w.path.endswith(weight)).numpy(), np.float64)
            orthonormal = None
            if name == "orthogonal":
                matrix = kernel.reshape(-1, kernel.shape[-1])
                gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
                assert np.allclose(gram, np.eye(len(gram)), atol=1e-5), (case, "Keras' own draw is not orthonormal")
                orthonormal = "columns" if matrix.shape[0] >= matrix.shape[1] else "rows"
            print(f"    ({case!r}, {name!r}): ({tuple(kernel.shape)}, {kernel.std():.5f}, {orthonormal!r}),")
    print("}")


if __name__ == "__main__":
    main()
