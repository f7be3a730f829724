"""GaussianNoise and GaussianDropout: Gaussian noise in the training step, drawn as Dropout draws its masks, so a
resumed run and any other runtime draw the same values; the identity in evaluation, prediction and the export.

Each element's standard normal z comes from two of `_dropout.element_hash`'s hashes h1 (stream 0) and h2 (stream 1),
uniform over [0, P), P = 2^31 - 1, by Box-Muller:

    u1 = (h1 // 128 + 1) / 2^24   in (0, 1]        u2 = (h2 // 128) / 2^24   in [0, 1)
    z  = sqrt(-2 ln u1) * cos(2 pi u2)

The top 24 bits of each hash are what a float32 holds exactly, so u1 and u2 are exact (a float32 of h1 + 1 could
round up past P and make u1 > 1), and the draws are a pure function of (seed, layer, step, element) computed by
standard ONNX ops: the int64 hashing bit for bit on every runtime, then Cast, Log, Sqrt and Cos in float32. The
smallest u1, 2^-24, bounds |z| by sqrt(48 ln 2) = 5.77: the tails beyond (a fraction 8e-9 of a true normal's draws)
are never drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from onnxtrain.graph import GraphBuilder
from onnxtrain.layers._dropout import _rate, _seed, element_hash, layer_key
from onnxtrain.layers._layer import Layer, Shape
from onnxtrain.layers._layout import same_layout
from onnxtrain.layers._normalization import _number


def standard_normal(builder: GraphBuilder, x: str, shape: Shape, layer: int) -> str:
    """Float32 standard normal draws for value `x` (per-example shape `shape`, channels last) of this training
    step, one per element, in `x`'s layout (see the module docstring)."""
    with builder.scope("noise"):
        h1 = element_hash(builder, x, shape, True, layer, stream=0)
        h2 = element_hash(builder, x, shape, True, layer, stream=1)
        minus_two = builder.constant(np.float32(-2.0), "minus_two")
        top_bits = builder.constant(np.int64(128), "top_bits", np.int64)
        one = builder.constant(np.int64(1), "one", np.int64)
        scale = builder.constant(np.float32(2.0**-24), "two_to_minus_24")
        top1 = builder.node("Add", [builder.node("Div", [h1, top_bits]), one])
        u1 = builder.node("Mul", [builder.node("Cast", [top1], to=onnx.TensorProto.FLOAT), scale], hint="u1")
        top2 = builder.node("Cast", [builder.node("Div", [h2, top_bits])], to=onnx.TensorProto.FLOAT)
        radius = builder.node("Sqrt", [builder.node("Mul", [builder.node("Log", [u1]), minus_two])], hint="radius")
        angle = builder.node("Mul", [top2, builder.constant(np.float32(2.0 * math.pi * 2.0**-24), "radians")])
        return builder.node("Mul", [radius, builder.node("Cos", [angle])], hint="z")


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of standard deviation `stddev` to every value in training; the identity in
    evaluation, prediction and the export.

    Args:
        stddev: the noise's standard deviation, in [0, 1] (Keras' range); 0 adds none.
        seed: with the layer's name, picks the noise; every step draws new values (see the module docstring).
    """

    accepts_channels_first = True

    def __init__(self, stddev: float, seed: int | None = None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.stddev = _number("GaussianNoise", "stddev", stddev, 0.0, 1.0)
        self.seed = _seed("GaussianNoise", seed)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        if not builder.training or self.stddev == 0.0:
            return x
        assert self.input_shape is not None and self.name is not None, "layers must be built"
        z = standard_normal(builder, x, self.input_shape, layer_key(self.name, self.seed))
        noise = builder.node("Mul", [z, builder.constant(np.float32(self.stddev), "stddev")], hint="noise")
        return same_layout(builder, x, builder.node("Add", [x, noise], hint="noisy"))

    def get_config(self) -> dict[str, Any]:
        return {"stddev": self.stddev, "seed": self.seed, **super().get_config()}


class GaussianDropout(Layer):
    """Multiplies every value by Gaussian noise of mean 1 and standard deviation sqrt(rate / (1 - rate)) in
    training; the identity in evaluation, prediction and the export.

    Args:
        rate: as Dropout's, in [0, 1) (Keras accepts 1, then divides by zero in the first training step); 0 adds
            no noise.
        seed: with the layer's name, picks the noise; every step draws new values (see the module docstring).
    """

    accepts_channels_first = True

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.rate = _rate("GaussianDropout", rate)
        self.seed = _seed("GaussianDropout", seed)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def emit(self, builder: GraphBuilder, x: str) -> str:
        if not builder.training or self.rate == 0.0:
            return x
        assert self.input_shape is not None and self.name is not None, "layers must be built"
        z = standard_normal(builder, x, self.input_shape, layer_key(self.name, self.seed))
        stddev = builder.constant(np.float32(math.sqrt(self.rate / (1.0 - self.rate))), "stddev")
        one = builder.constant(np.float32(1.0), "one")
        factor = builder.node("Add", [builder.node("Mul", [z, stddev]), one], hint="factor")
        return same_layout(builder, x, builder.node("Mul", [x, factor], hint="noisy"))

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed, **super().get_config()}
