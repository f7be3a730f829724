"""Layers: `Input`, `Flatten`, `Dense`, the convolutions (`Conv2D`, ...) and the `Layer` base class."""

from onnxtrain.layers._conv import Conv1D, Conv2D, Convolution1D, Convolution2D, ConvPadding
from onnxtrain.layers._conv_transpose import Conv2DTranspose, Convolution2DTranspose
from onnxtrain.layers._core import Dense, Flatten, Input
from onnxtrain.layers._depthwise import DepthwiseConv2D
from onnxtrain.layers._layer import Layer, Shape, format_shape
from onnxtrain.layers._separable import SeparableConv2D, SeparableConvolution2D

__all__ = [
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "ConvPadding",
    "Convolution1D",
    "Convolution2D",
    "Convolution2DTranspose",
    "Dense",
    "DepthwiseConv2D",
    "Flatten",
    "Input",
    "Layer",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "Shape",
    "format_shape",
]
