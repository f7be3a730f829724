"""Layers: `Input`, `Flatten`, `Dense`, and the `Layer` base class for custom layers."""

from onnxtrain.layers._core import Dense, Flatten, Input
from onnxtrain.layers._layer import Layer, Shape, format_shape

__all__ = ["Dense", "Flatten", "Input", "Layer", "Shape", "format_shape"]
