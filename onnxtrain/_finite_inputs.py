"""Finiteness of a model's float32 inputs: the one-pass screen that `predict` pays for on every call (`all_finite`)
and the refusal that names the first value that is not finite as the user gave it (`refuse_non_finite`)."""

from __future__ import annotations

import math

import numpy as np

from onnxtrain.errors import InvalidArgumentError


def all_finite(x: np.ndarray) -> bool:
    """Whether every value of C-contiguous float32 `x` is finite, in one pass over it.

    Row sums (einsum's own SIMD loop): a NaN or an infinity makes its row's sum NaN or infinite. A row of finite
    values whose sum overflows makes this screen fail too; the exact element check then decides. Faster than min()
    and max(), which matters for every `predict` call. Not a BLAS matrix-vector product: faster alone, but
    OpenBLAS's threads then spin on the cores ONNX Runtime needs next (docs/measurements.md).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        sums = np.einsum("ij->i", x.reshape(len(x), -1))
    return bool(np.isfinite(sums).all()) or bool(np.isfinite(x).all())


def refuse_non_finite(x: np.ndarray, given: np.ndarray, argument: str, input_scale: float = 1.0) -> None:
    """Raise for the first value of float32 `x` that is not finite, as `given` (what `x` was converted from:
    a float64 array, or integers times `input_scale`) holds it: NaN and infinities, or a finite value beyond
    float32's range. Returns when every value is finite.

    Raises:
        InvalidArgumentError: naming `argument`, the first offending index and its value as given.
    """
    bad = np.flatnonzero(~np.isfinite(x))
    if not len(bad):
        return
    index = np.unravel_index(int(bad[0]), x.shape)
    value = given[index].item()
    where = f"{argument}[{', '.join(map(str, index))}]={value!r}"
    if math.isfinite(value):  # finite as given: beyond float32's range, or scaled beyond it
        scaled = f" times input_scale={input_scale!r}" if given.dtype.kind in "iub" and input_scale != 1.0 else ""
        raise InvalidArgumentError(
            f"{argument} expects values within float32's range (|x| <= 3.4e38), which the model computes in. "
            f"Received: {where}{scaled}"
        )
    raise InvalidArgumentError(f"{argument} expects finite values. Received: {where}")
