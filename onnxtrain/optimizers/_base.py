"""What every optimizer shares: the settings base class and its hyper-parameter checks, the two forms of an update
(an `UpdateRule` that emits ONNX, a `FusedKernel` loop for numba), and gradient clipping in ONNX.

Each optimizer's module (`_adam.py`, ...) holds its settings, its `UpdateRule` and its `FusedKernel` side by side.
The portable engine looks them up (onnxtrain/portable/_optimizers.py, _fused.py); nothing here imports numba or
ONNX Runtime.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from onnxtrain._checks import FLOAT32_MAX, as_real
from onnxtrain.errors import InvalidArgumentError
from onnxtrain.optimizers.schedules import LearningRateSchedule, deserialize, from_keras, serialize

if TYPE_CHECKING:
    from onnxtrain.graph import GraphBuilder

Names = dict[str, str]
Update = tuple[str, Names]
CLIP_NORM_EPSILON = 1e-6  # as ONNX Runtime's InplaceClipGradNorm and torch.nn.utils.clip_grad_norm_
f32 = np.float32


@dataclass(frozen=True)
class Interval:
    """A hyper-parameter rule: a finite real number (numpy scalars too, never a bool) from `low` to `high`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False  # None is allowed too (and means "off")

    def __call__(self, owner: str, arg: str, value: object) -> float | None:
        """`value` as a Python float; otherwise InvalidArgumentError naming `owner`, `arg`, the interval and `value`."""
        if value is None and self.optional:
            return None
        number = as_real(value)
        if number is not None:
            inside = math.isfinite(number)
            if inside and self.low is not None:
                inside = number > self.low if self.low_open else number >= self.low
            if inside and self.high is not None:
                inside = number < self.high if self.high_open else number <= self.high
            if inside:
                return number
        left = "-inf" if self.low is None else f"{self.low:g}"
        right = "inf" if self.high is None else f"{self.high:g}"
        opening = "(" if self.low_open or self.low is None else "["
        closing = ")" if self.high_open or self.high is None else "]"
        expected = f"a finite number in {opening}{left}, {right}{closing}" + (" or None" if self.optional else "")
        raise InvalidArgumentError(f"{owner}({arg}=...) expects {expected}. Received: {arg}={value!r}")


Check = Callable[[str, str, object], object]
POSITIVE = Interval(0.0, low_open=True)
# A learning rate: 0 too (a run that moves only BatchNormalization's statistics, a warm-up's first step), as Keras and
# PyTorch take it; at most float32's largest, which the engines compute in (1e40 is inf there).
RATE = Interval(0.0, FLOAT32_MAX)
NON_NEGATIVE = Interval(0.0)
UNIT_OPEN = Interval(0.0, 1.0, low_open=True, high_open=True)
LearningRate = float | LearningRateSchedule


def check_learning_rate(owner: str, arg: str, value: object) -> float | LearningRateSchedule:
    """A finite number >= 0 (as a Python float; 0 leaves the weights where they are while the optimizer's moments
    still move, as in Keras) or a learning-rate schedule: a `LearningRateSchedule`, a schedule's config
    ({"class_name": ..., "config": {...}}, what `get_config` writes), or one of Keras' own schedule objects (rebuilt
    as onnxtrain's class of the same name)."""
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, dict) and "class_name" in value:
        return deserialize(value)
    keras_schedule = from_keras(value)
    if keras_schedule is not None:
        return keras_schedule
    if as_real(value) is not None:
        return RATE(owner, arg, value)  # type: ignore[return-value]  # (not optional: never None)
    raise InvalidArgumentError(
        f"{owner}({arg}=...) expects a finite number in [0, 3.40282e+38] (float32's range) or a learning-rate schedule "
        "(onnxtrain.optimizers.schedules: ExponentialDecay, CosineDecay, ...; subclass LearningRateSchedule for "
        f"your own). Received: {arg}={value!r}"
    )


def positive_learning_rate(reason: str) -> Check:
    """The rule `check_learning_rate` with 0 refused too, for an optimizer that computes its weights from the rate
    rather than adding an update scaled by it (Ftrl divides by the rate; AdaGradDA multiplies its accumulated
    gradients by it), so that 0 would not leave the weights where they are. `reason` says what 0 would do."""

    def check(owner: str, arg: str, value: object) -> float | LearningRateSchedule:
        rate = check_learning_rate(owner, arg, value)
        if not isinstance(rate, LearningRateSchedule) and rate == 0:
            raise InvalidArgumentError(
                f"{owner}({arg}=...) expects a finite number in (0, 3.40282e+38]: {owner} {reason}. Received: "
                f"{arg}={value!r}"
            )
        return rate

    return check


@dataclass
class Optimizer:
    """Base class. `learning_rate` is a number, which may be changed between steps (e.g. by a scheduler
    callback), or a schedule (`onnxtrain.optimizers.schedules`, Keras' schedules), which `fit` calls before each
    update with the updates made so far; the config holds the schedule as {"class_name": ..., "config": {...}}.

    Positional arguments follow KotlinDL's constructors (and Keras'): the learning rate, then the optimizer's own
    settings in the order its class lists them, so `Adam(0.001, 0.8)` sets beta1. The clip settings are
    keyword-only.

    Gradient clipping, applied before the update:
        clip_value: clamp each gradient element to [-clip_value, clip_value] (KotlinDL's ClipGradientByValue).
        clip_norm: rescale all gradients together so their global L2 norm is at most clip_norm
            (`g *= clip_norm / (norm + 1e-6)` when that factor is below 1, as ONNX Runtime and PyTorch do).
        With both, values are clamped first.

    Keras' names for the same settings are accepted too (`beta_1`, `rho`, `clipvalue`, `global_clipnorm`, ...:
    `_keras_arguments.py`, which decorates each class).

    The hyper-parameters in `_checks` (a subclass's table adds to its bases') are checked on every assignment,
    in the constructor and after it, and numbers are stored as Python floats: `Adam(learning_rate=np.float32(0.01))`
    works, `optimizer.beta1 = 5` raises InvalidArgumentError.
    """

    learning_rate: LearningRate
    # Keyword-only: a subclass's own settings come right after learning_rate among the positional arguments.
    clip_norm: float | None = field(default=None, kw_only=True)
    clip_value: float | None = field(default=None, kw_only=True)
    name: str = field(default="", init=False)

    _checks: ClassVar[dict[str, Check]] = {
        "learning_rate": check_learning_rate,
        "clip_norm": Interval(0.0, low_open=True, optional=True),
        "clip_value": Interval(0.0, low_open=True, optional=True),
    }

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, self.check_setting(name, value))

    def check_setting(self, name: str, value: object) -> object:
        """`value` as setting `name` would store it (a Python float for a number), changing nothing.

        Raises:
            InvalidArgumentError: the value the setting's rule refuses, naming the optimizer, the setting and it.
        """
        for cls in type(self).__mro__:  # the nearest class with a rule for `name` decides
            check = vars(cls).get("_checks", {}).get(name)
            if check is not None:
                return check(type(self).__name__, name, value)
        return value

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments and `name`; a schedule as `schedules.serialize` writes it.

        Raises:
            InvalidArgumentError: the learning rate is a schedule that cannot be saved (`schedules.serialize`).
        """
        if not isinstance(self.learning_rate, LearningRateSchedule):
            return asdict(self)
        config = {f.name: getattr(self, f.name) for f in fields(self)}  # (asdict would deep-copy the schedule)
        config["learning_rate"] = serialize(self.learning_rate)
        return config


@dataclass(frozen=True)
class Slot:
    """One optimizer state tensor per parameter, shaped like it, starting at `initial`.

    The graph carries the slot's value times `scale`: a rule may keep a rescaled moment when that saves a pass
    over the tensor per step (Adam). `initial` and what `PortableEngine.optimizer_state` reports are unscaled.
    """

    name: str
    initial: float = 0.0
    scale: float = 1.0


class UpdateRule:
    """How one optimizer class updates a parameter, as ONNX: TensorFlow's `Apply*` kernel (what KotlinDL runs),
    written with the same operation order so float32 results match a numpy transcription of that kernel.

    `slots` lists the state tensors; `prepare` emits per-step scalars once (bias corrections, constants);
    `update` emits one parameter's update. Register a rule for a class of your own with
    `onnxtrain.portable.register_update_rule`.
    """

    def slots(self, optimizer: Optimizer) -> tuple[Slot, ...]:
        return ()

    def prepare(self, b: GraphBuilder, optimizer: Optimizer, lr: str, t: str) -> Names:
        """Scalars shared by every parameter's update, by name; `lr` and `t` (the 1-based number of the update)
        are float32 scalars."""
        return {"lr": lr}

    def update(self, b: GraphBuilder, optimizer: Optimizer, w: str, g: str, state: Names, s: Names) -> Update:
        """Return (new parameter, {slot: new state}); `state` maps slots to values, `s` is `prepare`'s."""
        raise NotImplementedError


Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class FusedKernel:
    """An optimizer's update as one loop over flat float32 buffers, which the portable engine compiles with numba
    and calls in place of the graph's update (onnxtrain/portable/_fused.py).

    `kernel(w, g, a, b, c, k)` takes the weights, the gradients, up to three state buffers (zero-length where the
    rule has fewer slots, or where an option leaves one out) and a float32 array of scalars. It evaluates its
    `UpdateRule.update` in the same order, in float32, so the carried state (and checkpoints) mean the same thing
    on both paths. `TINY` (the last scalar) is the smallest normal float32: values below it are stored as 0, as
    flush-to-zero does. A kernel is plain Python that numba's nopython mode compiles: index loops, numpy scalars.

    Attributes:
        kernel: the loop.
        slots: the rule's slots for this optimizer, in the order of `UpdateRule.slots`.
        scalars: (t, lr) -> the kernel's scalars before TINY, computed with the float32 operations of the rule's
            `prepare` in its order; `t` is the 1-based number of the update, `lr` is float32.
        buffers: which slot the kernel takes as its a, b and c (default: `slots` in order); a slot the rule does
            not have this time (an option left it out) is passed as an empty buffer.
    """

    kernel: Kernel
    slots: tuple[str, ...]
    scalars: Callable[[int, np.float32], list[np.float32]]
    buffers: tuple[str, ...] | None = None


def scalar(b: GraphBuilder, value: float, hint: str) -> str:
    """A float32 scalar constant."""
    return b.constant(np.float32(value), hint)


def one_minus(b: GraphBuilder, value: float, hint: str) -> str:
    """The float32 constant 1 - value, rounded once (from the float64 difference)."""
    return scalar(b, 1.0 - value, hint)


def clip_gradients(b: GraphBuilder, optimizer: Optimizer, grads: Sequence[str]) -> list[str]:
    """Apply `clip_value` (per element), then `clip_norm` (global L2 norm over all gradients)."""
    grads = list(grads)
    if optimizer.clip_value is not None:
        low, high = scalar(b, -optimizer.clip_value, "clip_low"), scalar(b, optimizer.clip_value, "clip_high")
        grads = [b.node("Clip", [g, low, high], hint="clipped") for g in grads]
    if optimizer.clip_norm is not None:
        squares = [b.reduce("ReduceSumSquare", g, None, False, "grad_sq") for g in grads]
        total = squares[0] if len(squares) == 1 else b.node("Sum", squares, hint="grad_sq_total")
        norm = b.node("Add", [b.node("Sqrt", [total]), scalar(b, CLIP_NORM_EPSILON, "clip_eps")])
        factor = b.node(
            "Min",
            [b.node("Div", [scalar(b, optimizer.clip_norm, "clip_norm"), norm]), scalar(b, 1.0, "one")],
            hint="clip_factor",
        )
        grads = [b.node("Mul", [g, factor], hint="clipped") for g in grads]
    return grads


def clip_flat_gradients(gradients: np.ndarray, clip_value: float | None, clip_norm: float | None) -> None:
    """`clip_gradients` in place on every gradient at once, flat (float32): for an engine that combines the
    gradients of several runs first (a data-parallel or split step), as clipping each run's share would clip a
    different vector."""
    if clip_value is not None:
        np.clip(gradients, -clip_value, clip_value, out=gradients)
    if clip_norm is not None:
        norm = math.sqrt(float(np.dot(gradients, gradients)))
        factor = clip_norm / (norm + CLIP_NORM_EPSILON)
        if factor < 1.0:
            gradients *= np.float32(factor)
