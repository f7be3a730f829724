"""Weight initializers (KotlinDL/Keras formulas) and their registry.

An initializer is called with the parameter shape, the layer's fan-in and fan-out and a numpy Generator; the
model hands each layer a Generator derived from its seed, so the same seed gives bit-identical weights. An
initializer built with its own `seed` ignores that Generator and always produces the same values (as in Keras).

While `load_model` rebuilds a model's layers (`weights_declared_by`), the weights come from model.onnx: initializers
draw nothing, and `Layer.add_weight` refuses a weight the file does not declare before allocating it.

This module holds the fan-based initializers (VarianceScaling and its named schemes: HeNormal, GlorotUniform, ...),
the fans and layout of a convolution kernel, and the registry (`get`); the base class and the loading guard live in
`_initializer_base`, the fixed-value initializers in `_constant_initializers`, the other random ones in
`_random_initializers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from onnxtrain._constant_initializers import Constant, Ones, Zeros
from onnxtrain._initializer_base import (
    _DECLARED,
    DeclaredWeights,
    Initializer,
    InitializerClass,
    Shape,
    _check_float32,
    _check_seed,
    check_declared,
    gib,
    kotlindl_names,
    weights_declared_by,
)
from onnxtrain._keras_serialized import is_keras_serialized, keras_config
from onnxtrain._random_initializers import Orthogonal, RandomNormal, RandomUniform, TruncatedNormal, truncated_normal
from onnxtrain._registry import Registry, snake_case
from onnxtrain.errors import InvalidArgumentError, UnsupportedError

__all__ = [
    "Constant",
    "DeclaredWeights",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "InitializerClass",
    "InitializerLike",
    "LeCunNormal",
    "LeCunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "Shape",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "check_declared",
    "get",
    "gib",
    "keras_fans",
    "kotlindl_names",
    "onnx_conv_kernel",
    "truncated_normal",
    "weights_declared_by",
]


_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


@dataclass(frozen=True)
class VarianceScaling(Initializer):
    """Keras' variance scaling: variance = scale / n, n chosen by `mode`; `distribution` "truncated_normal",
    "untruncated_normal" or "uniform" (any case; "normal" is "truncated_normal", as in Keras).

    The truncated normal is cut at two standard deviations and rescaled (stddev / 0.8796...) so that the
    resulting variance is the requested one, as in Keras and KotlinDL.
    """

    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    seed: int | None = None
    name: str = field(default="variance_scaling", init=False)
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "scale", _check_float32(owner, "scale", self.scale, positive=True))
        object.__setattr__(self, "seed", _check_seed(owner, self.seed))
        if self.mode not in ("fan_in", "fan_out", "fan_avg"):
            raise InvalidArgumentError(
                f"{owner}(mode=...) expects 'fan_in', 'fan_out' or 'fan_avg'. Received: mode={self.mode!r}"
            )
        distribution = self.distribution.lower() if isinstance(self.distribution, str) else self.distribution
        distribution = "truncated_normal" if distribution == "normal" else distribution  # Keras' alias
        if distribution not in _DISTRIBUTIONS:
            raise InvalidArgumentError(
                f"{owner}(distribution=...) expects one of {list(_DISTRIBUTIONS)} (or 'normal', the truncated one). "
                f"Received: distribution={self.distribution!r}"
            )
        object.__setattr__(self, "distribution", distribution)

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        return truncated_normal(rng, shape, math.sqrt(variance) / 0.87962566103423978)

    def get_config(self) -> dict[str, Any]:
        if type(self) is VarianceScaling:
            return super().get_config()
        return {"name": self.name, "seed": self.seed}  # the named schemes (HeNormal, ...) fix the rest


InitializerLike = str | Initializer | type[Initializer] | dict[str, Any]
"""What a layer's `*_initializer` argument takes: a name, a class, a config dict or an instance (`get`)."""


def keras_fans(shape: Shape) -> tuple[int, int]:
    """Keras' `compute_fans` of a weight of `shape` in Keras' layout: (fan_in, fan_out), the axes before the last two
    of a kernel of rank > 2 counting as its receptive field (a Conv2D kernel (kh, kw, in, filters): kh*kw*in and
    kh*kw*filters)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def onnx_conv_kernel(
    initializer: Initializer, keras_shape: Shape, rng: np.random.Generator, depthwise: bool = False
) -> np.ndarray:
    """A convolution kernel in ONNX's layout, drawn as Keras draws the same kernel in its own layout.

    Keras' kernel is (*window, a, b): (in, filters) for Conv, (filters, in) for ConvTranspose, (in,
    depth_multiplier) with `depthwise`. ONNX's is (b, a, *window), or (in * depth_multiplier, 1, *window) with
    `depthwise` (output channel c * depth_multiplier + m reads input channel c). The fans are Keras' for
    `keras_shape`. An `elementwise` initializer draws in ONNX's layout directly (the same distribution, and the
    weights a seed gave before); any other (Orthogonal: orthonormal columns of Keras' (prod(window) * a, b)
    matrix) draws `keras_shape` and is transposed.
    """
    window, a, b = tuple(keras_shape[:-2]), keras_shape[-2], keras_shape[-1]
    onnx_shape = (a * b, 1, *window) if depthwise else (b, a, *window)
    fan_in, fan_out = keras_fans(keras_shape)
    if (
        initializer.draws_elementwise() or _DECLARED.get() is not None
    ):  # (loading: a zero view, see Initializer.__call__)
        return initializer(onnx_shape, fan_in, fan_out, rng)
    kernel = initializer(tuple(keras_shape), fan_in, fan_out, rng)
    spatial = tuple(range(len(window)))
    if depthwise:  # (*window, in, multiplier) -> (in, multiplier, *window) -> (in * multiplier, 1, *window)
        return np.ascontiguousarray(kernel.transpose(len(window), len(window) + 1, *spatial)).reshape(onnx_shape)
    return np.ascontiguousarray(kernel.transpose(len(window) + 1, len(window), *spatial))


def _scaling(name: str, scale: float, mode: str, distribution: str, doc: str) -> type[VarianceScaling]:
    # Each named scheme is a VarianceScaling with fixed settings; only `seed` is left to the user.
    def __init__(self: VarianceScaling, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)
        object.__setattr__(self, "name", name)

    return type(name, (VarianceScaling,), {"__init__": __init__, "__doc__": doc})


GlorotNormal = _scaling("glorot_normal", 1.0, "fan_avg", "truncated_normal", "Glorot (Xavier) normal.")
GlorotUniform = _scaling("glorot_uniform", 1.0, "fan_avg", "uniform", "Glorot (Xavier) uniform.")
HeNormal = _scaling("he_normal", 2.0, "fan_in", "truncated_normal", "He normal: stddev sqrt(2 / fan_in), truncated.")
HeUniform = _scaling("he_uniform", 2.0, "fan_in", "uniform", "He uniform: limit sqrt(6 / fan_in).")
LeCunNormal = _scaling("lecun_normal", 1.0, "fan_in", "truncated_normal", "LeCun normal.")
LeCunUniform = _scaling("lecun_uniform", 1.0, "fan_in", "uniform", "LeCun uniform.")
for _cls, _public in [
    (GlorotNormal, "GlorotNormal"),
    (GlorotUniform, "GlorotUniform"),
    (HeNormal, "HeNormal"),
    (HeUniform, "HeUniform"),
    (LeCunNormal, "LeCunNormal"),
    (LeCunUniform, "LeCunUniform"),
]:
    _cls.__name__ = _cls.__qualname__ = _public


_CLASSES: dict[str, type[Initializer]] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "orthogonal": Orthogonal,
    "glorot_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LeCunNormal,
    "lecun_uniform": LeCunUniform,
}
_ALIASES = {
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "zero": "zeros",
    "one": "ones",
    "normal": "random_normal",  # Keras' aliases
    "uniform": "random_uniform",
    "orthogonal_initializer": "orthogonal",
}
_NOT_HERE = "is one of Keras' initializers that onnxtrain does not have:"
_HINTS = {
    **dict.fromkeys(
        ["identity", "identity_initializer"],
        f"Identity {_NOT_HERE} set the weight after the model is made (layer.set_weights([np.eye(n)])).",
    ),
    **dict.fromkeys(
        ["s_t_f_t", "s_t_f_t_initializer", "stft"],
        f"STFT {_NOT_HERE} compute the window with numpy and give it as Constant(array).",
    ),
}
_REGISTRY = Registry(
    "initializer",
    Initializer,
    _CLASSES,
    _ALIASES,
    normalize=lambda name: snake_case(name).replace("le_cun", "lecun"),
    hints=_HINTS,
)


def get(identifier: InitializerLike) -> Initializer:
    """Map a name ("he_normal", "HeNormal", Keras' "GlorotUniform"), a class (`HeNormal`), a config dict
    ({"name": "random_normal", "stddev": 0.1}), Keras' serialized initializer (what a Keras layer's `get_config()`
    writes: {"module": "keras.initializers", "class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.1,
    "seed": None}, "registered_name": None}) or an instance to an Initializer.

    Keras' config is read with its meaning: the same distribution and arguments (an int `seed` makes the draws
    repeatable, with numpy's generator: not Keras' values). Its `input_axes` and `output_axes` (the fans of an
    EinsumDense kernel, used by Keras only when both are given) are refused together: onnxtrain's layers give
    their initializers the fans.

    Raises:
        UnknownIdentifierError: the identifier names no initializer onnxtrain has.
        InvalidArgumentError: a config with keys the initializer does not take.
        UnsupportedError: Keras' initializer of one's own class, a Keras SeedGenerator as seed, or input_axes
            with output_axes.
    """
    if is_keras_serialized(identifier):
        assert isinstance(identifier, dict)
        return _REGISTRY.get(_from_keras(keras_config("initializer", identifier, "onnxtrain.initializers")))
    return _REGISTRY.get(identifier)


def _from_keras(config: dict[str, Any]) -> dict[str, Any]:
    """Keras' initializer config, `{"name": class name, **its config}`, as onnxtrain's (the same arguments, but
    Keras' fan axes, which onnxtrain refuses where Keras would use them)."""
    name = config["name"]
    seed = config.get("seed")
    if seed is not None and not isinstance(seed, int | np.integer):
        raise UnsupportedError(
            f"Keras' {name} initializer has seed={seed!r}: a Keras SeedGenerator (or another object), which "
            "onnxtrain does not read. Give an int seed, or None (the model's seed then decides the draws)."
        )
    axes = {key: config.pop(key) for key in ("input_axes", "output_axes") if key in config}
    if all(axes.get(key) is not None for key in ("input_axes", "output_axes")):
        raise UnsupportedError(
            f"Keras' {name} initializer has input_axes={axes['input_axes']!r} and output_axes="
            f"{axes['output_axes']!r} (the fans of an EinsumDense kernel): onnxtrain's layers give their "
            "initializers the fans of their weights. Leave both out (None)."
        )
    return config
