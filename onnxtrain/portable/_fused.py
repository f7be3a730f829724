"""Optimizer updates fused into one compiled pass over the weights, for the portable engine on the CPU: which
kernel each optimizer class has, numba, which compiles it, and whether an engine runs one (`use_fused`).

In the train-step graph, Adam's update is ten elementwise ONNX operators per parameter: ten passes over the
weights, each its own ONNX Runtime kernel, and ORT's Sqrt is not vectorised for this CPU's widest registers. Inside
a fit of the tutorial MLP that was 300-550 µs of each step. Compiled with numba, the same formula reads each
weight, gradient and moment once: ~180 µs alone, ~220-250 µs inside a fit, on the calling thread. The engine then
runs only forward, loss, backward and clipping in ONNX Runtime (`gradient_model`) and calls the kernel between
runs, on the very buffers ONNX Runtime reads.

Every optimizer the portable engine knows has a kernel, written next to its update rule (the `FusedKernel` of
onnxtrain/optimizers/_adam.py, ...): SGD, Momentum, RMSProp, AdaDelta, AdaGrad, AdaGradDA, Adam, AdamW, Adamax, Nadam
and Ftrl (a registered rule of your own keeps the graph's update). numba is optional (`pip install onnxtrain[fast]`);
without it the engine keeps the update in the graph. This is the only module that imports numba, on the first
`available()` call, and a kernel compiles (or loads from numba's cache) on the first `fused_update` for its class.

Numerics. Each kernel evaluates its `UpdateRule`'s formula in the same order, in float32, so the carried state
(and checkpoints) mean the same thing on both paths. The results agree to float32 rounding, not bit for bit:
numba's square root is correctly rounded, ONNX Runtime 1.19's CPU Sqrt is not (1 ulp off for ~40% of inputs), and
numba's float32 power (Ftrl with a learning-rate power other than -1/2) is not always the C library's powf.
The engine calls the kernel in the float mode it runs ORT in (subnormals flushed to zero, `_float_env.py`), and
the kernel flushes the subnormal values it stores itself too, so that, as in the graph, stored values never become
subnormal (which would also slow the arithmetic) where that mode cannot be set.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from onnxtrain._runtime import Device
from onnxtrain.errors import InvalidArgumentError, UnsupportedError
from onnxtrain.initializers import gib  # sizes as the initializers' out-of-memory errors give them
from onnxtrain.optimizers import (
    SGD,
    AdaDelta,
    Adadelta,
    AdaGrad,
    Adagrad,
    AdaGradDA,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Momentum,
    Nadam,
    Optimizer,
    RMSProp,
    RMSprop,
)
from onnxtrain.optimizers._adadelta import fused_adadelta
from onnxtrain.optimizers._adagrad import fused_adagrad
from onnxtrain.optimizers._adagrad_da import fused_adagrad_da
from onnxtrain.optimizers._adam import fused_adam
from onnxtrain.optimizers._adamax import fused_adamax
from onnxtrain.optimizers._base import FusedKernel
from onnxtrain.optimizers._ftrl import fused_ftrl
from onnxtrain.optimizers._momentum import fused_momentum
from onnxtrain.optimizers._nadam import fused_nadam
from onnxtrain.optimizers._rmsprop import fused_rmsprop
from onnxtrain.optimizers._sgd import fused_sgd

UPDATES = ("auto", "graph", "fused")
FLT_MIN = float(np.finfo(np.float32).tiny)  # the smallest normal float32; below it, the graph's FTZ mode gives 0
# Where each flat buffer starts: a cache line, a multiple of every vector width. numpy aligns to 16 bytes only, and
# Adam's kernel ran 7-8% slower alone on buffers off a 32-byte boundary (AVX2 loads split across cache lines).
ALIGNMENT = 64


@cache
def _numba() -> tuple[Any | None, str]:
    """(the numba module, "") or (None, why fused updates cannot run here)."""
    if os.environ.get("ONNXTRAIN_FUSED_UPDATE", "1") == "0":
        return None, "ONNXTRAIN_FUSED_UPDATE=0 turns it off"
    try:
        import numba
    except ImportError as e:
        if e.name in ("numba", "llvmlite"):
            return None, "numba is not installed (pip install onnxtrain[fast])"
        reason = f"numba does not import: {e}"  # e.g. a numpy newer than the numba release supports
    except Exception as e:  # a broken install (a missing LLVM library, ...) is not the user's training problem
        reason = f"numba does not import: {type(e).__name__}: {e}"
    else:
        return numba, ""
    # Installed but broken: say so once, or the user would lose the speed without knowing why.
    warnings.warn(f"{reason}. The portable engine keeps its optimizer update in the graph.", RuntimeWarning, 2)
    return None, reason


def available() -> bool:
    """Whether fused updates can run here (numba imports)."""
    return _numba()[0] is not None


def unavailable_reason() -> str:
    """Why `available()` is False ("" when it is True)."""
    return _numba()[1]


@cache
def _compiled(kernel: Callable[..., None]) -> Callable[..., None]:
    """`kernel` compiled for flat float32 buffers, on the calling thread.

    Vectorised for the CPU's widest registers (AVX-512 where measured), Adam's takes ~180 µs for the tutorial's
    266,610 weights alone and ~220-250 µs inside a fit, where ORT's GEMMs have just pushed the moments out of the
    cache. One thread on purpose: numba's thread pools fight ONNX Runtime's spinning workers for the cores
    (OpenMP's, which spins by default, made the step 2.5x slower), and splitting the pass with a helper thread of our
    own (ORT's spinning stopped after each run) made 3-epoch fits slower in three of four alternating pairs.
    """
    numba = _numba()[0]
    assert numba is not None, "callers check available() first"
    # error_model="numpy": no ZeroDivisionError check per division, which would keep the loop from vectorising.
    options = {"nogil": True, "error_model": "numpy", "boundscheck": False}
    try:
        compiled = numba.njit(cache=True, **options)(kernel)  # compiled once per machine, then loaded
    except RuntimeError:  # no writable cache directory (read-only install and home): compile in every process
        compiled = numba.njit(**options)(kernel)
    one = np.ones(1, np.float32)
    compiled(one, one.copy(), one.copy(), one.copy(), one.copy(), np.ones(8, np.float32))  # compile or load it now
    return compiled


@dataclass(frozen=True)
class FusedUpdate:
    """One optimizer's fused update over flat float32 buffers: `slots` names its state buffers, in order."""

    slots: tuple[str, ...]
    _step: Callable[[np.ndarray, np.ndarray, tuple[np.ndarray, ...], int, float], None]

    def __call__(
        self, weights: np.ndarray, grads: np.ndarray, state: tuple[np.ndarray, ...], t: int, lr: float
    ) -> None:
        """Update `weights` and `state` in place for the `t`-th update (1-based) at learning rate `lr`."""
        self._step(weights, grads, state, t, lr)


_NONE = np.zeros(0, np.float32)  # a state buffer the rule does not have


def flat_buffer(
    names: Sequence[str], shapes: Sequence[tuple[int, ...]], values: Mapping[str, np.ndarray]
) -> np.ndarray:
    """One float32 buffer of `values[name]` for each of `names` (shaped as `shapes`), raveled end to end in order;
    zeros where `values` has none (the gradients). Allocated once, as float32: each value is cast as it is copied
    in, so a large model's buffer never exists as float64 too. It starts on an `ALIGNMENT`-byte boundary.

    Raises:
        MemoryError: the buffer does not fit (the engine turns it into `out_of_memory`'s message).
    """
    sizes = [math.prod(shape) for shape in shapes]
    buffer = _aligned_zeros(sum(sizes))
    start = 0
    for name, size in zip(names, sizes, strict=True):
        value = values.get(name)
        if value is not None:
            buffer[start : start + size] = np.reshape(value, -1)
        start += size
    return buffer


def _aligned_zeros(count: int) -> np.ndarray:
    """`count` float32 zeros starting on an `ALIGNMENT`-byte boundary: a view into a slightly longer array."""
    # calloc: pages left zero (the gradients) cost nothing until written
    raw = np.zeros(count + ALIGNMENT // 4, np.float32)
    start = (-raw.ctypes.data % ALIGNMENT) // 4  # a float32 array starts on a 4-byte boundary: whole floats
    return raw[start : start + count]


def out_of_memory(optimizer: Optimizer, count: int, buffers: int) -> str:
    """The message for a MemoryError creating the `buffers` flat buffers of `count` values each, worded as the
    weight initializers word theirs (`onnxtrain.initializers`)."""
    return (
        f"The portable engine ran out of memory creating the flat buffers of its fused {type(optimizer).__name__} "
        f"update: {buffers} of {count:,} values (the weights, {buffers - 2} optimizer state slot(s) and the "
        f"gradients), which take {gib(4 * count)} each as float32, {gib(4 * count * buffers)} in all. Give the "
        "layer fewer units or a smaller input, or use an optimizer that keeps less state (SGD keeps none)."
    )


def _fused(spec: FusedKernel) -> FusedUpdate:
    """A FusedUpdate calling the compiled `spec.kernel` with `spec.scalars(t, lr)` (float32, TINY appended), and
    the slots `spec.buffers` names as its a, b and c."""
    compiled = _compiled(spec.kernel)
    slots = spec.slots
    positions = tuple(slots.index(name) if name in slots else None for name in (spec.buffers or slots))
    padding = (_NONE,) * (3 - len(positions))
    scalars = spec.scalars

    def step(w: np.ndarray, g: np.ndarray, state: tuple[np.ndarray, ...], t: int, lr: float) -> None:
        abc = (*(_NONE if i is None else state[i] for i in positions), *padding)
        compiled(w, g, *abc, np.array([*scalars(t, np.float32(lr)), FLT_MIN], np.float32))

    return FusedUpdate(slots, step)


_KERNELS: dict[type[Optimizer], Callable[[Any], FusedKernel]] = {
    SGD: fused_sgd,
    Momentum: fused_momentum,
    RMSProp: fused_rmsprop,
    RMSprop: fused_rmsprop,  # Keras' names: the same rules, Keras' defaults
    AdaDelta: fused_adadelta,
    Adadelta: fused_adadelta,
    AdaGrad: fused_adagrad,
    Adagrad: fused_adagrad,
    AdaGradDA: fused_adagrad_da,
    Adam: fused_adam,
    AdamW: fused_adam,
    Adamax: fused_adamax,
    Nadam: fused_nadam,
    Ftrl: fused_ftrl,
}


def supported_names() -> list[str]:
    return [cls.__name__ for cls in _KERNELS]


def supports(optimizer: Optimizer) -> bool:
    """Whether `optimizer` (exactly its class: a subclass may change the rule) has a fused kernel here."""
    return type(optimizer) in _KERNELS


def fused_update(optimizer: Optimizer) -> FusedUpdate:
    """The fused update for `optimizer`; callers check `available()` and `supports(optimizer)` first."""
    return _fused(_KERNELS[type(optimizer)](optimizer))


def use_fused(
    update: str, optimizer: Optimizer, device: Device, layer_state: Sequence[str] = (), distributed: bool = False
) -> bool:
    """Whether the engine runs `update` ("auto", "graph" or "fused") as the kernel: "auto" where it can run.

    Raises:
        InvalidArgumentError: an unknown `update`, or "fused" where the kernel cannot run (the reasons named).
        UnsupportedError: a data-parallel fit (`distributed`) off the CPU.
    """
    if update not in UPDATES:
        raise InvalidArgumentError(f"update expects one of {list(UPDATES)}. Received: {update!r}")
    if distributed and device.kind != "cpu":
        raise UnsupportedError(
            f"The portable engine trains data-parallel on the CPU only. Received: device={str(device)!r}. Train "
            "on the CPU, or in one process."
        )
    if update == "graph":
        return False
    reasons = []
    if device.kind != "cpu":
        reasons.append(f"it runs on the CPU only (device={str(device)!r})")
    # The kernel updates weights and optimizer state; alone, the graph's update covers layer state too (data-parallel,
    # the engine writes the all-reduced layer state itself).
    if layer_state and not distributed:
        reasons.append(f"the model has layer state that each step updates ({', '.join(layer_state[:3])})")
    if not supports(optimizer):
        reasons.append(f"it has no kernel for {type(optimizer).__name__} (only for {supported_names()})")
    # Importing numba takes time and memory (docs/measurements.md): only where the answer still depends on it.
    if (update == "fused" or not reasons) and not available():
        reasons.append(unavailable_reason())
    if update == "fused" and reasons:
        raise InvalidArgumentError(f"update='fused' cannot run here: {'; '.join(reasons)}. Use update='graph'.")
    return not reasons
