"""Keras twins of the pooling rows in tests/test_layers_pooling.py."""

import keras

L = keras.layers

CASES = {
    "max_pool2d": (lambda: L.MaxPooling2D(), (6, 6, 3)),
    "max_pool2d_same": (lambda: L.MaxPooling2D((3, 3), strides=1, padding="same"), (5, 5, 2)),
    "max_pool2d_strides": (lambda: L.MaxPooling2D((3, 2), strides=(2, 1)), (7, 5, 2)),
    "max_pool2d_same_odd": (lambda: L.MaxPooling2D(2, padding="same"), (5, 7, 2)),
    "max_pool1d": (lambda: L.MaxPooling1D(2), (7, 3)),
    "max_pool1d_same": (lambda: L.MaxPooling1D(3, strides=2, padding="same"), (7, 3)),
    "avg_pool2d": (lambda: L.AveragePooling2D((2, 2)), (6, 6, 3)),
    "avg_pool2d_same": (lambda: L.AveragePooling2D(3, strides=2, padding="same"), (5, 6, 2)),
    "avg_pool1d": (lambda: L.AveragePooling1D(3, strides=1), (6, 2)),
    "avg_pool1d_same": (lambda: L.AveragePooling1D(2, padding="same"), (7, 3)),
    "global_avg_pool2d": (lambda: L.GlobalAveragePooling2D(), (4, 5, 3)),
    "global_avg_pool2d_keepdims": (lambda: L.GlobalAveragePooling2D(keepdims=True), (4, 5, 3)),
    "global_max_pool2d": (lambda: L.GlobalMaxPooling2D(), (4, 5, 3)),
    "global_avg_pool1d": (lambda: L.GlobalAveragePooling1D(), (6, 4)),
    "global_max_pool1d": (lambda: L.GlobalMaxPooling1D(), (6, 4)),
    "global_max_pool1d_keepdims": (lambda: L.GlobalMaxPooling1D(keepdims=True), (6, 4)),
}
