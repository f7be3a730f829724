"""The Initializer base class: the float32 weights its `__call__` returns (finite, a clear error where they do not
fit in memory, none drawn while `load_model` rebuilds a model's layers: `weights_declared_by`), and argument checks
(a keyword an initializer does not take refused naming Python's spelling of KotlinDL's, `kotlindl_names`)."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain._keyword_arguments import refuse_unknown
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
    kotlindl_aliases: ClassVar[Mapping[str, str]] = {}
    """KotlinDL's names of the constructor's arguments that it takes too, snake-cased, -> ours (`kotlindl_names`)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Before the dataclass's __init__, which would raise Python's bare TypeError for KotlinDL's `minVal=`.
        init = cls.__init__
        if kwargs and not _takes_any_keyword(init):
            own = set(inspect.signature(init).parameters) | set(cls.kotlindl_aliases)
            unknown = {name: value for name, value in kwargs.items() if name not in own}
            refuse_unknown(cls.__name__, unknown, init, also=list(cls.kotlindl_aliases), renamed={})
        return super().__new__(cls)

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
        cls.kotlindl_aliases = {**cls.kotlindl_aliases, **names}
        return cls

    return decorate


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


def _takes_any_keyword(function: Any) -> bool:
    """Whether `function` takes **keywords (an initializer of one's own may), so that none is refused up front."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no readable signature: leave the keywords to the call itself
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


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
