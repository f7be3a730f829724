"""set_weights' argument as float32 arrays by parameter name, each checked against the parameter it replaces."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from onnxtrain.errors import InvalidArgumentError, InvalidTypeError


def weight_arrays(
    weights: Mapping[str, Any] | Sequence[Any], current: Mapping[str, np.ndarray], constants: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """`weights`, a mapping by parameter name (any subset of `current`) or a list of every parameter in `current`'s
    order, as {name: float32 array} of the shapes in `current`; the names in `constants` may hold NaN or inf.

    Raises:
        InvalidTypeError: a list of names (a get_weights() dict iterated), neither a mapping nor a list, or an
            array of another dtype than float or integer.
        InvalidArgumentError: a list of another length, unknown names, other shapes, non-finite values.
    """
    if isinstance(weights, list | tuple):
        if any(isinstance(value, str) for value in weights):  # [w * 0 for w in model.get_weights()]: its keys
            raise InvalidTypeError(
                "set_weights with a list expects arrays, in get_weights() order. Received: strings "
                f"({weights[:3]!r}{'...' if len(weights) > 3 else ''}). get_weights() returns a dict "
                "{name: array}, so iterating it gives the names: pass a dict, e.g. "
                "{name: w * 0 for name, w in model.get_weights().items()}, or list(model.get_weights().values())."
            )
        if len(weights) != len(current):
            raise InvalidArgumentError(
                f"set_weights with a list expects one array per parameter, in get_weights() order: "
                f"{len(current)} ({list(current)}). Received: {len(weights)} arrays"
            )
        weights = dict(zip(current, weights, strict=True))
    if not isinstance(weights, Mapping):
        raise InvalidTypeError(
            "set_weights expects a mapping of parameter name to array, or a list of arrays in get_weights() "
            f"order. Received: {type(weights).__name__}"
        )
    unknown = sorted(set(weights) - set(current))
    if unknown:
        raise InvalidArgumentError(f"set_weights got unknown parameter names {unknown}. Expected: {sorted(current)}")
    return {
        name: weight_array(name, value, current[name].shape, finite=name not in constants)
        for name, value in weights.items()
    }


def weight_array(
    name: str, value: Any, shape: tuple[int, ...], caller: str = "set_weights", finite: bool = True
) -> np.ndarray:
    """`value` as the float32 array of parameter `name` (of `shape`), or one clear error that `caller` starts.

    Raises:
        InvalidTypeError: not a float or integer array.
        InvalidArgumentError: another shape (with `transpose_hint`), or non-finite values.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise InvalidTypeError(f"{caller}: {name} expects a float or integer array. Received: dtype={array.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32's range become inf, refused below
        array = array.astype(np.float32)
    if array.shape != shape:
        hint = recurrent_layout_hint(name, shape, array.shape) or transpose_hint(shape, array.shape)
        raise InvalidArgumentError(f"{caller}: {name} expects shape {shape}. Received: {array.shape}{hint}")
    bad = np.argwhere(~np.isfinite(array) if finite else np.zeros(array.shape, bool))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise InvalidArgumentError(
            f"{caller}: {name} expects finite float32 values. Received: {name}{list(where)}={array[where]} "
            f"({len(bad)} non-finite in all; float64 values beyond float32's range become inf)"
        )
    return array


def recurrent_layout_hint(name: str, expected: tuple[int, ...], received: tuple[int, ...]) -> str:
    """Where `received` is the shape Keras gives a recurrent layer's weight `name` (LSTM, GRU, SimpleRNN) whose
    expected shape is ONNX's: that the layout is ONNX's with the gate blocks reordered, so a transpose alone would
    compute something else, and how to convert Keras' weights; "" otherwise."""
    expected, received = tuple(expected), tuple(received)
    local = name.rpartition(".")[2]
    matrix = local in ("kernel", "recurrent_kernel") and len(expected) == 3 and received == expected[:0:-1]
    bias = (
        local == "bias"
        and len(expected) == 2
        and expected[0] == 1
        and received in ((expected[1],), (2, expected[1] // 2))
    )
    if not (matrix or bias) or expected[0] != 1:
        return ""
    layer = name.partition(".")[0]
    return (
        ". If it is a Keras LSTM, GRU or SimpleRNN's weight: this layer stores ONNX's layout ([1, gates * units, "
        "inputs] kernels, a [1, ...] bias) with the gate blocks in ONNX's order (LSTM i, o, f, c where Keras has i, "
        "f, c, o), so for an LSTM a transpose alone gives the shape but mixes up the gates. Convert Keras' "
        f"get_weights() of the layer: layer = model.get_layer({layer!r}); "
        'layer.set_weights(layer.from_keras_weights(keras_weights)) (docs/layers.md, "Recurrent layers: weights '
        "and Keras'\")"
    )


def transpose_hint(expected: tuple[int, ...], received: tuple[int, ...]) -> str:
    """Where `received` is `expected` with its axes in another order (a weight in another framework's layout): the
    transpose that maps it, for an error message; "" otherwise. A convolution kernel in Keras' (*window, in,
    filters) layout is onnxtrain's (filters, in, *window) by transpose(n-1, n-2, 0, ..., n-3), which is preferred
    when it fits."""
    expected, received = tuple(expected), tuple(received)
    if expected == received or sorted(expected) != sorted(received):
        return ""
    rank = len(received)
    keras_kernel = (rank - 1, rank - 2, *range(rank - 2))
    if rank >= 3 and tuple(received[i] for i in keras_kernel) == expected:
        order, like = keras_kernel, "as a Keras convolution kernel (*window, in, filters) needs; "
    else:
        free = list(range(rank))
        order = tuple(free.pop(next(j for j, i in enumerate(free) if received[i] == size)) for size in expected)
        like = "as a PyTorch Linear weight (out, in) needs; Keras' Dense kernel needs none; " if rank == 2 else ""
    return (
        f". Its axes are the expected ones in another order: if it is this weight in another layout, "
        f'value.transpose{order} gives the expected one ({like}docs/layers.md, "Weights: order and layout")'
    )
