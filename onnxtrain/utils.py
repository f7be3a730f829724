"""Keras' data helpers a tutorial reaches for before `fit`: `to_categorical` (one-hot rows from class indices) and
`pad_sequences` (token id lists to one length), with Keras 3's semantics and onnxtrain's dtypes.

Example:
    >>> to_categorical([0, 2], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [0, 4]], dtype=int32)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from onnxtrain._checks import check_positive_int
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["pad_sequences", "to_categorical"]


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Keras' `to_categorical`: class indices to one-hot rows, float32 (what the models compute in; Keras' numpy
    version gives float64). Indices of shape (N,) or (N, 1) give (N, num_classes); any other shape gains a last axis.

    Args:
        x: integral class indices in [0, num_classes).
        num_classes: the number of classes; None takes the largest index + 1.

    Raises:
        InvalidArgumentError: an index that is negative, not integral, or not below `num_classes`.
    """
    indices = np.asarray(x)
    if indices.dtype.kind not in "iub" and not (
        indices.dtype.kind == "f" and np.all(np.isfinite(indices)) and np.all(indices == np.round(indices))
    ):
        raise InvalidArgumentError(
            f"to_categorical(x) expects integral class indices. Received: dtype {indices.dtype}"
            + (f", e.g. {indices.flat[0]!r}" if indices.size else "")
        )
    indices = indices.astype(np.int64)
    shape = indices.shape[:-1] if indices.ndim > 1 and indices.shape[-1] == 1 else indices.shape
    flat = indices.reshape(-1)
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    else:
        num_classes = check_positive_int("num_classes", num_classes)
    bad = np.flatnonzero((flat < 0) | (flat >= num_classes))
    if bad.size:
        raise InvalidArgumentError(
            f"to_categorical(x, num_classes={num_classes}) expects class indices in [0, {num_classes - 1}]. "
            f"Received: {int(flat[bad[0]])} at flat position {int(bad[0])} ({bad.size} out of range)"
        )
    one_hot = np.zeros((flat.size, num_classes), np.float32)
    one_hot[np.arange(flat.size), flat] = 1.0
    return one_hot.reshape(*shape, num_classes)


def pad_sequences(
    sequences: Iterable[Any],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0.0,
) -> np.ndarray:
    """Keras' `pad_sequences`: a list of sequences (token ids, or per-step feature vectors) to one array of shape
    (len(sequences), maxlen, *step shape), padded with `value` and cut to `maxlen`, both before the data ("pre",
    Keras' default) or after it ("post"). Feed the result to `Input(shape=(maxlen,), dtype="int64")`; with
    `Embedding(..., mask_zero=True)` the padding id 0 is masked.

    Args:
        sequences: the sequences, each a list or array.
        maxlen: the length of every row; None takes the longest sequence's.
        dtype: the array's dtype ("int32", as Keras; "int64" or "float32" work too).
        padding: "pre" or "post": where the padding goes.
        truncating: "pre" or "post": which end of a longer sequence is cut off.
        value: the padding value.

    Raises:
        InvalidArgumentError: a bad `padding`/`truncating`/`maxlen`, or sequences whose steps differ in shape.
        InvalidTypeError: `sequences` is not a list of sequences.
    """
    for argument, given in (("padding", padding), ("truncating", truncating)):
        if given not in ("pre", "post"):
            raise InvalidArgumentError(f'pad_sequences({argument}=...) expects "pre" or "post". Received: {given!r}')
    if isinstance(sequences, str | bytes) or not isinstance(sequences, Iterable):
        raise InvalidTypeError(
            f"pad_sequences(sequences) expects a list of sequences (lists or arrays of token ids). Received: "
            f"{type(sequences).__name__}"
        )
    rows = []
    for index, sequence in enumerate(sequences):
        if isinstance(sequence, str | bytes) or not isinstance(sequence, Iterable | np.ndarray):
            raise InvalidTypeError(
                f"pad_sequences(sequences) expects each sequence to be a list or array. Received: "
                f"sequences[{index}] of type {type(sequence).__name__}"
            )
        rows.append(np.asarray(list(sequence) if not isinstance(sequence, np.ndarray) else sequence))
    step_shape = next((row.shape[1:] for row in rows if len(row)), ())
    for index, row in enumerate(rows):
        if len(row) and row.shape[1:] != step_shape:
            raise InvalidArgumentError(
                f"pad_sequences(sequences) expects every step of every sequence to have one shape. Received: steps "
                f"of shape {step_shape} in the first non-empty sequence and {row.shape[1:]} in sequences[{index}]"
            )
    if maxlen is None:
        maxlen = max((len(row) for row in rows), default=0)
    else:
        maxlen = check_positive_int("maxlen", maxlen)
    padded = np.full((len(rows), maxlen, *step_shape), value, dtype=np.dtype(dtype))
    for index, row in enumerate(rows):
        if not len(row) or not maxlen:
            continue
        kept = row[-maxlen:] if truncating == "pre" else row[:maxlen]
        if padding == "post":
            padded[index, : len(kept)] = kept
        else:
            padded[index, -len(kept) :] = kept
    return padded
