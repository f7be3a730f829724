"""Keras twins of the core layer rows in tests/test_layers.py."""

import keras

CASES = {
    "flatten": (lambda: keras.layers.Flatten(), (2, 3, 2)),
    "dense_relu": (lambda: keras.layers.Dense(4, activation="relu"), (6,)),
    "dense_linear_nobias": (lambda: keras.layers.Dense(3, use_bias=False), (5,)),
    "dense_tanh": (lambda: keras.layers.Dense(2, activation="tanh"), (3,)),
    "dense_sequence": (lambda: keras.layers.Dense(4, activation="relu"), (3, 6)),
    "dense_rank4_nobias": (lambda: keras.layers.Dense(2, use_bias=False), (2, 3, 5)),
}
