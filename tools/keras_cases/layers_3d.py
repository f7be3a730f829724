"""Keras twins of the 3-D layer rows in tests/test_layers_3d.py (the convolutions spell every argument out:
onnxtrain's defaults are KotlinDL's)."""

import keras

L = keras.layers

CASES = {
    "conv3d_same": (lambda: L.Conv3D(3, 3, padding="same", activation="relu"), (4, 5, 6, 2)),
    "conv3d_valid_strided": (lambda: L.Conv3D(2, (2, 3, 2), strides=(1, 2, 2), padding="valid"), (4, 5, 6, 2)),
    "conv3d_same_strided": (lambda: L.Conv3D(2, 3, strides=2, padding="same", activation="tanh"), (4, 5, 6, 2)),
    "conv3d_dilated_nobias": (lambda: L.Conv3D(2, 2, padding="same", dilation_rate=2, use_bias=False), (4, 5, 6, 2)),
    "conv3d_groups": (lambda: L.Conv3D(4, 2, padding="valid", groups=2, activation="relu"), (3, 4, 5, 4)),
    "conv3d_softmax": (lambda: L.Conv3D(3, 1, padding="same", activation="softmax"), (2, 3, 4, 2)),
    "conv3d_transpose_same_strided": (lambda: L.Conv3DTranspose(2, 3, strides=2, padding="same"), (2, 3, 2, 3)),
    "conv3d_transpose_valid": (
        lambda: L.Conv3DTranspose(2, (2, 3, 2), strides=(1, 2, 3), padding="valid", activation="relu"),
        (2, 3, 2, 2),
    ),
    "conv3d_transpose_output_padding": (
        lambda: L.Conv3DTranspose(2, 2, strides=2, padding="same", output_padding=(1, 0, 1)),
        (2, 2, 3, 1),
    ),
    "conv3d_transpose_dilated_nobias": (
        lambda: L.Conv3DTranspose(2, 2, padding="same", dilation_rate=2, use_bias=False, activation="relu"),
        (3, 3, 3, 2),
    ),
    "max_pool3d": (lambda: L.MaxPooling3D(), (4, 5, 6, 2)),
    "max_pool3d_same_strides": (lambda: L.MaxPooling3D((3, 2, 2), strides=(2, 1, 2), padding="same"), (4, 5, 6, 2)),
    "max_pool3d_overlapping": (lambda: L.MaxPool3D(2, strides=1), (3, 4, 5, 2)),
    "avg_pool3d": (lambda: L.AveragePooling3D((2, 2, 2)), (4, 5, 6, 2)),
    "avg_pool3d_same": (lambda: L.AvgPool3D(3, strides=2, padding="same"), (4, 5, 6, 2)),
    "global_avg_pool3d": (lambda: L.GlobalAveragePooling3D(), (4, 5, 6, 2)),
    "global_avg_pool3d_keepdims": (lambda: L.GlobalAveragePooling3D(keepdims=True), (4, 5, 6, 2)),
    "global_max_pool3d": (lambda: L.GlobalMaxPooling3D(), (4, 5, 6, 2)),
    "global_max_pool3d_keepdims": (lambda: L.GlobalMaxPool3D(keepdims=True), (4, 5, 6, 2)),
    "zero_padding3d_default": (lambda: L.ZeroPadding3D(), (3, 4, 5, 2)),
    "zero_padding3d_mixed": (lambda: L.ZeroPadding3D(((1, 0), 2, (0, 3))), (3, 4, 5, 2)),
    "cropping3d_default": (lambda: L.Cropping3D(), (4, 5, 6, 2)),
    "cropping3d_mixed": (lambda: L.Cropping3D(((1, 0), (0, 2), 1)), (4, 5, 6, 2)),
    "upsampling3d_default": (lambda: L.UpSampling3D(), (2, 3, 2, 2)),
    "upsampling3d_mixed": (lambda: L.UpSampling3D((1, 2, 3)), (2, 3, 2, 2)),
}
