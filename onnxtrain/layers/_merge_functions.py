"""Keras' functional merge helpers: `add([a, b])` is `Add()([a, b])`, and so for `subtract`, `multiply`, `average`,
`maximum`, `minimum`, `concatenate([...], axis=-1)` and `dot([...], axes=...)` (keras.layers' lowercase names).

Each makes its layer (keyword arguments go to its constructor: `name=`, `trainable=`, Dot's `normalize=`) and calls
it on `inputs`, a list of symbolic tensors; the result is the layer's output tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from onnxtrain.layers._layer import SymbolicTensor
from onnxtrain.layers._merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract

Tensors = Sequence[SymbolicTensor]


def add(inputs: Tensors, **kwargs: Any) -> SymbolicTensor:
    """The sum of `inputs`: `Add(**kwargs)(inputs)`."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Tensors, **kwargs: Any) -> SymbolicTensor:
    """`inputs[0] - inputs[1]`: `Subtract(**kwargs)(inputs)`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Tensors, **kwargs: Any) -> SymbolicTensor:
    """The elementwise product of `inputs`: `Multiply(**kwargs)(inputs)`."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Tensors, **kwargs: Any) -> SymbolicTensor:
    """The elementwise mean of `inputs`: `Average(**kwargs)(inputs)`."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Tensors, **kwargs: Any) -> SymbolicTensor:
    """The elementwise maximum of `inputs`: `Maximum(**kwargs)(inputs)`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Tensors, **kwargs: Any) -> SymbolicTensor:
    """The elementwise minimum of `inputs`: `Minimum(**kwargs)(inputs)`."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Tensors, axis: int = -1, **kwargs: Any) -> SymbolicTensor:
    """`inputs` joined along `axis`: `Concatenate(axis=axis, **kwargs)(inputs)`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: Tensors, axes: int | tuple[int, int] | list[int] = -1, **kwargs: Any) -> SymbolicTensor:
    """The dot product of the two `inputs` along `axes` (Keras' default -1: the last axes), per example:
    `Dot(axes=axes, **kwargs)(inputs)`."""
    return Dot(axes=axes, **kwargs)(inputs)
