"""The per-example shape of a layer's input or output, and how summaries and errors print it."""

from __future__ import annotations

Shape = tuple[int, ...]  # per-example shape: the batch dimension is never included


def format_shape(shape: Shape) -> str:
    """KotlinDL's way of printing a batched shape: [None, 28, 28, 1]."""
    return "[" + ", ".join(["None", *map(str, shape)]) + "]"
