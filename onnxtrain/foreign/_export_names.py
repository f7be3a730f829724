"""What the export of a model `from_onnx` made names its inputs and outputs: as the imported file did.

onnxtrain's own models export `input` (one input) and `logits` / `probabilities`; code that fed the original
file `{"x": ...}` should feed the fine-tuned export the same, so for a model that is the imported graph alone
(its Inputs, the `OnnxLayer` of `prefix_names=False`, and for several outputs its `OnnxOutput`s) the export keeps
the file's input and output names. A companion output the loss adds (`probabilities`) stays, named
`<output>_probabilities` (as for a model of several outputs), or `probabilities` after an output named `logits`,
so that `InferenceModel` and `onnxtrain predict` tell it from the model's own outputs. A model with a new head
is onnxtrain's and keeps onnxtrain's names (`input`, `logits`, `probabilities`).

It sits above the model (`onnxtrain.model_files` calls it), so it may read `onnxtrain.emit`.
"""

from __future__ import annotations

from onnxtrain import emit
from onnxtrain.foreign._layer import OnnxLayer
from onnxtrain.foreign._outputs import OnnxOutput
from onnxtrain.foreign._tied import fresh
from onnxtrain.functional import Functional
from onnxtrain.layers import Input
from onnxtrain.losses import Loss


def imported_layer(graph: Functional) -> OnnxLayer | None:
    """The `OnnxLayer` of a model that is an imported graph alone (what `from_onnx` builds), else None."""
    layers = [layer for layer in graph.layers if not isinstance(layer, Input)]
    own = [layer for layer in layers if isinstance(layer, OnnxLayer)]
    if len(own) != 1 or own[0].prefix_names:
        return None
    selectors = [layer for layer in layers if isinstance(layer, OnnxOutput)]
    if len(layers) != 1 + len(selectors) or (selectors and len(selectors) != len(own[0].output_shapes)):
        return None
    if selectors and [y.layer for y in graph.outputs] != selectors:
        return None
    return own[0]


def export_renames(graph: Functional, loss: Loss | None) -> dict[str, str]:
    """{onnxtrain's name: the file's} for the inputs and outputs of the export of `graph` under `loss` (see the
    module's docstring); empty for a model that is not an imported graph alone."""
    layer = imported_layer(graph)
    if layer is None:
        return {}
    inputs = [value.name for value in layer.data_inputs]
    outputs = [value.name for value in layer.graph.graph.output]
    renames = dict(zip(emit.input_names(graph), inputs, strict=True))
    emitted = emit.output_names(graph, loss)
    renames |= dict(zip(emitted, outputs, strict=True))
    taken = set(inputs) | set(outputs)
    for old, new, own in zip(emitted, outputs, emit.output_losses(graph, loss), strict=True):
        if own is None or own.probability_op is None:
            continue
        companion = emit.PROBABILITIES_NAME if len(emitted) == 1 else f"{old}_{emit.PROBABILITIES_NAME}"
        logits = len(emitted) == 1 and new == emit.LOGITS_NAME
        wanted = emit.PROBABILITIES_NAME if logits else f"{new}_{emit.PROBABILITIES_NAME}"
        renames[companion] = wanted if wanted not in taken else fresh(f"{new}_{emit.PROBABILITIES_NAME}", taken)
        taken.add(renames[companion])
    return {old: new for old, new in renames.items() if old != new}
