"""Keras' `layer.build(input_shape)`: a batch shape (`Dense(3).build((None, 4))`) and no generator, beside onnxtrain's
own `build(shape, rng)`, which a model calls with an example's shape and its seeded generator.

`Layer.__init_subclass__` wraps each layer class's `build` with `taking_keras_build`: given an `rng`, the call is
onnxtrain's and passes through; given none, it is Keras': the batch axis is dropped, the layer takes the shapes as a
first call does (`compute_output_shape`), and its weights are drawn from a fresh seed, so `layer.weights` exist. A
layer built so keeps its weights when a model is made of it, as one built by an eager call does (`_eager.py`); one
without weights is left unbuilt, so a model can still take it at any shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.layers._layer_checks import CheckedLayer, check_same_shapes, describe, take_shapes
from onnxtrain.layers._shapes import Shape

Build = Callable[[Any, Any, np.random.Generator], None]


def taking_keras_build(build: Build) -> Callable[..., None]:
    """`build`, a layer class's `build(input_shape, rng)`, taking Keras' `build(input_shape)` too (see the module
    docstring). The signature is `build`'s, with `rng` optional."""
    if getattr(build, "_takes_keras_shapes", False):
        return build

    @functools.wraps(build)
    def build_taking_keras_shapes(self: Any, input_shape: Any, rng: np.random.Generator | None = None) -> None:
        if rng is not None:
            build(self, input_shape, rng)
            return
        shapes = _example_shapes(self, input_shape)
        if self.built:
            check_same_shapes(self, shapes)
            if self.params:
                return  # built already, as Keras' `_maybe_build` leaves a built layer
        else:
            take_shapes(self, shapes)
        build(self, shapes if self.multi_input else shapes[0], np.random.default_rng())
        if not self.params:
            self.input_shape = self.output_shape = self.input_shapes = None

    build_taking_keras_shapes._takes_keras_shapes = True  # type: ignore[attr-defined]
    return build_taking_keras_shapes


def _example_shapes(layer: CheckedLayer, input_shape: Any) -> list[Shape]:
    """The per-example shapes of Keras' batch shape `input_shape` (a list of them for a layer of several inputs).

    Raises:
        InvalidArgumentError: not a batch shape (the batch axis, None or a size, then positive dimensions), or one
            shape for a layer that takes several.
    """
    several = isinstance(input_shape, list | tuple) and bool(input_shape)
    several = several and all(isinstance(shape, list | tuple) for shape in input_shape)
    if layer.multi_input and not several:
        raise InvalidArgumentError(
            f"{describe(layer)}.build(input_shape) takes a list of batch shapes, one per input, e.g. "
            f"[(None, 4), (None, 4)]. Received: input_shape={input_shape!r}"
        )
    return [_example_shape(layer, shape) for shape in (input_shape if several else [input_shape])]


def _example_shape(layer: CheckedLayer, batch_shape: Sequence[Any]) -> Shape:
    def valid(dim: object, batch: bool) -> bool:
        if batch and dim is None:
            return True
        return not isinstance(dim, bool) and isinstance(dim, int | np.integer) and int(dim) > 0

    if not isinstance(batch_shape, list | tuple) or len(batch_shape) < 2 or not valid(batch_shape[0], True):
        raise InvalidArgumentError(
            f"{describe(layer)}.build(input_shape) expects Keras' batch shape, the batch axis first (None or a size): "
            f"e.g. build((None, 4)) for examples of shape (4,). Received: input_shape={batch_shape!r}"
        )
    for i, dim in enumerate(batch_shape[1:], start=1):
        if not valid(dim, False):
            raise InvalidArgumentError(
                f"{describe(layer)}.build(input_shape) expects a positive int for each dimension of an example "
                f"(onnxtrain's layers have a fixed shape per example). Received: input_shape[{i}]={dim!r} in "
                f"input_shape={batch_shape!r}"
            )
    return tuple(int(dim) for dim in batch_shape[1:])
