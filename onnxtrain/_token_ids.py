"""Token ids: which model inputs an Embedding reads straight from (by the layers, or by an exported or imported
graph's Gather of the input, cast to integers or already integers: torch's nn.Embedding exported), and the check
that refuses ids outside [0, input_dim) or fractional ones before ONNX Runtime runs. ONNX Gather fails on an id
past the table with an opaque error and reads row input_dim - k for -k; the layer's Cast truncates 1.5 to 1. Keras
refuses ids out of range; fractional ids are refused as fractional class labels are (`losses`). Token ids are
never scaled by the model's input_scale (`arrays.prepare_x`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import onnx

from onnxtrain.errors import InvalidArgumentError
from onnxtrain.functional import Functional
from onnxtrain.layers import Embedding, OnnxLayer

_BLOCK = 1 << 16
"""Values checked at a time: min, max and the fraction test read a block from cache, the array once from memory."""


@dataclass(frozen=True)
class TokenIds:
    """What a model input that feeds Embedding layers accepts: whole numbers in [0, input_dim).

    Attributes:
        input_dim: the rows of the smallest table the input feeds.
        layer: that table's layer, for messages.
    """

    input_dim: int
    layer: str


def token_id_inputs(graph: Functional) -> list[TokenIds | None]:
    """Per input of `graph`, in order: the ids its Embedding layers accept, or None when it feeds none directly.

    An Embedding called on the output of another layer (a Reshape, a Lambda's cast, ...) is not traced back to an
    input: its ids are computed in the graph, and ONNX Gather alone sees them. A nested Functional (a Model called
    as a layer) is followed to the Embedding layers its own inputs feed.
    """
    found: list[list[TokenIds]] = [[] for _ in graph.inputs]
    position = {id(x): i for i, x in enumerate(graph.inputs)}
    for node in graph._nodes[len(graph.inputs) :]:
        if isinstance(node.layer, Embedding) and id(node.inputs[0]) in position:
            found[position[id(node.inputs[0])]].append(TokenIds(node.layer.input_dim, str(node.layer.name)))
        elif isinstance(node.layer, OnnxLayer):  # an imported graph's Gather of an embedding table
            for x, inner in zip(node.inputs, _onnx_layer_token_ids(node.layer), strict=True):
                if inner is not None and id(x) in position:
                    found[position[id(x)]].append(inner)
        elif isinstance(node.layer, Functional):
            for x, inner in zip(node.inputs, token_id_inputs(node.layer), strict=True):
                if inner is not None and id(x) in position:
                    found[position[id(x)]].append(inner)
    return [min(ids, key=lambda t: t.input_dim) if ids else None for ids in found]


def _onnx_layer_token_ids(layer: OnnxLayer) -> list[TokenIds | None]:
    """Per data input of an imported graph: the ids its Gathers of a table (a weight, or a constant) accept, as
    torch exports nn.Embedding (`Gather(emb.weight, ids)`). ONNX Gather would read row n - k for -k, where
    torch's nn.Embedding refuses negative ids; and fail opaquely past the table."""
    rows = {name: shape[0] for name, shape in layer.weight_shapes.items() if shape}
    rows |= {tensor.name: int(tensor.dims[0]) for tensor in layer.graph.graph.initializer if tensor.dims}
    return [exported_token_ids(layer.graph.graph, value.name, rows) for value in layer.data_inputs]


def exported_token_ids(graph: onnx.GraphProto, input_name: str, rows: dict[str, int] | None = None) -> TokenIds | None:
    """The ids graph input `input_name` accepts when it gathers rows of a table, as an exported Embedding reads
    it: `Gather(table, ids, axis=0)` of the input itself when it holds integers, or of `Cast(to=INT64)` of it;
    None when it does not. `rows`: the tables a Gather may read, by name (default: the graph's initializers)."""
    tables = rows if rows is not None else {t.name: int(t.dims[0]) for t in graph.initializer if t.dims}
    integers = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    casts = {
        node.output[0]
        for node in graph.node
        if node.op_type == "Cast"
        and list(node.input) == [input_name]
        and any(a.name == "to" and a.i in integers for a in node.attribute)
    }
    if any(v.name == input_name and v.type.tensor_type.elem_type in integers for v in graph.input):
        casts.add(input_name)
    found = [
        TokenIds(tables[node.input[0]], node.input[0].rsplit(".", 1)[0])  # "embedding_1.embeddings", "emb.weight"
        for node in graph.node
        if node.op_type == "Gather"
        and len(node.input) == 2
        and node.input[1] in casts
        and node.input[0] in tables
        and all(a.i == 0 for a in node.attribute if a.name == "axis")
    ]
    return min(found, key=lambda t: t.input_dim) if found else None


def check_token_ids(x: np.ndarray, ids: TokenIds, argument: str) -> None:
    """Refuse `x` (C-contiguous: float32, as `arrays.prepare_x` makes it for a float input, or the integers of an
    integer input) unless every value is a whole number in [0, ids.input_dim), in one pass over it.

    Raises:
        InvalidArgumentError: naming the first offending position and value, the range and the layer.
    """
    flat = x.reshape(-1)
    if x.dtype.kind in "iu":  # whole already: the range alone
        if flat.size and (flat.min() < 0 or flat.max() > ids.input_dim - 1):
            refuse_token_ids(x, ids, argument)
        return
    high = np.float32(ids.input_dim - 1)
    scratch = np.empty(min(_BLOCK, flat.size), np.float32)
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        fraction = scratch[: len(block)]
        np.subtract(block, np.trunc(block, out=fraction), out=fraction)
        if block.min() < 0 or block.max() > high or fraction.any():
            refuse_token_ids(x, ids, argument)


def refuse_token_ids(x: np.ndarray, ids: TokenIds, argument: str) -> NoReturn:
    """The error for `x` (any float or integer array), found invalid: its first invalid id (the slow path, once).

    Raises:
        InvalidArgumentError: always.
    """
    with np.errstate(invalid="ignore"):  # NaN is invalid: its comparisons are False, trunc(NaN) != NaN
        bad = (x < 0) | (x > ids.input_dim - 1) | (np.trunc(x) != x)
    index = np.unravel_index(int(np.flatnonzero(bad)[0]), x.shape)
    value = np.format_float_positional(x[index], trim="-") if x.dtype.kind == "f" else str(x[index])
    count = int(np.count_nonzero(bad))
    others = f" ({count} invalid ids in all)" if count > 1 else ""
    raise InvalidArgumentError(
        f"{argument} expects integer token ids in [0, {ids.input_dim - 1}] for Embedding layer {ids.layer!r} "
        f"(input_dim={ids.input_dim}). Received: {argument}[{', '.join(map(str, index))}]={value}{others}"
    )
