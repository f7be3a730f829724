"""KotlinDL's model summary table: Layer (type) | Output Shape | Param #, then parameter totals; a functional
Model's adds Keras' "Connected to" column (each call's inputs, `layer[call index]`), Keras' `show_trainable=True`
a "Trainable" column (Y, N, or - for a layer without weights), and Keras' `expand_nested=True` the rows of each
nested model's layers under its own, indented (`expanded`)."""

from __future__ import annotations

from collections.abc import Sequence

from onnxtrain import emit
from onnxtrain.functional import Functional, SummaryRow
from onnxtrain.layers import Layer, format_shape
from onnxtrain.layers._core import dtype_note
from onnxtrain.losses import Loss

WIDTHS = (39, 26, 13)
CONNECTED_WIDTHS = (*WIDTHS, 30)
TRAINABLE_WIDTH = 11
LOGITS_MARK = "[linear (logits)]"


def summary_table(
    model_type: str,
    layers: Sequence[Layer],
    params: tuple[int, int],
    loss: Loss | None = None,
    show_trainable: bool = False,
    expand_nested: bool = False,
) -> str:
    """The table of a model of type `model_type` ("Sequential (sequential)"), its `layers` and its (trainable,
    frozen) parameter counts `params`. With the compiled `loss`, a last layer whose activation gives way to
    logits (a Dense left at its default under a loss on logits, itself or inside a last TimeDistributed or nested
    model, see `emit.graph_layers`) is marked "[linear (logits)]", and so are the nested layers the rule reaches
    where `expand_nested` shows them. `show_trainable` adds Keras' "Trainable" column; `expand_nested` the rows of
    a nested model's layers (`expanded`)."""
    widths = (*WIDTHS, TRAINABLE_WIDTH) if show_trainable else WIDTHS
    rule = "=" * sum(widths)
    thin = "_" * sum(widths)
    lines = [
        rule,
        f"Model type: {model_type}",
        thin,
        _row(widths, "Layer (type)", "Output Shape", "Param #", *(["Trainable"] if show_trainable else [])),
        rule,
    ]
    rows = [_layer_row(layer) for layer in layers]
    shown, shown_layers = expanded(rows, layers) if expand_nested else (rows, list(layers))
    linear = _emitted_linear({id(layers[-1]): loss} if layers else {}, layers)
    for i, ((label, shape, count, _), layer) in enumerate(zip(shown, shown_layers, strict=True)):
        if i:
            lines.append(thin)
        if id(layer) in linear:
            label = _marked(label, widths[0])
        trains = [_trains(layer)] if show_trainable else []
        lines.append(_row(widths, label, shape, count, *trains))
    return "\n".join(line.rstrip() for line in [*lines, *_totals(params, rule)])


def connected_summary_table(
    model_type: str,
    rows: Sequence[SummaryRow],
    params: tuple[int, int],
    loss: Loss | None,
    graph: Functional,
    show_trainable: bool = False,
    expand_nested: bool = False,
) -> str:
    """`summary_table` of a functional model, from `Functional.summary_rows`, with Keras' "Connected to" column: a
    layer called several times (shared) lists the inputs of each call, one per line. Each output layer is marked
    as `summary_table` marks the last one, by its own loss. `show_trainable` adds Keras' "Trainable" column;
    `expand_nested` the rows of a nested model's layers (`expanded`)."""
    widths = (*CONNECTED_WIDTHS, TRAINABLE_WIDTH) if show_trainable else CONNECTED_WIDTHS
    rule = "=" * sum(widths)
    thin = "_" * sum(widths)
    lines = [
        rule,
        f"Model type: {model_type}",
        thin,
        _row(
            widths,
            "Layer (type)",
            "Output Shape",
            "Param #",
            "Connected to",
            *(["Trainable"] if show_trainable else []),
        ),
        rule,
    ]
    output_losses = {id(y.layer): own for y, own in zip(graph.outputs, emit.output_losses(graph, loss), strict=True)}
    linear = _emitted_linear(output_losses, graph.layers)
    shown, layers = expanded(rows, graph.layers) if expand_nested else (list(rows), list(graph.layers))
    for i, ((label, shape, count, connected), layer) in enumerate(zip(shown, layers, strict=True)):
        if i:
            lines.append(thin)
        if id(layer) in linear:
            label = _marked(label, widths[0])
        reads = connected.split(", ") if connected else [""]
        trains = [_trains(layer)] if show_trainable else []
        lines.append(_row(widths, label, shape, count, reads[0], *trains))
        lines += [_row(widths, "", "", "", read, *([""] if show_trainable else [])) for read in reads[1:]]
    return "\n".join(line.rstrip() for line in [*lines, *_totals(params, rule)])


def expanded(
    rows: Sequence[SummaryRow], layers: Sequence[Layer], depth: int = 0
) -> tuple[list[SummaryRow], list[Layer]]:
    """Keras' `summary(expand_nested=True)`: `rows` (one per layer of `layers`), each nested model's followed by
    the rows of its own layers (recursively), labelled `└ name(Type)` and indented by depth, with no "Connected
    to" (as Keras shows them); returns the rows and the layer of each."""
    indent = " " * 3 * depth + "└ " if depth else ""
    shown: list[SummaryRow] = []
    shown_layers: list[Layer] = []
    for (label, shape, count, connected), layer in zip(rows, layers, strict=True):
        shown.append((indent + label, shape, count, connected if not depth else ""))
        shown_layers.append(layer)
        if isinstance(layer, Functional):
            inner, inner_layers = expanded(layer.summary_rows(), layer.layers, depth + 1)
            shown += inner
            shown_layers += inner_layers
    return shown, shown_layers


def _emitted_linear(output_losses: dict[int, Loss | None], layers: Sequence[Layer]) -> set[int]:
    """The ids of the layers marked "[linear (logits)]": each output layer of `layers` (by id, with its loss) whose
    Dense left at its default the graphs emit linear (`emit.default_activation_emits_logits`), and the layers the
    rule reaches through it (`emit.logits_path`: a nested model's own, shown by `expand_nested`)."""
    marked: set[int] = set()
    for layer in layers:
        if id(layer) in output_losses and emit.default_activation_emits_logits(layer, output_losses[id(layer)]):
            marked.update(map(id, emit.logits_path(layer)))
    return marked


def _marked(label: str, width: int) -> str:
    """`label` marked "[linear (logits)]", the mark on a line of its own where it would not fit in the column of
    `width` beside the label (`time_distributed_1(TimeDistributed)`), rather than wrapped across two (`_row`)."""
    line = width - 1
    rest = len(label) % line  # on the label's last line
    if rest and rest + 1 + len(LOGITS_MARK) <= line:
        return f"{label} {LOGITS_MARK}"
    return label.ljust(-(-len(label) // line) * line) + LOGITS_MARK


def _layer_row(layer: Layer) -> SummaryRow:
    """A layer's row of a table without "Connected to" (a Sequential's)."""
    shape = format_shape(layer.output_shape or ()) + dtype_note(layer)
    label = f"{layer.name}({type(layer).__name__})" + ("" if layer.trainable else " [frozen]")
    return label, shape, str(layer.param_count), ""


def _totals(params: tuple[int, int], rule: str) -> list[str]:
    trainable, frozen = params
    return [
        rule,
        f"Total trainable params: {trainable}",
        f"Total frozen params: {frozen}",
        f"Total params: {trainable + frozen}",
        rule,
    ]


def _trains(layer: Layer) -> str:
    """Keras' "Trainable" cell: Y for a layer whose weights train, N for a frozen one, - for one without weights."""
    if not layer.param_count:
        return "-"
    return "Y" if layer.trainable else "N"


def _row(widths: Sequence[int], *cells: str) -> str:
    """One table row of columns `widths`; a cell wider than its column wraps onto continuation lines (as Keras'
    summary does), so the columns after it stay aligned."""
    pieces = [
        [cell[i : i + width - 1] for i in range(0, max(len(cell), 1), width - 1)]
        for cell, width in zip(cells, widths, strict=True)
    ]
    depth = max(len(p) for p in pieces)
    lines = [
        "".join((p[k] if k < len(p) else "").ljust(width) for p, width in zip(pieces, widths, strict=True)).rstrip()
        for k in range(depth)
    ]
    return "\n".join(lines)
