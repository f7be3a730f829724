"""KotlinDL's model summary table: Layer (type) | Output Shape | Param #, then parameter totals."""

from __future__ import annotations

from collections.abc import Sequence

from onnxtrain import emit
from onnxtrain.layers import Layer, format_shape
from onnxtrain.losses import Loss

WIDTHS = (39, 26, 13)


def summary_table(model_type: str, layers: Sequence[Layer], params: tuple[int, int], loss: Loss | None = None) -> str:
    """The table of a model of type `model_type` ("Sequential (sequential)"), its `layers` and its (trainable,
    frozen) parameter counts `params`. With the compiled `loss`, a last layer whose activation gives way to
    logits (a Dense left at its default under softmax cross-entropy, see `emit.graph_layers`) is marked
    "[linear (logits)]"."""
    rule = "=" * sum(WIDTHS)
    thin = "_" * sum(WIDTHS)
    lines = [
        rule,
        f"Model type: {model_type}",
        thin,
        _row("Layer (type)", "Output Shape", "Param #"),
        rule,
    ]
    for i, layer in enumerate(layers):
        if i:
            lines.append(thin)
        shape = format_shape(layer.output_shape or ())
        label = f"{layer.name}({type(layer).__name__})" + ("" if layer.trainable else " [frozen]")
        if layer is layers[-1] and emit.default_activation_emits_logits(layer, loss):
            label += " [linear (logits)]"
        lines.append(_row(label, shape, str(layer.param_count)))
    trainable, frozen = params
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
