"""Keras twins of the TimeDistributed rows in tests/test_layers_time_distributed.py (every argument of the wrapped
layer spelled out: onnxtrain's defaults are KotlinDL's)."""

import keras

L = keras.layers

CASES = {
    "time_distributed_dense": (lambda: L.TimeDistributed(L.Dense(3, activation="tanh")), (4, 5)),
    "time_distributed_dense_sequence": (lambda: L.TimeDistributed(L.Dense(2, activation="linear")), (3, 4, 5)),
    "time_distributed_conv2d": (
        lambda: L.TimeDistributed(L.Conv2D(3, (3, 2), strides=1, padding="valid", activation="relu")),
        (3, 6, 5, 2),
    ),
    "time_distributed_conv2d_same": (
        lambda: L.TimeDistributed(L.Conv2D(2, 3, strides=2, padding="same", activation="linear")),
        (2, 5, 5, 3),
    ),
    "time_distributed_max_pooling2d": (lambda: L.TimeDistributed(L.MaxPooling2D(2)), (3, 6, 4, 2)),
    "time_distributed_flatten": (lambda: L.TimeDistributed(L.Flatten()), (4, 3, 2, 2)),
    "time_distributed_batch_normalization": (lambda: L.TimeDistributed(L.BatchNormalization()), (4, 3)),
    "time_distributed_batch_normalization_image": (
        lambda: L.TimeDistributed(L.BatchNormalization(epsilon=0.01)),
        (3, 4, 4, 2),
    ),
}
