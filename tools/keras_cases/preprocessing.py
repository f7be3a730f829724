"""Keras twins of the preprocessing layer rows in tests/test_layers_preprocessing.py."""

import keras
import numpy as np


class AdaptedNormalization(keras.layers.Normalization):
    """Normalization whose weights (mean, variance, count) the fixture sets: Keras recomputes the statistics it
    divides by when it adapts or loads weights, not on `set_weights`, so this does it there too."""

    def set_weights(self, weights):
        mean, variance, count = weights
        super().set_weights([mean, variance, np.asarray(abs(count) * 100, dtype="int64")])
        self.finalize_state()


CASES = {
    "rescaling": (lambda: keras.layers.Rescaling(0.5, offset=-1.0), (4,)),
    "rescaling_per_channel": (lambda: keras.layers.Rescaling([0.5, 2.0, -1.0], offset=[0.0, 1.0, 0.5]), (2, 3)),
    "normalization_given": (
        lambda: keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 0.25]),
        (3,),
    ),
    "normalization_given_invert": (
        lambda: keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 0.25], invert=True),
        (2, 3),
    ),
    "normalization_scalar": (lambda: keras.layers.Normalization(axis=None, mean=0.5, variance=2.0), (2, 3)),
    "normalization_adapted": (lambda: AdaptedNormalization(), (4, 3)),
    "normalization_adapted_axis1": (lambda: AdaptedNormalization(axis=1), (4, 3)),
}
