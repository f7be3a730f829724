"""Keras twins of the Embedding rows in tests/test_layers_embedding.py."""

import keras

CASES = {
    "embedding": (lambda: keras.layers.Embedding(6, 3), (4,)),
    "embedding_2d": (lambda: keras.layers.Embedding(5, 2), (2, 3)),
}
