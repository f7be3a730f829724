"""Weight initializers (KotlinDL/Keras formulas) and their registry.

An initializer is called with the parameter shape, the layer's fan-in and fan-out and a numpy Generator; the
model hands each layer a Generator derived from its seed, so the same seed gives bit-identical weights. An
initializer built with its own `seed` ignores that Generator and always produces the same values (as in Keras).

While `load_model` rebuilds a model's layers (`weights_declared_by`), the weights come from model.onnx: initializers
draw nothing, and `Layer.add_weight` refuses a weight the file does not declare before allocating it.
"""

from __future__ import annotations

import base64
import functools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain._registry import Registry, snake_case
from onnxtrain.errors import InvalidArgumentError, ModelFileError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Initializer:
    """Base class: subclasses implement `sample`; the float32 weights `__call__` returns are always finite.

    Weights that do not fit in memory are an InvalidArgumentError naming their shape and size, not a bare MemoryError.
    """

    name: str = field(default="", init=False)
    elementwise: ClassVar[bool] = False
    """Whether each value is drawn alike, whatever its position (zeros, random normal, variance scaling), so that a
    kernel can be drawn in ONNX's layout directly. False (Orthogonal, and by default an initializer of your own):
    `onnx_conv_kernel` draws a convolution kernel in Keras' layout and moves it into ONNX's."""

    def __call__(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        if _DECLARED.get() is not None:  # loading: model.onnx holds the values; a read-only zero view allocates none
            return np.broadcast_to(np.float32(0), shape)
        seed = getattr(self, "seed", None)
        generator = np.random.default_rng(seed) if seed is not None else rng
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
                values = np.asarray(self.sample(shape, fan_in, fan_out, generator), dtype=np.float32).reshape(shape)
            finite = bool(np.isfinite(values).all())
        except MemoryError as error:
            raise InvalidArgumentError(_out_of_memory(self, shape)) from error
        if not finite:
            raise InvalidArgumentError(
                f"{type(self).__name__} produced non-finite float32 weights ({np.count_nonzero(~np.isfinite(values))} "
                f"of {values.size}) for shape {shape}: its arguments overflow float32. Received: {self!r}"
            )
        return values

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def draws_elementwise(self) -> bool:
        """`elementwise`, for this instance (a Constant of an array is not)."""
        return self.elementwise

    def get_config(self) -> dict[str, Any]:
        return asdict(self) | {"name": self.name}


InitializerClass = TypeVar("InitializerClass", bound=type[Initializer])


def kotlindl_names(**names: str) -> Callable[[InitializerClass], InitializerClass]:
    """Class decorator, above `@dataclass`: the constructor also takes KotlinDL's names of its arguments, snake-cased
    (`names`: KotlinDL's -> ours, e.g. `stdev="stddev"`); giving both is refused. The config keeps our names."""

    def decorate(cls: InitializerClass) -> InitializerClass:
        init = vars(cls)["__init__"]  # the dataclass's
        positional = [f.name for f in fields(cls) if f.init]

        @functools.wraps(init)
        def init_taking_kotlindl_names(self: Any, *args: Any, **kwargs: Any) -> None:
            for alias, own in names.items():
                if alias not in kwargs:
                    continue
                if own in kwargs or own in positional[: len(args)]:
                    mine = f"{own}={kwargs[own]!r}" if own in kwargs else f"{own} (positional)"
                    raise InvalidArgumentError(
                        f"{cls.__name__} takes {own} or its KotlinDL name {alias}, not both. Received: {mine}, "
                        f"{alias}={kwargs[alias]!r}"
                    )
                kwargs[own] = kwargs.pop(alias)
            init(self, *args, **kwargs)

        setattr(cls, "__init__", init_taking_kotlindl_names)  # noqa: B010 (mypy refuses assigning a method)
        return cls

    return decorate


@dataclass(frozen=True)
class Zeros(Initializer):
    name: str = field(default="zeros", init=False)
    elementwise: ClassVar[bool] = True

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(shape, np.float32)


@dataclass(frozen=True)
class Ones(Initializer):
    name: str = field(default="ones", init=False)
    elementwise: ClassVar[bool] = True

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.ones(shape, np.float32)


@dataclass(frozen=True)
class Constant(Initializer):
    """`value` in every element: a number, or, as Keras 3 takes it (`Embedding(..., embeddings_initializer=
    Constant(embedding_matrix))`: pretrained embeddings), an array of the weight's shape in Keras' layout (a
    convolution kernel's (*window, in, filters), moved into onnxtrain's as a drawn one is: `onnx_conv_kernel`).

    The config holds an array as its float32 bytes in base64 (`{"dtype", "shape", "base64"}`), a few bytes a value;
    Keras' `{"class_name": "__numpy__", "config": {"value": [...]}}` is read too. A large matrix makes the layer's
    config (and a saved model's config.json, which holds at most 64 MiB) as large: `layer.set_weights([matrix])` on
    the built layer keeps it small.
    """

    value: float | np.ndarray = 0.0
    name: str = field(default="constant", init=False)
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _constant_value(self.value))

    def draws_elementwise(self) -> bool:
        return not isinstance(self.value, np.ndarray)  # an array is in Keras' layout, so a kernel is moved

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(self.value, np.ndarray):
            return np.full(shape, self.value, np.float32)
        if self.value.shape != tuple(shape):
            raise InvalidArgumentError(
                f"Constant(value=...) holds an array of shape {self.value.shape}, and the weight it initializes has "
                f"shape {tuple(shape)} (in Keras' layout: a convolution kernel is (*window, in, filters)). Give an "
                "array of the weight's shape, or a number."
            )
        return self.value.copy()

    def get_config(self) -> dict[str, Any]:
        if not isinstance(self.value, np.ndarray):
            return {"value": self.value, "name": self.name}
        encoded = base64.b64encode(self.value.astype("<f4").tobytes()).decode("ascii")
        return {"value": {"dtype": "float32", "shape": list(self.value.shape), "base64": encoded}, "name": self.name}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Constant):
            return NotImplemented
        mine, theirs = self.value, other.value
        if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
            return bool(np.shape(mine) == np.shape(theirs) and np.array_equal(mine, theirs))
        return mine == theirs

    def __hash__(self) -> int:
        value = self.value
        return hash(("constant", value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value)

    def __repr__(self) -> str:
        value = self.value
        shown = f"<float32 array of shape {value.shape}>" if isinstance(value, np.ndarray) else repr(value)
        return f"Constant(value={shown})"


def _constant_value(value: object) -> float | np.ndarray:
    """Constant's `value` as a float (a number) or a read-only float32 array (an array, a nested list, or a config's
    encoded one), every element finite in float32."""
    if isinstance(value, dict):
        value = _decoded_array(value)
    if not isinstance(value, np.ndarray | list | tuple):
        return _check_float32("Constant", "value", value)
    array = np.asarray(value)
    if array.ndim == 0:
        return _check_float32("Constant", "value", array.item())
    if array.dtype.kind not in "fiu" or array.size == 0:
        what = "an empty array" if array.size == 0 else f"an array of dtype {array.dtype}"
        raise InvalidArgumentError(
            f"Constant(value=...) expects a finite number or a non-empty array of numbers. Received: {what} of shape "
            f"{array.shape}"
        )
    with np.errstate(over="ignore"):
        values = array.astype(np.float32)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise InvalidArgumentError(
            f"Constant(value=...) expects finite float32 values (|value| <= 3.4e38). Received: value{list(where)}="
            f"{array[where]} ({len(bad)} of {values.size} not finite in float32)"
        )
    values.flags.writeable = False
    return values


def _decoded_array(config: dict[str, Any]) -> np.ndarray:
    """The array a Constant config holds: ours ({"dtype": "float32", "shape": [...], "base64": "..."}) or Keras'
    ({"class_name": "__numpy__", "config": {"value": [...], "dtype": ...}})."""
    if config.get("class_name") == "__numpy__" and isinstance(config.get("config"), dict):
        return np.asarray(config["config"].get("value"))
    shape, encoded = config.get("shape"), config.get("base64")
    if (
        config.get("dtype") == "float32"
        and isinstance(shape, list)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        and isinstance(encoded, str)
    ):
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError as e:
            raise InvalidArgumentError(f"Constant(value=...) holds base64 that does not decode: {e}") from e
        if len(data) == 4 * math.prod(shape):
            return np.frombuffer(data, "<f4").reshape(shape)
        raise InvalidArgumentError(
            f"Constant(value=...) holds {len(data)} bytes, and shape {shape} takes {4 * math.prod(shape)} (float32)."
        )
    raise InvalidArgumentError(
        "Constant(value=...) expects a number, an array, or an encoded array as its config writes it "
        f"({{'dtype': 'float32', 'shape': [...], 'base64': ...}}). Received a dict with keys {sorted(config)}"
    )


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
class VarianceScaling(Initializer):
    """Keras' variance scaling: variance = scale / n, n chosen by `mode`; `distribution` truncated normal or uniform.

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
        if self.distribution not in ("truncated_normal", "uniform"):
            raise InvalidArgumentError(
                f"{owner}(distribution=...) expects 'truncated_normal' or 'uniform'. "
                f"Received: distribution={self.distribution!r}"
            )

    def sample(self, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        return truncated_normal(rng, shape, math.sqrt(variance) / 0.87962566103423978)

    def get_config(self) -> dict[str, Any]:
        if type(self) is VarianceScaling:
            return super().get_config()
        return {"name": self.name, "seed": self.seed}  # the named schemes (HeNormal, ...) fix the rest


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


def truncated_normal(rng: np.random.Generator, shape: Shape, stddev: float) -> np.ndarray:
    """Normal samples with |value| <= 2 * stddev, redrawing the rest (vectorized rejection sampling)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


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


@dataclass(frozen=True)
class DeclaredWeights:
    """The weights a saved model's model.onnx declares (graph name -> shape), read before its layers are rebuilt."""

    shapes: Mapping[str, Shape]
    source: Path


_DECLARED: ContextVar[DeclaredWeights | None] = ContextVar("onnxtrain_declared_weights", default=None)


@contextmanager
def weights_declared_by(shapes: Mapping[str, Shape], source: Path) -> Iterator[None]:
    """Rebuild layers whose weights `source` (a model.onnx) holds: inside, initializers return zero views that
    allocate nothing, and `check_declared` (called by `Layer.add_weight`) refuses a weight `source` lacks, so a
    forged config.json (`Dense(units=10**9)`) cannot allocate what the file does not hold. `load_model` uses it."""
    token = _DECLARED.set(DeclaredWeights({name: tuple(shape) for name, shape in shapes.items()}, source))
    try:
        yield
    finally:
        _DECLARED.reset(token)


def check_declared(owner: str, local_name: str, graph_name: str, shape: Shape) -> None:
    """Inside `weights_declared_by`: refuse weight `graph_name` (`dense_1.kernel`; inside a nested model its name
    in the file ends so) unless the file declares it with `shape`. Outside, nothing to check.

    Raises:
        ModelFileError: naming the layer, the weight, its shape, what the file declares and the file.
    """
    declared = _DECLARED.get()
    if declared is None:
        return
    found = {name: s for name, s in declared.shapes.items() if name == graph_name or name.endswith(f".{graph_name}")}
    if tuple(shape) in found.values():
        return
    said = ", ".join(f"{name!r} of shape {s}" for name, s in list(found.items())[:3])
    raise ModelFileError(
        f"{declared.source}: {owner} makes weight {local_name!r} of shape {tuple(shape)}, which {declared.source.name} "
        f"does not declare ({f'it declares {said}' if found else f'it has no weight {graph_name!r}'}): config.json "
        "and the weights describe different models (damaged or forged); the weight was not allocated."
    )


def _out_of_memory(initializer: Initializer, shape: Shape) -> str:
    # The draws are float64 and cast to float32 after: drawing in float32 would change every seeded weight.
    count = math.prod(shape)
    return (
        f"{type(initializer).__name__} ran out of memory creating weights of shape {shape} ({count:,} values): "
        f"they take {gib(4 * count)} as float32, and about {gib(12 * count)} while they are drawn (as float64, "
        f"then cast). Give the layer fewer units or a smaller input. Received: {initializer!r}"
    )


def gib(size: int) -> str:
    """`size` bytes as out-of-memory messages give it: "1.2 GiB"."""
    return f"{size / 2**30:.1f} GiB"


def _check_float32(owner: str, arg: str, value: object, positive: bool = False) -> float:
    """`value` as a Python float, if it is a real number (numpy scalars too, not bools) that is finite in float32."""
    number = as_real(value)
    if number is not None and abs(number) <= FLOAT32_MAX and (number > 0 or not positive):  # NaN fails it
        return number
    expected = "a positive finite number" if positive else "a finite number"
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects {expected} within float32 range (|{arg}| <= 3.4e38). Received: {arg}={value!r}"
    )


def _check_seed(owner: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        return int(value)
    raise InvalidArgumentError(f"{owner}(seed=...) expects a non-negative int or None. Received: seed={value!r}")


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
}
_REGISTRY = Registry(
    "initializer", Initializer, _CLASSES, _ALIASES, normalize=lambda name: snake_case(name).replace("le_cun", "lecun")
)


def get(identifier: InitializerLike) -> Initializer:
    """Map a name ("he_normal", "HeNormal"), a class (`HeNormal`), a config dict or an instance to an Initializer.

    Raises:
        UnknownIdentifierError: the identifier names no initializer.
    """
    return _REGISTRY.get(identifier)
