"""KotlinDL's model summary table: Layer (type) | Output Shape | Param #, then parameter totals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnxtrain import emit
from onnxtrain.layers import format_shape

if TYPE_CHECKING:
    from onnxtrain.losses import Loss
    from onnxtrain.model import Sequential

WIDTHS = (39, 26, 13)


def summary_table(model: Sequential, loss: Loss | None = None) -> str:
    """The table; with the compiled `loss`, a last layer whose activation gives way to logits (a Dense left at its
    default under softmax cross-entropy, see `emit.graph_layers`) is marked "[linear (logits)]"."""
    rule = "=" * sum(WIDTHS)
    thin = "_" * sum(WIDTHS)
    lines = [
        rule,
        f"Model type: {type(model).__name__} ({model.name})",
        thin,
        _row("Layer (type)", "Output Shape", "Param #"),
        rule,
    ]
    for i, layer in enumerate(model.layers):
        if i:
            lines.append(thin)
        shape = format_shape(layer.output_shape or ())
        label = f"{layer.name}({type(layer).__name__})" + ("" if layer.trainable else " [frozen]")
        if layer is model.layers[-1] and emit.default_activation_emits_logits(layer, loss):
            label += " [linear (logits)]"
        lines.append(_row(label, shape, str(layer.param_count)))
    trainable, frozen = model.count_params()
    lines += [
        rule,
        f"Total trainable params: {trainable}",
        f"Total frozen params: {frozen}",
        f"Total params: {trainable + frozen}",
        rule,
    ]
    return "\n".join(line.rstrip() for line in lines)


def _row(*cells: str) -> str:
    return "".join(cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=True))
