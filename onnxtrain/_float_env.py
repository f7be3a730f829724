"""Run ONNX Runtime with float32 subnormals flushed to zero, without leaking that mode into the user's code.

Late in training, Adam's second moments and many gradients become subnormal, and x86 arithmetic on subnormals is
many times slower (the tutorial's epochs took 1.5-2x longer by epoch 3). ONNX Runtime's
"session.set_denormal_as_zero" flushes them on its worker threads, but it also switches the thread that creates
the first such session into flush-to-zero mode for good (once per process), which would silently change the
user's own numpy results. So we give that thread its original mode back after creating sessions, and switch the
calling thread into flush-to-zero (FTZ+DAZ on x86-64, FZ on AArch64) only around ORT calls, since it computes its
share of every parallel operator. On other platforms the calling thread keeps its mode.

Scopes nest, so a loop of our own (fit's epoch, evaluate, predict) holds one around all its steps instead of
switching twice per step; user code called from inside such a loop (callbacks) runs `suspended`, in its own mode.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import sys
import threading
from collections.abc import Iterator
from functools import cache

_FENV_BYTES = 64  # larger than fenv_t on every glibc/musl target
# Where glibc's fenv_t keeps the register with the flush-to-zero bits, and the bits to set.
_FLUSH_BITS = {
    "x86_64": (28, 0x8040),  # MXCSR after the 28-byte x87 environment: FTZ (bit 15) | DAZ (bit 6)
    "amd64": (28, 0x8040),
    "aarch64": (0, 1 << 24),  # FPCR first: FZ (bit 24)
    "arm64": (0, 1 << 24),
}


@cache
def _libm() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m")
    try:
        libm = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libm if libm is not None and hasattr(libm, "fegetenv") and hasattr(libm, "fesetenv") else None


def _get() -> ctypes.Array[ctypes.c_char] | None:
    libm = _libm()
    if libm is None:
        return None
    env = ctypes.create_string_buffer(_FENV_BYTES)
    libm.fegetenv(env)
    return env


def _set(env: ctypes.Array[ctypes.c_char] | None) -> None:
    libm = _libm()
    if libm is not None and env is not None:
        libm.fesetenv(env)


def _flush_register() -> tuple[int, int] | None:
    """(byte offset in fenv_t, bits) of the flush-to-zero control on this platform, or None."""
    return _FLUSH_BITS.get(platform.machine().lower()) if sys.platform.startswith("linux") else None


class _ThreadMode(threading.local):
    """Per thread: how many flush scopes are open, and the mode to give back when the outermost one closes."""

    def __init__(self) -> None:
        self.depth = 0
        self.caller = ctypes.create_string_buffer(_FENV_BYTES)
        self.flushed = ctypes.create_string_buffer(_FENV_BYTES)
        spec = _flush_register() if _libm() is not None else None
        self.register = ctypes.c_uint32.from_buffer(self.flushed, spec[0]) if spec else None
        self.bits = spec[1] if spec else 0


_thread_mode = _ThreadMode()


class _FlushScope:
    """The calling thread flushes subnormals inside. Scopes nest: only the outermost switches the mode, so a loop
    can hold one scope around many steps whose own scopes then cost a counter (this runs around every step).
    """

    __slots__ = ()

    def __enter__(self) -> None:
        mode = _thread_mode
        mode.depth += 1
        if mode.depth == 1 and mode.register is not None:
            libm = _libm()
            assert libm is not None  # a register is only found where libm is
            libm.fegetenv(mode.caller)
            ctypes.memmove(mode.flushed, mode.caller, _FENV_BYTES)
            mode.register.value |= mode.bits
            libm.fesetenv(mode.flushed)

    def __exit__(self, *exc_info: object) -> None:
        mode = _thread_mode
        mode.depth -= 1
        if mode.depth == 0 and mode.register is not None:
            libm = _libm()
            assert libm is not None
            libm.fesetenv(mode.caller)


_SCOPE = _FlushScope()


class _Suspension:
    """Inside, the calling thread has its own mode back, as if no flush scope were open (user code runs here)."""

    __slots__ = ("_depth",)

    def __enter__(self) -> None:
        mode = _thread_mode
        self._depth, mode.depth = mode.depth, 0
        if self._depth and mode.register is not None:
            libm = _libm()
            assert libm is not None
            libm.fesetenv(mode.caller)

    def __exit__(self, *exc_info: object) -> None:
        mode = _thread_mode
        if self._depth and mode.register is not None:
            libm = _libm()
            assert libm is not None
            # Scopes opened and closed inside refreshed `caller` and `flushed` from this same caller mode.
            libm.fesetenv(mode.flushed)
        mode.depth = self._depth


class FlushToZero:
    """Keeps ORT's flush-to-zero mode inside ORT calls on the calling thread.

    Example:
        flush = FlushToZero()
        with flush.creating():
            session = onnxruntime.InferenceSession(model, options_with_denormal_as_zero)
        with flush.active():
            session.run(...)
    """

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Create sessions inside: whatever mode ORT leaves on this thread, the caller's is restored."""
        caller = _get()
        try:
            yield
        finally:
            _set(caller)

    def active(self) -> contextlib.AbstractContextManager[None]:
        """Run ORT calls inside: this thread flushes subnormals like ORT's own threads, then goes back.

        Hold one scope around a run of steps with no user code between them; the steps' own scopes nest.
        """
        return _SCOPE

    def suspended(self) -> contextlib.AbstractContextManager[None]:
        """Give the calling thread its own mode back inside an open scope: wrap user code (callbacks) in it."""
        return _Suspension()
