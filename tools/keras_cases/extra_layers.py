"""Keras twins of the rows in tests/test_layers_extra.py: GroupNormalization, UnitNormalization, GaussianNoise and
GaussianDropout (inference mode: the identity), the 1-D reshaping layers and Conv1DTranspose."""

import keras

L = keras.layers

CASES = {
    "group_norm": (lambda: L.GroupNormalization(groups=2), (4, 6)),
    "group_norm_image": (lambda: L.GroupNormalization(groups=3, epsilon=1e-2), (3, 3, 6)),
    "group_norm_instance": (lambda: L.GroupNormalization(groups=-1), (5, 4)),
    "group_norm_axis1": (lambda: L.GroupNormalization(groups=2, axis=1), (4, 3, 2)),
    "group_norm_flat_no_center": (lambda: L.GroupNormalization(groups=1, center=False), (6,)),
    "group_norm_no_scale": (lambda: L.GroupNormalization(groups=2, scale=False), (3, 4)),
    "unit_norm": (lambda: L.UnitNormalization(), (6,)),
    "unit_norm_axes": (lambda: L.UnitNormalization(axis=[1, 2]), (3, 4, 2)),
    "unit_norm_axis1": (lambda: L.UnitNormalization(axis=1), (4, 3)),
    "gaussian_noise": (lambda: L.GaussianNoise(0.5), (6,)),
    "gaussian_noise_image": (lambda: L.GaussianNoise(0.1, seed=4), (3, 3, 2)),
    "gaussian_dropout": (lambda: L.GaussianDropout(0.3, seed=2), (4, 3)),
    "zero_padding1d_int": (lambda: L.ZeroPadding1D(2), (4, 3)),
    "zero_padding1d_asym": (lambda: L.ZeroPadding1D((1, 3)), (4, 3)),
    "cropping1d": (lambda: L.Cropping1D(), (5, 2)),
    "cropping1d_asym": (lambda: L.Cropping1D((2, 0)), (5, 2)),
    "upsampling1d": (lambda: L.UpSampling1D(), (3, 2)),
    "upsampling1d_3": (lambda: L.UpSampling1D(3), (4, 3)),
    "conv1d_transpose_same": (lambda: L.Conv1DTranspose(3, 3, padding="same", activation="relu"), (5, 2)),
    "conv1d_transpose_valid_strided": (lambda: L.Conv1DTranspose(2, 3, strides=2, padding="valid"), (4, 3)),
    "conv1d_transpose_output_padding": (
        lambda: L.Conv1DTranspose(2, 3, strides=2, padding="same", output_padding=1),
        (4, 3),
    ),
    "conv1d_transpose_dilated_nobias": (
        lambda: L.Conv1DTranspose(2, 3, padding="same", dilation_rate=2, use_bias=False, activation="relu"),
        (5, 2),
    ),
}
