"""Layers: `Input`, `Flatten`, `Dense`, the convolutions (`Conv2D`, ...), the recurrent layers (`LSTM`, ...), the
`Layer` base class, and Keras' functional merge helpers (`add([a, b])`, `concatenate([...])`, ...)."""

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
from onnxtrain.layers._augmentation import RandomBrightness, RandomContrast, RandomCrop, RandomFlip
from onnxtrain.layers._augmentation_geometric import RandomRotation, RandomTranslation, RandomZoom
from onnxtrain.layers._bidirectional import Bidirectional
from onnxtrain.layers._category_encoding import CategoryEncoding
from onnxtrain.layers._conv import Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D, Convolution3D, ConvPadding
from onnxtrain.layers._conv_transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
    Convolution3DTranspose,
)
from onnxtrain.layers._core import Dense, Flatten, Input
from onnxtrain.layers._depthwise import DepthwiseConv2D
from onnxtrain.layers._discretization import Discretization
from onnxtrain.layers._dot_attention import AdditiveAttention, Attention
from onnxtrain.layers._dropout import Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from onnxtrain.layers._embedding import Embedding
from onnxtrain.layers._group_normalization import GroupNormalization
from onnxtrain.layers._hashing import Hashing
from onnxtrain.layers._lambda import Lambda
from onnxtrain.layers._layer import Layer, Shape, SymbolicTensor, format_shape
from onnxtrain.layers._lookup import IntegerLookup
from onnxtrain.layers._masking import Masking
from onnxtrain.layers._merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from onnxtrain.layers._merge_functions import add, average, concatenate, dot, maximum, minimum, multiply, subtract
from onnxtrain.layers._noise import GaussianDropout, GaussianNoise
from onnxtrain.layers._normalization import BatchNorm, BatchNormalization, LayerNormalization, UnitNormalization
from onnxtrain.layers._pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from onnxtrain.layers._preprocessing import Normalization, Rescaling
from onnxtrain.layers._recurrent import GRU, LSTM, SimpleRNN
from onnxtrain.layers._reshaping import Cropping2D, Permute, RepeatVector, Reshape, UpSampling2D, ZeroPadding2D
from onnxtrain.layers._reshaping_1d import Cropping1D, UpSampling1D, ZeroPadding1D
from onnxtrain.layers._reshaping_3d import Cropping3D, UpSampling3D, ZeroPadding3D
from onnxtrain.layers._resizing import CenterCrop, Resizing
from onnxtrain.layers._separable import SeparableConv2D, SeparableConvolution2D
from onnxtrain.layers._time_distributed import TimeDistributed

__all__ = [
    "ELU",
    "GRU",
    "LSTM",
    "Activation",
    "ActivationLayer",
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNorm",
    "BatchNormalization",
    "Bidirectional",
    "CategoryEncoding",
    "CenterCrop",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "ConvPadding",
    "Convolution1D",
    "Convolution1DTranspose",
    "Convolution2D",
    "Convolution2DTranspose",
    "Convolution3D",
    "Convolution3DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Dense",
    "DepthwiseConv2D",
    "Discretization",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GroupNormalization",
    "Hashing",
    "Input",
    "IntegerLookup",
    "Lambda",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Normalization",
    "OnnxLayer",
    "PReLU",
    "Permute",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "Resizing",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "Shape",
    "SimpleRNN",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "Subtract",
    "SymbolicTensor",
    "ThresholdedReLU",
    "TimeDistributed",
    "UnitNormalization",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "add",
    "average",
    "concatenate",
    "dot",
    "format_shape",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]
