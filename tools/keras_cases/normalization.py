"""Keras twins of the normalization rows in tests/test_layers_normalization.py (inference mode: moving statistics)."""

import keras

L = keras.layers

CASES = {
    "batch_norm": (lambda: L.BatchNormalization(), (5,)),
    "batch_norm_image": (lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-2), (4, 4, 3)),
    "batch_norm_axis1": (lambda: L.BatchNormalization(axis=1), (4, 3, 2)),
    "batch_norm_plain": (lambda: L.BatchNormalization(center=False, scale=False), (3, 3, 2)),
    "batch_norm_sequence": (lambda: L.BatchNormalization(scale=False), (6, 4)),
    "layer_norm": (lambda: L.LayerNormalization(), (6,)),
    "layer_norm_image": (lambda: L.LayerNormalization(axis=[1, 2, 3]), (3, 3, 2)),
    "layer_norm_trailing": (lambda: L.LayerNormalization(axis=[-2, -1], epsilon=1e-5), (2, 3, 4)),
    "layer_norm_axis1": (lambda: L.LayerNormalization(axis=1), (4, 3)),
    "layer_norm_no_center": (lambda: L.LayerNormalization(center=False), (2, 5)),
    "layer_norm_no_scale": (lambda: L.LayerNormalization(scale=False), (2, 5)),
}
