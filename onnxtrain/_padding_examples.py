"""Examples that are padding only: every id 0 in an input an `Embedding(mask_zero=True)` reads, or every step equal
to the `mask_value` of a `Masking` that reads an input. Their every position is masked, so a layer that averages
over the unmasked positions (GlobalAveragePooling1D) divides by zero for them and gives NaN, as Keras' does: the
message of a loss that became NaN names them (`padding_note`), looked for only then."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnxtrain.functional import Functional
from onnxtrain.layers import Embedding, Masking

_NAMED = 5  # examples named in a message; the rest are counted


def padding_values(graph: Functional) -> list[float | None]:
    """Per input of `graph`, in order: the value that marks padding where a masking layer reads the input directly
    (0 for an Embedding(mask_zero=True), a Masking's `mask_value`), else None. A nested Functional (a Model called
    as a layer) is followed to the layers its own inputs feed."""
    found: list[float | None] = [None] * len(graph.inputs)
    position = {id(x): i for i, x in enumerate(graph.inputs)}
    for node in graph._nodes[len(graph.inputs) :]:
        if isinstance(node.layer, Embedding) and node.layer.mask_zero and id(node.inputs[0]) in position:
            found[position[id(node.inputs[0])]] = 0.0
        elif isinstance(node.layer, Masking) and id(node.inputs[0]) in position:
            found[position[id(node.inputs[0])]] = float(node.layer.mask_value)
        elif isinstance(node.layer, Functional):
            for x, inner in zip(node.inputs, padding_values(node.layer), strict=True):
                if inner is not None and id(x) in position:
                    found[position[id(x)]] = inner
    return found


def padding_only_rows(graph: Functional, arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The rows of a batch (`arrays`: one per input of `graph`) that are padding only in some input that a masking
    layer reads (`padding_values`), in order."""
    rows = np.zeros(len(arrays[0]) if arrays else 0, bool)
    for array, value in zip(arrays, padding_values(graph), strict=True):
        if value is not None and len(array):
            rows |= np.all(array.reshape(len(array), -1) == value, axis=1)
    return np.flatnonzero(rows)


def padding_note(graph: Functional, arrays: Sequence[np.ndarray], examples: np.ndarray | None = None) -> str:
    """For the message of a loss that became NaN on a batch: the examples of it that are padding only, and why they
    give NaN; "" where there are none. `examples`: each row's index in the data (fit's x), where known; else the
    rows are named by their place in the batch."""
    rows = padding_only_rows(graph, arrays)
    if not len(rows):
        return ""
    where = [int(i) for i in (rows if examples is None else np.asarray(examples)[rows])]
    named = ", ".join(f"x[{i}]" if examples is not None else f"row {i}" for i in where[:_NAMED])
    more = f" and {len(where) - _NAMED} more" if len(where) > _NAMED else ""
    count = f"{len(where)} example{'s' if len(where) > 1 else ''} of the batch {'are' if len(where) > 1 else 'is'}"
    return (
        f" {count} padding only (every position masked, by Embedding(mask_zero=True) or Masking): {named}{more}. "
        "A layer that averages over the unmasked positions (GlobalAveragePooling1D) divides by zero for such an "
        "example and gives NaN, as Keras does: drop these examples, or keep a token in each (an out-of-vocabulary "
        "id, say)."
    )
