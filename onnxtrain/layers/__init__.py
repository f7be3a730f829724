"""Layers: `Input`, `Flatten`, `Dense`, the convolutions (`Conv2D`, ...) and the `Layer` base class."""

from onnxtrain.layers._conv import Conv1D, Conv2D, Convolution1D, Convolution2D, ConvPadding
from onnxtrain.layers._conv_transpose import Conv2DTranspose, Convolution2DTranspose
from onnxtrain.layers._core import Dense, Flatten, Input
from onnxtrain.layers._depthwise import DepthwiseConv2D
from onnxtrain.layers._layer import Layer, Shape, SymbolicTensor, format_shape
from onnxtrain.layers._merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from onnxtrain.layers._separable import SeparableConv2D, SeparableConvolution2D

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "ConvPadding",
    "Convolution1D",
    "Convolution2D",
    "Convolution2DTranspose",
    "Dense",
    "DepthwiseConv2D",
    "Dot",
    "Flatten",
    "Input",
    "Layer",
    "Maximum",
    "Minimum",
    "Multiply",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "Shape",
    "Subtract",
    "SymbolicTensor",
    "format_shape",
]
