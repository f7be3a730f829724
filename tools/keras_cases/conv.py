"""Keras twins of the convolution rows in tests/test_layers_conv.py (every argument spelled out: onnxtrain's
defaults are KotlinDL's)."""

import keras

L = keras.layers

CASES = {
    "conv2d_same": (lambda: L.Conv2D(4, 3, padding="same", activation="relu"), (6, 5, 2)),
    "conv2d_valid_strided": (lambda: L.Conv2D(3, (3, 2), strides=2, padding="valid"), (7, 6, 2)),
    "conv2d_same_strided": (lambda: L.Conv2D(3, 3, strides=2, padding="same", activation="tanh"), (7, 6, 2)),
    "conv2d_dilated_nobias": (lambda: L.Conv2D(2, 3, padding="same", dilation_rate=2, use_bias=False), (7, 7, 3)),
    "conv2d_groups": (lambda: L.Conv2D(4, 3, padding="valid", groups=2, activation="relu"), (5, 5, 4)),
    "conv2d_softmax": (lambda: L.Conv2D(3, 1, padding="same", activation="softmax"), (3, 4, 2)),
    "conv1d_same": (lambda: L.Conv1D(3, 3, padding="same", activation="relu"), (8, 2)),
    "conv1d_valid_strided": (lambda: L.Conv1D(2, 4, strides=3, padding="valid"), (11, 3)),
    "conv1d_causal_dilated": (lambda: L.Conv1D(2, 3, padding="causal", dilation_rate=2), (9, 2)),
    "conv_depthwise_same": (lambda: L.DepthwiseConv2D(3, padding="same", activation="relu"), (6, 6, 3)),
    "conv_depthwise_multiplier_strided": (
        lambda: L.DepthwiseConv2D((3, 2), strides=2, padding="valid", depth_multiplier=2),
        (7, 6, 2),
    ),
    "conv_depthwise_dilated_nobias": (
        lambda: L.DepthwiseConv2D(3, padding="same", dilation_rate=2, use_bias=False),
        (7, 7, 2),
    ),
    "conv_separable_same": (lambda: L.SeparableConv2D(4, 3, padding="same", activation="relu"), (6, 6, 3)),
    "conv_separable_multiplier_strided": (
        lambda: L.SeparableConv2D(3, 3, strides=2, padding="valid", depth_multiplier=2),
        (7, 7, 2),
    ),
    "conv_separable_dilated_nobias": (
        lambda: L.SeparableConv2D(2, 3, padding="same", dilation_rate=2, use_bias=False, activation="relu"),
        (7, 7, 2),
    ),
    "conv2d_transpose_same": (lambda: L.Conv2DTranspose(3, 3, padding="same", activation="relu"), (4, 4, 2)),
    "conv2d_transpose_same_strided": (lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same"), (3, 4, 3)),
    "conv2d_transpose_even_kernel": (
        lambda: L.Conv2DTranspose(2, 4, strides=2, padding="same", activation="relu"),
        (3, 3, 1),
    ),
    "conv2d_transpose_valid_strided": (
        lambda: L.Conv2DTranspose(2, (3, 2), strides=(2, 3), padding="valid", activation="relu"),
        (3, 3, 2),
    ),
    "conv2d_transpose_output_padding": (
        lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1),
        (3, 3, 2),
    ),
    "conv2d_transpose_valid_output_padding": (
        lambda: L.Conv2DTranspose(2, 2, strides=3, padding="valid", output_padding=(1, 2), activation="relu"),
        (3, 2, 1),
    ),
    "conv2d_transpose_dilated_nobias": (
        lambda: L.Conv2DTranspose(2, 3, padding="same", dilation_rate=2, use_bias=False, activation="relu"),
        (4, 4, 2),
    ),
}
