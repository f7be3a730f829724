"""Keras 3's arguments of an input that onnxtrain's `Input` takes as Keras' `Input` and `InputLayer` do:
`batch_shape`, and `sparse`, `ragged` and `optional` at their dense, required values; and the class name a Keras
model's config gives its inputs (`InputLayer`), which rebuilds as an `Input`.

Every Keras model config starts with its InputLayer's, `{"class_name": "InputLayer", "config": {"batch_shape":
[None, 6], "dtype": "float32", "sparse": False, "ragged": False, "name": "x", "optional": False}}`: with these, a
whole Keras Sequential or Functional config loads where its layers do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError, UnsupportedError

KERAS_CLASS_NAMES = {"InputLayer": "Input", "Sequential": "Functional"}  # Keras' class -> ours
"""{Keras' class name in a model config: the onnxtrain layer class that rebuilds it}."""


def per_example_shape(dims: tuple[Any, ...], shape: Any, batch_shape: object) -> tuple[Any, tuple[Any, ...]]:
    """(shape, dims) of an Input given Keras' `batch_shape=(None, *shape)` instead: the shape without its batch
    axis; as given where `batch_shape` is None.

    Raises:
        InvalidArgumentError: `batch_shape` beside dims or shape, or not a tuple of at least the batch axis.
        UnsupportedError: a fixed batch size (`batch_shape=(32, 6)`).
    """
    if batch_shape is None:
        return shape, dims
    if shape is not None or dims:
        given = f"shape={shape!r}" if shape is not None else f"dims={dims!r}"
        raise InvalidArgumentError(
            "Input takes dims, shape=... or Keras' batch_shape=..., one of them (batch_shape is shape with the batch "
            f"axis first). Received: batch_shape={batch_shape!r} and {given}"
        )
    if not isinstance(batch_shape, tuple | list) or len(batch_shape) < 2:
        raise InvalidArgumentError(
            "Input(batch_shape=...) expects the batch axis and at least one dimension, e.g. batch_shape=(None, 6) "
            f"(shape=(6,) says the same). Received: batch_shape={batch_shape!r}"
        )
    if batch_shape[0] is not None:
        raise UnsupportedError(
            "Input(batch_shape=...) takes the batch axis as None: onnxtrain's models take any batch size (the batch "
            "axis is dynamic). Use batch_shape=(None, *shape), or shape=shape, and give the batch size to fit "
            f"(fit(x, y, batch_size=...)). Received: batch_shape={batch_shape!r}"
        )
    return tuple(batch_shape[1:]), ()


def check_dense_input(sparse: object, ragged: object, optional: object) -> None:
    """Refuse Keras' sparse, ragged or optional input, naming each: onnxtrain feeds every input as a dense array.

    Raises:
        InvalidTypeError: a value that is no bool (None is Keras' default for sparse and ragged).
        UnsupportedError: True.
    """
    for name, value, why in (
        ("sparse", sparse, "a sparse tensor reaches the model as a dense array (densify it: x.toarray())"),
        ("ragged", ragged, "sequences of different lengths are padded to one (onnxtrain.utils.pad_sequences)"),
        ("optional", optional, "every input is fed on each call (feed zeros and mask them where one is missing)"),
    ):
        if value is not None and not isinstance(value, bool | np.bool_):
            raise InvalidTypeError(f"Input({name}=...) expects False (or None). Received: {name}={value!r}")
        if not value:
            continue
        raise UnsupportedError(
            f"Input({name}=True) is not supported: onnxtrain's inputs are dense arrays, always given; {why}. Leave "
            f"{name} out, or give {name}=False. Received: {name}=True"
        )
