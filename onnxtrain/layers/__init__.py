"""Layers: `Input`, `Flatten`, `Dense`, the convolutions (`Conv2D`, ...), the recurrent layers (`LSTM`, ...) and the
`Layer` base class."""

from onnxtrain.foreign._layer import OnnxLayer  # a foreign ONNX graph as a layer (package onnxtrain.foreign)
from onnxtrain.layers._activation import (
    ELU,
    Activation,
    ActivationLayer,
    LeakyReLU,
    PReLU,
    ReLU,
    Softmax,
    ThresholdedReLU,
)
from onnxtrain.layers._attention import MultiHeadAttention
from onnxtrain.layers._bidirectional import Bidirectional
from onnxtrain.layers._conv import Conv1D, Conv2D, Convolution1D, Convolution2D, ConvPadding
from onnxtrain.layers._conv_transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
)
from onnxtrain.layers._core import Dense, Flatten, Input
from onnxtrain.layers._depthwise import DepthwiseConv2D
from onnxtrain.layers._dropout import Dropout, SpatialDropout2D
from onnxtrain.layers._embedding import Embedding
from onnxtrain.layers._group_normalization import GroupNormalization
from onnxtrain.layers._layer import Layer, Shape, SymbolicTensor, format_shape
from onnxtrain.layers._merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from onnxtrain.layers._noise import GaussianDropout, GaussianNoise
from onnxtrain.layers._normalization import BatchNormalization, LayerNormalization, UnitNormalization
from onnxtrain.layers._pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AvgPool1D,
    AvgPool2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPool1D,
    MaxPool2D,
    MaxPooling1D,
    MaxPooling2D,
)
from onnxtrain.layers._preprocessing import Normalization, Rescaling
from onnxtrain.layers._recurrent import GRU, LSTM, SimpleRNN
from onnxtrain.layers._reshaping import Cropping2D, Permute, RepeatVector, Reshape, UpSampling2D, ZeroPadding2D
from onnxtrain.layers._reshaping_1d import Cropping1D, UpSampling1D, ZeroPadding1D
from onnxtrain.layers._separable import SeparableConv2D, SeparableConvolution2D
from onnxtrain.layers._time_distributed import TimeDistributed

__all__ = [
    "ELU",
    "GRU",
    "LSTM",
    "Activation",
    "ActivationLayer",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "ConvPadding",
    "Convolution1D",
    "Convolution1DTranspose",
    "Convolution2D",
    "Convolution2DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Dense",
    "DepthwiseConv2D",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GroupNormalization",
    "Input",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Normalization",
    "OnnxLayer",
    "PReLU",
    "Permute",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "Shape",
    "SimpleRNN",
    "Softmax",
    "SpatialDropout2D",
    "Subtract",
    "SymbolicTensor",
    "ThresholdedReLU",
    "TimeDistributed",
    "UnitNormalization",
    "UpSampling1D",
    "UpSampling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "format_shape",
]
