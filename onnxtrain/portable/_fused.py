"""Optimizer updates fused into one compiled pass over the weights, for the portable engine on the CPU.

In the train-step graph, Adam's update is ten elementwise ONNX operators per parameter: ten passes over the
weights, each its own ONNX Runtime kernel, and ORT's Sqrt is not vectorised for this CPU's widest registers. Inside
a fit of the tutorial MLP that was 300-550 µs of each step. Compiled with numba, the same formula reads each
weight, gradient and moment once: ~180 µs alone, ~220-250 µs inside a fit, on the calling thread. The engine then
runs only forward, loss, backward and clipping in ONNX Runtime (`gradient_model`) and calls the kernel between
runs, on the very buffers ONNX Runtime reads.

Every optimizer the portable engine knows has a kernel: SGD, Momentum, RMSProp, AdaDelta, AdaGrad, AdaGradDA,
Adam, Adamax and Ftrl (a registered rule of your own keeps the graph's update). numba is optional
(`pip install onnxtrain[fast]`); without it the engine keeps the update in the graph. This is the only module that
imports numba.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from onnxtrain import optimizers as opt

FLT_MIN = float(np.finfo(np.float32).tiny)  # the smallest normal float32; below it, the graph's FTZ mode gives 0


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


# Every kernel takes (w, g, a, b, c, k): the weights, the gradients, up to three state buffers (zero-length where
# the rule has fewer slots, or where an option leaves one out) and a float32 array of scalars, computed per step in
# Python with the float32 operations of the rule's `prepare`. Each evaluates its `UpdateRule.update` in its order.
# `TINY` (the last scalar) is the smallest normal float32: values below it are stored as 0, as flush-to-zero does.


def _sgd(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """SGDRule. k: lr, tiny."""
    lr, tiny = k[0], k[1]
    for i in range(w.size):
        wi = w[i] - g[i] * lr
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _momentum(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """MomentumRule; a = accum. k: lr, momentum, lr * momentum, nesterov (1 or 0), tiny."""
    lr, momentum, lr_momentum, nesterov, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        ai = a[i] * momentum + gi
        step = gi * lr + ai * lr_momentum if nesterov != 0 else ai * lr
        wi = w[i] - step
        a[i] = ai if abs(ai) >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _rmsprop(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """RMSPropRule; a = ms, b = mom (empty without momentum), c = mg (empty unless centered).
    k: lr, 1 - rho, eps, momentum, tiny."""
    lr, one_minus_rho, eps, momentum, tiny = k[0], k[1], k[2], k[3], k[4]
    with_momentum, centered = b.size > 0, c.size > 0
    for i in range(w.size):
        gi = g[i]
        ms = a[i] + (gi * gi - a[i]) * one_minus_rho
        denom = ms
        if centered:
            mg = c[i] + (gi - c[i]) * one_minus_rho
            denom = ms - mg * mg
            c[i] = mg if abs(mg) >= tiny else np.float32(0.0)
        step = (gi * lr) / np.sqrt(denom + eps)
        if with_momentum:
            step = b[i] * momentum + step
            b[i] = step if abs(step) >= tiny else np.float32(0.0)
        wi = w[i] - step
        a[i] = ms if ms >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _adagrad(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdaGradRule; a = accum. k: lr, tiny."""
    lr, tiny = k[0], k[1]
    for i in range(w.size):
        gi = g[i]
        ai = a[i] + gi * gi
        wi = w[i] - (gi * lr) / np.sqrt(ai)
        a[i] = ai if ai >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _adam(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdamRule, moments carried rescaled (m / (1 - beta1) and v / (1 - beta2)); a = m, b = v.
    k: beta1, beta2, alpha, eps (rescaled), tiny."""
    beta1, beta2, alpha, eps, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        mi = a[i] * beta1 + gi
        vi = b[i] * beta2 + gi * gi
        wi = w[i] - (mi * alpha) / (np.sqrt(vi) + eps)
        a[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        b[i] = vi if vi >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _adamax(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdamaxRule; a = m, b = v. k: alpha, 1 - beta1, beta2, eps, tiny."""
    alpha, one_minus_beta1, beta2, eps, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        mi = a[i] + (gi - a[i]) * one_minus_beta1
        vi = max(b[i] * beta2, abs(gi))
        wi = w[i] - alpha * (mi / (vi + eps))
        a[i] = mi if abs(mi) >= tiny else np.float32(0.0)
        b[i] = vi if vi >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _adadelta(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdaDeltaRule; a = accum, b = accum_update. k: lr, rho, 1 - rho, eps, tiny."""
    lr, rho, one_minus_rho, eps, tiny = k[0], k[1], k[2], k[3], k[4]
    for i in range(w.size):
        gi = g[i]
        ai = a[i] * rho + (gi * gi) * one_minus_rho
        step = (np.sqrt(b[i] + eps) / np.sqrt(ai + eps)) * gi
        ui = b[i] * rho + (step * step) * one_minus_rho
        wi = w[i] - step * lr
        a[i] = ai if ai >= tiny else np.float32(0.0)
        b[i] = ui if ui >= tiny else np.float32(0.0)
        w[i] = wi if abs(wi) >= tiny else np.float32(0.0)


def _adagrad_da(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """AdaGradDARule; a = grad_accum, b = grad_squared_accum. k: -lr, l2 * t * lr, l1 * t, l1 > 0 (1 or 0), tiny."""
    minus_lr, l2_t_lr, l1_t, with_l1, tiny = k[0], k[1], k[2], k[3], k[4]
    zero = np.float32(0.0)
    for i in range(w.size):
        gi = g[i]
        acc = a[i] + gi
        sq = b[i] + gi * gi
        denom = l2_t_lr + np.sqrt(sq)
        if with_l1 != 0:
            numerator = (minus_lr * np.sign(acc)) * max(abs(acc) - l1_t, zero)
        else:
            numerator = minus_lr * acc
        wi = numerator / denom
        a[i] = acc if abs(acc) >= tiny else zero
        b[i] = sq if sq >= tiny else zero
        w[i] = wi if abs(wi) >= tiny else zero


def _ftrl(w: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    """FtrlRule; a = accum, b = linear. k: lr, l1, 2 * l2, -learning_rate_power, 2 * l2_shrinkage (0: none),
    the power is 1/2 (1 or 0: Sqrt instead of Pow, as the graph), tiny."""
    lr, l1, two_l2, power, shrink, square_root, tiny = k[0], k[1], k[2], k[3], k[4], k[5], k[6]
    zero = np.float32(0.0)
    for i in range(w.size):
        wi, gi = w[i], g[i]
        if shrink > 0:
            gi = gi + wi * shrink
        new_accum = a[i] + gi * gi
        if square_root != 0:
            new_power, old_power = np.sqrt(new_accum), np.sqrt(a[i])
        else:
            new_power, old_power = new_accum**power, a[i] ** power
        sigma = (new_power - old_power) / lr
        linear = b[i] + (gi - sigma * wi)
        x = l1 * np.sign(linear) - linear
        y = new_power / lr + two_l2
        wi = x / y if abs(linear) > l1 else zero
        a[i] = new_accum if new_accum >= tiny else zero
        b[i] = linear if abs(linear) >= tiny else zero
        w[i] = wi if abs(wi) >= tiny else zero


@cache
def _compiled(kernel: Callable[..., None]) -> Callable[..., None]:
    """`kernel` compiled for flat float32 buffers, on the calling thread.

    Vectorised (AVX-512 on this machine), Adam's takes ~180 µs for the tutorial's 266,610 weights alone and
    ~220-250 µs inside a fit, where ORT's GEMMs have just pushed the moments out of the cache. One thread on purpose:
    numba's thread pools fight ONNX Runtime's spinning workers for the cores (OpenMP's, which spins by default,
    made the step 2.5x slower), and splitting the pass with a helper thread of our own (ORT's spinning stopped after
    each run) made 3-epoch fits slower in three of four alternating pairs.
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


f32 = np.float32
_NONE = np.zeros(0, np.float32)  # a state buffer the rule does not have


def _fused(
    kernel: Callable[..., None],
    slots: tuple[str, ...],
    scalars: Callable[[int, np.float32], list[np.float32]],
    buffers: tuple[str, ...] | None = None,
) -> FusedUpdate:
    """A FusedUpdate calling the compiled `kernel` with `scalars(t, lr)` (float32, TINY appended).

    `buffers` names the slot the kernel expects as its a, b and c (default: `slots` in order); a slot the rule
    does not have this time (an option left it out) is passed as an empty buffer.
    """
    compiled = _compiled(kernel)
    positions = tuple(slots.index(name) if name in slots else None for name in (buffers or slots))
    padding = (_NONE,) * (3 - len(positions))

    def step(w: np.ndarray, g: np.ndarray, state: tuple[np.ndarray, ...], t: int, lr: float) -> None:
        abc = (*(_NONE if i is None else state[i] for i in positions), *padding)
        compiled(w, g, *abc, np.array([*scalars(t, f32(lr)), FLT_MIN], np.float32))

    return FusedUpdate(slots, step)


def _sgd_update(optimizer: opt.SGD) -> FusedUpdate:
    return _fused(_sgd, (), lambda t, lr: [lr])


def _momentum_update(optimizer: opt.Momentum) -> FusedUpdate:
    momentum = f32(optimizer.momentum)
    nesterov = f32(1.0 if optimizer.use_nesterov else 0.0)
    return _fused(_momentum, ("accum",), lambda t, lr: [lr, momentum, momentum * lr, nesterov])


def _rmsprop_update(optimizer: opt.RMSProp) -> FusedUpdate:
    # RMSPropRule.slots: ms, then mom only with momentum, then mg only when centered.
    slots = ("ms", *(("mom",) if optimizer.momentum > 0 else ()), *(("mg",) if optimizer.centered else ()))
    one_minus_rho, eps, momentum = f32(1.0 - optimizer.decay), f32(optimizer.epsilon), f32(optimizer.momentum)
    return _fused(_rmsprop, slots, lambda t, lr: [lr, one_minus_rho, eps, momentum], ("ms", "mom", "mg"))


def _adagrad_update(optimizer: opt.AdaGrad) -> FusedUpdate:
    return _fused(_adagrad, ("accum",), lambda t, lr: [lr])


def _adam_update(optimizer: opt.Adam) -> FusedUpdate:
    beta1, beta2, one = f32(optimizer.beta1), f32(optimizer.beta2), f32(1.0)
    # AdamRule.prepare's scalars, with its float32 operations in its order.
    rescale = f32((1.0 - optimizer.beta1) / math.sqrt(1.0 - optimizer.beta2))
    eps = f32(optimizer.epsilon / math.sqrt(1.0 - optimizer.beta2))

    def scalars(t: int, lr: np.float32) -> list[np.float32]:
        tf = f32(t)
        alpha = (lr * rescale) * np.sqrt(one - np.power(beta2, tf)) / (one - np.power(beta1, tf))
        return [beta1, beta2, alpha, eps]

    return _fused(_adam, ("m", "v"), scalars)


def _adamax_update(optimizer: opt.Adamax) -> FusedUpdate:
    beta1, one = f32(optimizer.beta1), f32(1.0)
    one_minus_beta1, beta2, eps = f32(1.0 - optimizer.beta1), f32(optimizer.beta2), f32(optimizer.epsilon)

    def scalars(t: int, lr: np.float32) -> list[np.float32]:  # AdamaxRule.prepare
        return [lr / (one - np.power(beta1, f32(t))), one_minus_beta1, beta2, eps]

    return _fused(_adamax, ("m", "v"), scalars)


def _adadelta_update(optimizer: opt.AdaDelta) -> FusedUpdate:
    rho, one_minus_rho, eps = f32(optimizer.rho), f32(1.0 - optimizer.rho), f32(optimizer.epsilon)
    return _fused(_adadelta, ("accum", "accum_update"), lambda t, lr: [lr, rho, one_minus_rho, eps])


def _adagrad_da_update(optimizer: opt.AdaGradDA) -> FusedUpdate:
    l1, l2 = f32(optimizer.l1_strength), f32(optimizer.l2_strength)
    with_l1 = f32(1.0 if optimizer.l1_strength > 0 else 0.0)

    def scalars(t: int, lr: np.float32) -> list[np.float32]:  # AdaGradDARule.prepare
        tf = f32(t)
        return [-lr, (l2 * tf) * lr, l1 * tf, with_l1]

    return _fused(_adagrad_da, ("grad_accum", "grad_squared_accum"), scalars)


def _ftrl_update(optimizer: opt.Ftrl) -> FusedUpdate:
    l1, two_l2 = f32(optimizer.l1_regularization_strength), f32(2.0 * optimizer.l2_regularization_strength)
    power = f32(-optimizer.learning_rate_power)
    shrink = f32(2.0 * optimizer.l2_shrinkage_regularization_strength)
    square_root = f32(1.0 if optimizer.learning_rate_power == -0.5 else 0.0)
    return _fused(_ftrl, ("accum", "linear"), lambda t, lr: [lr, l1, two_l2, power, shrink, square_root])


_FUSED: dict[type[opt.Optimizer], Callable[[Any], FusedUpdate]] = {
    opt.SGD: _sgd_update,
    opt.Momentum: _momentum_update,
    opt.RMSProp: _rmsprop_update,
    opt.AdaDelta: _adadelta_update,
    opt.AdaGrad: _adagrad_update,
    opt.AdaGradDA: _adagrad_da_update,
    opt.Adam: _adam_update,
    opt.Adamax: _adamax_update,
    opt.Ftrl: _ftrl_update,
}


def supported_names() -> list[str]:
    return [cls.__name__ for cls in _FUSED]


def supports(optimizer: opt.Optimizer) -> bool:
    """Whether `optimizer` (exactly its class: a subclass may change the rule) has a fused kernel here."""
    return type(optimizer) in _FUSED


def fused_update(optimizer: opt.Optimizer) -> FusedUpdate:
    """The fused update for `optimizer`; callers check `available()` and `supports(optimizer)` first."""
    return _FUSED[type(optimizer)](optimizer)
