"""Keras twins of the merge layer rows in tests/test_functional.py (ids prefixed merge_)."""

import keras

CASES = {
    "merge_add": (lambda: keras.layers.Add(), [(3, 4), (3, 4), (3, 4)]),
    "merge_add_broadcast": (lambda: keras.layers.Add(), [(3, 4), (1, 4), (4,)]),
    "merge_subtract": (lambda: keras.layers.Subtract(), [(5,), (5,)]),
    "merge_multiply": (lambda: keras.layers.Multiply(), [(2, 3), (2, 3)]),
    "merge_average": (lambda: keras.layers.Average(), [(4,), (4,), (4,)]),
    "merge_maximum": (lambda: keras.layers.Maximum(), [(4,), (4,), (4,)]),
    "merge_minimum": (lambda: keras.layers.Minimum(), [(2, 2), (2, 1)]),
    "merge_concatenate": (lambda: keras.layers.Concatenate(), [(3,), (5,)]),
    "merge_concatenate_axis1": (lambda: keras.layers.Concatenate(axis=1), [(2, 3), (4, 3)]),
    "merge_dot": (lambda: keras.layers.Dot(axes=1), [(5,), (5,)]),
    "merge_dot_axes_1_2": (lambda: keras.layers.Dot(axes=(1, 2)), [(3, 5), (4, 3)]),
    "merge_dot_vector_matrix": (lambda: keras.layers.Dot(axes=(1, 2)), [(3,), (4, 3)]),
    "merge_dot_normalize": (lambda: keras.layers.Dot(axes=-1, normalize=True), [(2, 3), (4, 3)]),
}
