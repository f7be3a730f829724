"""onnxtrain: define a network Keras/KotlinDL-style, train it with ONNX Runtime, export portable ONNX.

Example:
    >>> from onnxtrain import Sequential
    >>> from onnxtrain.layers import Input, Flatten, Dense
    >>> model = Sequential.of(Input(28, 28, 1), Flatten(), Dense(300), Dense(100), Dense(10))
"""

from __future__ import annotations

from onnxtrain._runtime import check_single_flavour
from onnxtrain._version import __version__

check_single_flavour()  # two onnxruntime packages in one environment break each other: say so up front

from onnxtrain._ort_training import TrainingArtifacts  # noqa: E402
from onnxtrain.artifacts import generate_artifacts  # noqa: E402
from onnxtrain.callbacks import Callback  # noqa: E402
from onnxtrain.datasets import Dataset  # noqa: E402
from onnxtrain.foreign._import import from_onnx  # noqa: E402
from onnxtrain.foreign._lora import lora  # noqa: E402
from onnxtrain.history import EvaluationResult, History  # noqa: E402
from onnxtrain.inference import InferenceModel  # noqa: E402
from onnxtrain.loading import load_model  # noqa: E402
from onnxtrain.losses import Losses  # noqa: E402
from onnxtrain.metrics import Metrics  # noqa: E402
from onnxtrain.model import Model  # noqa: E402
from onnxtrain.saving import WritingMode  # noqa: E402
from onnxtrain.sequential import Sequential  # noqa: E402

__all__ = [
    "Callback",
    "Dataset",
    "EvaluationResult",
    "History",
    "InferenceModel",
    "Losses",
    "Metrics",
    "Model",
    "Sequential",
    "TrainingArtifacts",
    "WritingMode",
    "__version__",
    "from_onnx",
    "generate_artifacts",
    "load_model",
    "lora",
]


def __getattr__(name: str) -> object:
    # Only reached for a name the package lacks: KotlinDL's name of a class it has under another
    # (`onnxtrain.Functional` is `onnxtrain.Model`) is refused naming it.
    from onnxtrain._kotlindl_attributes import missing_module_attribute

    raise AttributeError(missing_module_attribute(__name__, name), name=name)
