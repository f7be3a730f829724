"""The names a model `from_onnx` made takes its arrays by in a dict, besides its Inputs' own: the imported file's
input names, which its export keeps (`_export_names`), so code that fed the original `{"x": ...}` feeds the
imported model, `predict` included, the same."""

from __future__ import annotations

from onnxtrain.foreign._export_names import imported_layer
from onnxtrain.functional import Functional


def file_input_names(graph: Functional) -> list[str | None]:
    """Per input of `graph`, in order: the name of the imported file's input it feeds, for a model that is an
    imported graph alone (what `from_onnx` builds, and `load_model` of its save); None for every input of any
    other model (a new head makes the model onnxtrain's, fed and exported as `input`)."""
    layer = imported_layer(graph)
    if layer is None or len(layer.data_inputs) != len(graph.inputs):
        return [None] * len(graph.inputs)
    return [value.name for value in layer.data_inputs]
