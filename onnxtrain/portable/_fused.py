"""Optimizer updates fused into one compiled pass over the weights, for the portable engine on the CPU.

In the train-step graph, Adam's update is ten elementwise ONNX operators per parameter: ten passes over the
weights, each its own ONNX Runtime kernel, and ORT's Sqrt is not vectorised for this CPU's widest registers. Inside
a fit of the tutorial MLP that was 300-550 µs of each step. Compiled with numba, the same formula reads each
weight, gradient and moment once: ~180 µs alone, ~220-250 µs inside a fit, on the calling thread. The engine then
runs only forward, loss, backward and clipping in ONNX Runtime (`gradient_model`) and calls the kernel between
runs, on the very buffers ONNX Runtime reads.

numba is optional (`pip install onnxtrain[fast]`); without it, or for an optimizer with no kernel here, the engine
keeps the update in the graph. This is the only module that imports numba.

Numerics. Each kernel evaluates its `UpdateRule`'s formula in the same order, in float32, so the carried state
(and checkpoints) mean the same thing on both paths. The results agree to float32 rounding, not bit for bit:
numba's square root is correctly rounded, ONNX Runtime 1.19's CPU Sqrt is not (1 ulp off for ~40% of inputs).
The engine calls the kernel in the float mode it runs ORT in (subnormals flushed to zero, `_float_env.py`), and
the kernel flushes the subnormal values it stores itself too, so that, as in the graph, stored values never become
subnormal (which would also slow the arithmetic) where that mode cannot be set.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from onnxtrain import optimizers as opt

FLT_MIN = float(np.finfo(np.float32).tiny)  # the smallest normal float32; below it, the graph's FTZ mode gives 0


@cache
def _numba() -> Any | None:
    """The numba module, or None where it is not installed (or disabled with ONNXTRAIN_FUSED_UPDATE=0)."""
    if os.environ.get("ONNXTRAIN_FUSED_UPDATE", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba


def available() -> bool:
    """Whether fused updates can run here (numba imports)."""
    return _numba() is not None


def _rescaled_adam(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: np.float32,
    beta2: np.float32,
    alpha: np.float32,
    eps: np.float32,
    tiny: np.float32,
) -> None:
    """The rescaled Adam of `AdamRule` (moments carried as m / (1 - beta1) and v / (1 - beta2)), in its op order."""
    for i in range(w.size):
        gi = g[i]
        mi = m[i] * beta1 + gi
        vi = v[i] * beta2 + gi * gi
        wi = w[i] - (mi * alpha) / (np.sqrt(vi) + eps)
        m[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        v[i] = vi if vi >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


@cache
def _adam_kernel() -> Callable[..., None]:
    """`_rescaled_adam` compiled for flat float32 buffers, on the calling thread.

    Vectorised (AVX-512 on this machine), one thread takes ~180 µs for the tutorial's 266,610 weights alone and
    ~220-250 µs inside a fit, where ORT's GEMMs have just pushed the moments out of the cache. One thread on purpose:
    numba's thread pools fight ONNX Runtime's spinning workers for the cores (OpenMP's, which spins by default,
    made the step 2.5x slower), and a worker thread of our own cut the kernel to 155-186 µs inside a fit only with
    ORT's spinning stopped after each run: too little for a thread per engine.
    """
    numba = _numba()
    assert numba is not None, "callers check available() first"
    # error_model="numpy": no ZeroDivisionError check per division, which would keep the loop from vectorising.
    options = {"nogil": True, "error_model": "numpy", "boundscheck": False}
    try:
        kernel = numba.njit(cache=True, **options)(_rescaled_adam)  # compiled once per machine, then loaded
    except RuntimeError:  # no writable cache directory (read-only install and home): compile in every process
        kernel = numba.njit(**options)(_rescaled_adam)
    one = np.zeros(1, np.float32)
    scalar = np.float32(1.0)
    kernel(one, one.copy(), one.copy(), one.copy(), scalar, scalar, scalar, scalar, scalar)  # compile or load now
    return kernel


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


def _adam(optimizer: opt.Adam) -> FusedUpdate:
    f32 = np.float32
    beta1, beta2 = f32(optimizer.beta1), f32(optimizer.beta2)
    # AdamRule.prepare's scalars, with its float32 operations in its order.
    rescale = f32((1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2))
    eps = f32(optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2))
    kernel = _adam_kernel()

    def step(w: np.ndarray, g: np.ndarray, state: tuple[np.ndarray, ...], t: int, lr: float) -> None:
        tf = f32(t)
        one = f32(1.0)
        alpha = (f32(lr) * rescale) * np.sqrt(one - np.power(beta2, tf)) / (one - np.power(beta1, tf))
        kernel(w, g, state[0], state[1], beta1, beta2, f32(alpha), eps, f32(FLT_MIN))

    return FusedUpdate(("m", "v"), step)


_FUSED: dict[type[opt.Optimizer], Callable[[Any], FusedUpdate]] = {opt.Adam: _adam}


def supported_names() -> list[str]:
    return [cls.__name__ for cls in _FUSED]


def supports(optimizer: opt.Optimizer) -> bool:
    """Whether `optimizer` (exactly its class: a subclass may change the rule) has a fused kernel here."""
    return type(optimizer) in _FUSED


def fused_update(optimizer: opt.Optimizer) -> FusedUpdate:
    """The fused update for `optimizer`; callers check `available()` and `supports(optimizer)` first."""
    return _FUSED[type(optimizer)](optimizer)
