"""The initializers that draw from a distribution of their own arguments: RandomNormal, TruncatedNormal,
RandomUniform and Orthogonal (the fan-based VarianceScaling and its named schemes are in `initializers`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from onnxtrain._initializer_base import Initializer, Shape, _check_float32, _check_seed, kotlindl_names
from onnxtrain.errors import InvalidArgumentError


@kotlindl_names(stdev="stddev")
@dataclass(frozen=True)
class RandomNormal(Initializer):
    """N(mean, stddev^2); KotlinDL's name of `stddev`, `stdev`, works too."""

    mean: float = 0.0
    stddev: float = 0.05
    seed: int | None = None
    name: str = field(default="random_normal", init=False)
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _check_float32("RandomNormal", "mean", self.mean))
        object.__setattr__(self, "stddev", _check_float32("RandomNormal", "stddev", self.stddev, positive=True))
        object.__setattr__(self, "seed", _check_seed("RandomNormal", self.seed))

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.stddev, shape)


@dataclass(frozen=True)
class TruncatedNormal(Initializer):
    """Keras' truncated normal: N(mean, stddev^2), values more than two standard deviations from the mean redrawn."""

    mean: float = 0.0
    stddev: float = 0.05
    seed: int | None = None
    name: str = field(default="truncated_normal", init=False)
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _check_float32("TruncatedNormal", "mean", self.mean))
        object.__setattr__(self, "stddev", _check_float32("TruncatedNormal", "stddev", self.stddev, positive=True))
        object.__setattr__(self, "seed", _check_seed("TruncatedNormal", self.seed))

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean + truncated_normal(rng, shape, self.stddev)


@kotlindl_names(min_val="minval", max_val="maxval")
@dataclass(frozen=True)
class RandomUniform(Initializer):
    """Uniform in [minval, maxval), Keras' order and names; KotlinDL's names `min_val` and `max_val` work too (KotlinDL
    takes `maxVal` first: pass them by name)."""

    minval: float = -0.05
    maxval: float = 0.05
    seed: int | None = None
    name: str = field(default="random_uniform", init=False)
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "minval", _check_float32("RandomUniform", "minval", self.minval))
        object.__setattr__(self, "maxval", _check_float32("RandomUniform", "maxval", self.maxval))
        object.__setattr__(self, "seed", _check_seed("RandomUniform", self.seed))
        if not self.minval < self.maxval:
            raise InvalidArgumentError(
                f"RandomUniform expects minval < maxval. Received: minval={self.minval!r}, maxval={self.maxval!r} "
                "(positional arguments are Keras' order, minval first; KotlinDL's is maxVal first: pass them by name)"
            )

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.minval, self.maxval, shape)


@dataclass(frozen=True)
class Orthogonal(Initializer):
    """Keras' orthogonal matrix, times `gain`: the shape is read as a matrix (every axis but the last, by the last)
    whose rows (or columns, whichever are fewer) are orthonormal: the Q of a QR decomposition of standard normal
    draws, its signs fixed by R's diagonal so that Q is uniformly distributed. The recurrent layers' default.

    The shape is Keras' layout: convolution layers, which keep their kernels in ONNX's, draw through
    `onnx_conv_kernel`, so a Conv2D kernel is orthogonal as Keras' (kh * kw * in, filters) matrix."""

    gain: float = 1.0
    seed: int | None = None
    name: str = field(default="orthogonal", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", _check_float32("Orthogonal", "gain", self.gain))
        object.__setattr__(self, "seed", _check_seed("Orthogonal", self.seed))

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        if len(shape) < 2:
            raise InvalidArgumentError(
                f"Orthogonal makes matrices: it expects a shape of two or more axes. Received: shape={tuple(shape)}"
            )
        rows, columns = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.normal(size=(max(rows, columns), min(rows, columns))))
        q = q * np.sign(np.diag(r))
        return self.gain * (q.T if rows < columns else q)


def truncated_normal(rng: np.random.Generator, shape: Shape, stddev: float) -> np.ndarray:
    """Normal samples with |value| <= 2 * stddev, redrawing the rest (vectorized rejection sampling)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev
