"""Foreign ONNX models in onnxtrain: `OnnxLayer` (a graph as a layer) here; `onnxtrain.from_onnx` builds a model
of one (it sits above the model, in `onnxtrain.foreign._import`, so this package stays importable by the layers)."""

from onnxtrain.foreign._layer import OnnxLayer
from onnxtrain.foreign._outputs import OnnxOutput

__all__ = ["OnnxLayer", "OnnxOutput"]
