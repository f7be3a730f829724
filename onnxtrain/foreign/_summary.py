"""What `onnxtrain summary FILE.onnx` shows of a foreign graph: the model `from_onnx` makes of it, node by node.

A foreign graph has no layers of its own; the nodes that read its weights are what a reader takes for them (the
Gemm of `fc1.weight`, the Conv of `stem.weight`), so each such node is one row, with its output shape, the weights
it reads and whether they train by default. Nodes that read no weight are counted by op type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import onnx

from onnxtrain.errors import OnnxtrainError
from onnxtrain.foreign import _graph
from onnxtrain.foreign._layer import OnnxLayer
from onnxtrain.foreign._removed_biases import restore_removed_biases
from onnxtrain.foreign._torch_names import torch_names
from onnxtrain.layers._layer import format_shape

MAX_ROWS = 60  # a 1,000-node graph's summary stays a screen or two; the rest are counted


def print_imported(proto: onnx.ModelProto, print_fn: Callable[[str], None] = print) -> None:
    """Print the model `from_onnx(proto)` makes: its inputs and output, each node that reads weights, the
    parameters that train by default; or why `from_onnx` cannot import it (the error's first line)."""
    try:
        layer = OnnxLayer(proto, prefix_names=False, name="onnx_model", caller="from_onnx")
    except OnnxtrainError as e:
        print_fn(f"As from_onnx imports it: it cannot ({type(e).__name__}: {str(e).splitlines()[0]})")
        return
    inputs = ", ".join(f"{v.name} {format_shape(s)}" for v, s in zip(layer.data_inputs, layer.data_shapes, strict=True))
    output = layer.graph.graph.output[0].name
    shape = layer.compute_output_shape(layer.data_shapes if layer.multi_input else layer.data_shapes[0])
    print_fn(f"As from_onnx imports it: {inputs} -> OnnxLayer -> {output} {format_shape(shape)}")
    types = _graph.infer(layer.graph)
    frozen = layer.non_trainable
    held = torch_names(layer.graph.graph, set(layer.weight_shapes))  # `val_93` holds `enc.linear1.weight`
    restored = {t.name for t in restore_removed_biases(proto, "from_onnx", warn=False).graph.initializer}
    restored -= {t.name for t in proto.graph.initializer}  # zero biases the exporter's optimizer removed
    rows: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    others: Counter[str] = Counter()
    for node in layer.graph.graph.node:
        weights = [name for name in node.input if name in layer.weight_shapes]
        if not weights:
            if node.op_type != "Constant":
                others[node.op_type] += 1
            continue
        count = sum(_size(layer.weight_shapes[w]) for w in weights if w not in seen)
        shown = ", ".join(
            f"{w}{_held(w, held)} {list(layer.weight_shapes[w])}{_notes(w, frozen, seen, restored)}" for w in weights
        )
        seen.update(weights)
        title = f"{_cell(node.name or node.output[0], 40)} ({node.op_type})"
        rows.append((title, _output_shape(types.get(node.output[0])), _cell(shown, 80), f"{count:,}"))
    widths = [max([len(r[i]) for r in rows[:MAX_ROWS]] + [len(h)]) for i, h in enumerate(_HEADER[:3])]
    line = "  ".join([*(h.ljust(w) for h, w in zip(_HEADER[:3], widths, strict=True)), _HEADER[3]])
    print_fn(line)
    print_fn("-" * len(line))
    for row in rows[:MAX_ROWS]:
        print_fn("  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3]]))
    if len(rows) > MAX_ROWS:
        print_fn(f"... and {len(rows) - MAX_ROWS} more nodes that read weights")
    total = sum(_size(s) for s in layer.weight_shapes.values())
    trainable = sum(_size(s) for name, s in layer.weight_shapes.items() if name not in frozen)
    print_fn(
        f"Parameters: {total:,} in {len(layer.weight_shapes)} weights (float initializers): {trainable:,} train by "
        f"default, {total - trainable:,} frozen{_why_frozen(layer)}; from_onnx(trainable=..., frozen=...) chooses"
    )
    if restored:
        print_fn(
            f"Restored: {', '.join(sorted(restored))} (zero biases the exporter's optimizer removed; they train as "
            "torch's do)"
        )
    if others:
        print_fn(f"Nodes without weights: {', '.join(f'{op} {n}' for op, n in sorted(others.items()))}")


_HEADER = ("Node (op)", "Output Shape", "Weights", "Param #")


def _why_frozen(layer: OnnxLayer) -> str:
    """What the default import freezes, as found: " (4 BatchNormalization statistics, 3 exporter constants:
    1-element or non-finite)", or nothing where it freezes nothing."""
    names = set(layer.weight_shapes)
    statistics = {n for node in layer.graph.graph.node if node.op_type == "BatchNormalization" for n in node.input[3:5]}
    constants = len(layer.exporter_constants() & layer.non_trainable)
    counts = [
        (len(statistics & names & layer.non_trainable), "BatchNormalization statistic", ""),
        (constants, "exporter constant", ": 1-element or non-finite"),
    ]
    parts = [f"{n:,} {what}{'' if n == 1 else 's'}{how}" for n, what, how in counts if n]
    return f" ({', '.join(parts)})" if parts else ""


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _held(weight: str, held: dict[str, str]) -> str:
    return f" (= {held[weight]})" if weight in held else ""


def _notes(weight: str, frozen: set[str], seen: set[str], restored: set[str]) -> str:
    notes = [("restored", restored), ("frozen", frozen), ("shared", seen)]
    return "".join(f" ({note})" for note, names in notes if weight in names)


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def _output_shape(known: onnx.TypeProto | None) -> str:
    if known is None or not known.tensor_type.HasField("shape"):
        return "?"
    dims = known.tensor_type.shape.dim
    # The batch is None, as in a layer's summary; a size shape inference could not tie to anything (unk__0) is "?".
    shown = [
        "None" if d.dim_param == _graph.BATCH else str(d.dim_value) if d.HasField("dim_value") else "?" for d in dims
    ]
    return f"[{', '.join(shown)}]"
