"""Keras twins of the dropout rows in tests/test_layers_dropout.py (inference mode: the identity)."""

import keras

L = keras.layers

CASES = {
    "dropout": (lambda: L.Dropout(0.5), (6,)),
    "dropout_image": (lambda: L.Dropout(0.2, seed=3), (4, 4, 3)),
    "dropout_noise_shape": (lambda: L.Dropout(0.3, noise_shape=(None, 1, 3)), (5, 3)),
    "spatial_dropout1d": (lambda: L.SpatialDropout1D(0.25), (5, 3)),
    "spatial_dropout2d": (lambda: L.SpatialDropout2D(0.25), (4, 4, 3)),
    "spatial_dropout3d": (lambda: L.SpatialDropout3D(0.25), (2, 3, 4, 3)),
}
