"""KotlinDL's model summary table: Layer (type) | Output Shape | Param #, then parameter totals under KotlinDL's
labels ("Total frozen params" is Keras' "Non-trainable params": frozen layers' weights and statistics such as
BatchNormalization's moving mean and variance, which no optimizer updates); a functional Model's adds Keras'
"Connected to" column (each call's inputs, `layer[call index]`), Keras' `show_trainable=True` a "Trainable" column
(Y, N, or - for a layer without weights), and Keras' `expand_nested=True` the rows of each nested model's layers
under its own, indented (`expanded`). A cell wider than its column wraps at word boundaries, as Keras' does; Keras'
`line_length` and `positions` size the columns (`column_widths`); a model's summary refuses its other arguments
(`KERAS_SUMMARY_SETTINGS`, `check_print_fn`)."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any

from onnxtrain import emit
from onnxtrain.errors import InvalidArgumentError, InvalidTypeError
from onnxtrain.functional import Functional, SummaryRow
from onnxtrain.layers import Layer, TimeDistributed, format_shape
from onnxtrain.layers._core import dtype_note
from onnxtrain.losses import Loss

WIDTHS = (39, 26, 13)
CONNECTED_WIDTHS = (*WIDTHS, 30)
TRAINABLE_WIDTH = 11
LOGITS_MARK = "[linear (logits)]"

# Keras' summary arguments that onnxtrain's lacks, with what stands for each (`refuse_unknown`'s settings hint)
KERAS_SUMMARY_SETTINGS = {
    "layer_range": (
        "(Keras') has no counterpart here: summary shows every layer; leave it out (a nested model's own table is "
        "model.get_layer(name).summary(), its rows under the model's summary(expand_nested=True))"
    ),
}


def summary_table(
    model_type: str,
    layers: Sequence[Layer],
    params: tuple[int, int],
    loss: Loss | None = None,
    show_trainable: bool = False,
    expand_nested: bool = False,
    graph: Functional | None = None,
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
) -> str:
    """The table of a model of type `model_type` ("Sequential (sequential)"), its `layers` and its (trainable,
    frozen) parameter counts `params`. With the compiled `loss`, a layer whose activation gives way to logits is
    marked "[linear (logits)]" (`_emitted_linear`: the last layer, a Dense left at its default under a loss on
    logits, itself or inside a last TimeDistributed or nested model, see `emit.graph_layers`; with the model's
    `graph`, also one whose values a last Reshape, Flatten or pooling moves, `emit.logits_chains`), and so are the
    nested layers the rule reaches where `expand_nested` shows them. `show_trainable` adds Keras' "Trainable"
    column; `expand_nested` the rows of a nested model's layers (`expanded`); `line_length` and `positions` size
    the columns as Keras' do (`column_widths`)."""
    widths = column_widths(WIDTHS, show_trainable, line_length, positions)
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
    if graph is not None:
        linear = _emitted_linear(graph, loss)
    else:
        linear = _marked_by_rule([(layers[-1], loss)] if layers else [])
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
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
) -> str:
    """`summary_table` of a functional model, from `Functional.summary_rows`, with Keras' "Connected to" column: a
    layer called several times (shared) lists the inputs of each call, one per line. Each output's layer emitted
    linear is marked as `summary_table` marks the last one, by the output's own loss. `show_trainable` adds Keras'
    "Trainable" column; `expand_nested` the rows of a nested model's layers (`expanded`); `line_length` and
    `positions` size the columns as Keras' do (`column_widths`)."""
    widths = column_widths(CONNECTED_WIDTHS, show_trainable, line_length, positions)
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
    linear = _emitted_linear(graph, loss)
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


def check_print_fn(print_fn: Any) -> None:
    """Refuse a summary's `print_fn` that is neither None nor callable, naming Keras' first positional argument,
    `line_length`, where it is an int (`summary(100)`).

    Raises:
        InvalidTypeError: `print_fn` is neither None nor callable.
    """
    if print_fn is None or callable(print_fn):
        return
    fix = ""
    if isinstance(print_fn, numbers.Integral) and not isinstance(print_fn, bool):
        fix = (
            f" Keras' summary takes line_length first, where onnxtrain's takes print_fn: pass it by keyword, "
            f"summary(line_length={print_fn})."
        )
    raise InvalidTypeError(
        f"summary(print_fn=...) expects a callable taking the table (e.g. print), or None to return it.{fix} "
        f"Received: {print_fn!r}"
    )


def column_widths(
    widths: Sequence[int],
    show_trainable: bool = False,
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
) -> tuple[int, ...]:
    """The widths of a table's columns: `widths` (KotlinDL's), then `TRAINABLE_WIDTH` with `show_trainable`; with
    Keras' `line_length` (the table's width) those scaled to it; with Keras' `positions` (where each column of
    `widths` ends, as fractions of the line, or, where the last is over 1, as characters, as Keras 2 took them)
    those, the "Trainable" column taking the last tenth as Keras' does.

    Raises:
        InvalidTypeError: `line_length` is not an int, or `positions` not a sequence of numbers.
        InvalidArgumentError: `line_length` is not positive, `positions` is not one increasing position per column
            of `widths`, or a column would be under 4 characters (Keras' "Insufficient console width").
    """
    given = [*widths, *([TRAINABLE_WIDTH] if show_trainable else [])]
    if line_length is None and positions is None:
        return tuple(given)
    if line_length is not None and (isinstance(line_length, bool) or not isinstance(line_length, numbers.Integral)):
        raise InvalidTypeError(f"summary(line_length=...) expects an int. Received: line_length={line_length!r}")
    if line_length is not None and line_length <= 0:
        raise InvalidArgumentError(f"summary(line_length=...) expects a positive int. Received: {line_length}")
    length = int(line_length) if line_length is not None else sum(given)
    ends = _column_ends(widths, positions, length) if positions is not None else None
    if ends is None:  # the default columns, scaled to the line
        shares = [sum(given[: i + 1]) / sum(given) for i in range(len(given))]
    else:
        shares = [*(end * 0.9 for end in ends), 1.0] if show_trainable else ends
    bounds = [0, *(int(share * length) for share in shares)]
    result = tuple(end - start for start, end in itertools.pairwise(bounds))
    if min(result) < 4:
        raise InvalidArgumentError(
            f"summary(line_length=..., positions=...) leaves a column under 4 characters wide (Keras' "
            f"'Insufficient console width'): widths {list(result)} of a line of {length}. Received: "
            f"line_length={line_length!r}, positions={positions!r}"
        )
    return result


def _column_ends(widths: Sequence[int], positions: Sequence[float], length: int) -> list[float]:
    """Keras' `positions` as fractions of the line: one per column of `widths`, increasing (checked)."""
    expected = f"summary(positions=...) expects {len(widths)} increasing positions, one per column"
    if not isinstance(positions, list | tuple) or not all(
        isinstance(p, numbers.Real) and not isinstance(p, bool) for p in positions
    ):
        raise InvalidTypeError(f"{expected} (a list of numbers). Received: positions={positions!r}")
    if len(positions) != len(widths) or any(p <= 0 for p in positions) or list(positions) != sorted(set(positions)):
        raise InvalidArgumentError(f"{expected}, each above 0. Received: positions={list(positions)!r}")
    return [float(p) if positions[-1] <= 1 else float(p) / length for p in positions]


def _emitted_linear(graph: Functional, loss: Loss | None) -> set[int]:
    """The ids of the layers marked "[linear (logits)]": each output's layer that the graphs emit linear for the
    output's own loss (`emit.default_activation_emits_logits`), the first layer of each output's logits chain (a
    Dense left at its default whose values a Reshape, Flatten or pooling, or a `Softmax()` layer, carries to the
    output: `emit.logits_chains`), and the layers the rule reaches through them (`_marked_by_rule`); where a
    chain's first layer is a nested model that computes its values anew (one ending in `Dense(3)` then
    `Softmax()`), the layers its own `_emitted_linear` marks."""
    own_losses = emit.output_losses(graph, loss)
    marked = _marked_by_rule([(y.layer, own) for y, own in zip(graph.outputs, own_losses, strict=True)])
    for position, chain in emit.logits_chains(graph, loss).items():
        marked.update(_chain_head_marks(chain[0].layer, own_losses[position]))
    return marked


def _chain_head_marks(first: Layer, loss: Loss | None) -> set[int]:
    """The ids marked for `first`, the first layer of an output's logits chain: it and the layers the rule reaches
    through it where the graphs emit it linear (`emit.logits_path`); for a nested model (or a TimeDistributed of
    one) whose values the graphs compute anew, its own softmax kept (`emit.logits_chain`), the layers of its own
    graph that they emit linear, not the model, whose values stay probabilities."""
    if emit.default_activation_emits_logits(first, loss):
        return set(map(id, emit.logits_path(first)))
    nested = first.layer if isinstance(first, TimeDistributed) else first
    return _emitted_linear(nested, loss) if isinstance(nested, Functional) else set()


def _marked_by_rule(outputs: Sequence[tuple[Layer, Loss | None]]) -> set[int]:
    """The ids of each of `outputs` (a layer with its loss) whose Dense left at its default the graphs emit linear
    (`emit.default_activation_emits_logits`), and of the layers the rule reaches through it (`emit.logits_path`: a
    nested model's own, shown by `expand_nested`)."""
    marked: set[int] = set()
    for layer, own in outputs:
        if emit.default_activation_emits_logits(layer, own):
            marked.update(map(id, emit.logits_path(layer)))
    return marked


def _marked(label: str, width: int) -> str:
    """`label` marked "[linear (logits)]": after its last line where the mark fits in the column of `width` beside
    it, else on a line of its own, rather than wrapped across two (`_row`)."""
    lines = _wrapped(label, width - 1)
    if len(lines[-1]) + 1 + len(LOGITS_MARK) <= width - 1:
        return "\n".join([*lines[:-1], f"{lines[-1]} {LOGITS_MARK}"])
    return "\n".join([*lines, LOGITS_MARK])


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
    """One table row of columns `widths`; a cell wider than its column wraps onto continuation lines at word
    boundaries (`_wrapped`), as Keras' summary does, so the columns after it stay aligned."""
    pieces = [
        [line for paragraph in cell.split("\n") for line in _wrapped(paragraph, width - 1)]
        for cell, width in zip(cells, widths, strict=True)
    ]
    depth = max(len(p) for p in pieces)
    lines = [
        "".join((p[k] if k < len(p) else "").ljust(width) for p, width in zip(pieces, widths, strict=True)).rstrip()
        for k in range(depth)
    ]
    return "\n".join(lines)


def _wrapped(text: str, room: int) -> list[str]:
    """`text` in lines of at most `room` characters, each broken at the last word boundary that fits (a space,
    before "(" or "[", after ","): `batch_normalization_1(BatchNormalization)` breaks before its type, not inside
    a word; a word longer than `room` is cut where it must be."""
    lines = []
    while len(text) > room:
        cut = next((i for i in range(room, 0, -1) if _breaks_at(text, i)), room)
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip(" ")
    return [*lines, text]


def _breaks_at(text: str, i: int) -> bool:
    """Whether a line may end before `text[i]`: at a space, before a bracket, after a comma."""
    return text[i] == " " or text[i - 1] == " " or text[i] in "([" or text[i - 1] == ","
