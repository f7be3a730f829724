"""The portable training engine: the whole train step as one standard ONNX graph, run by any ONNX Runtime.

Forward, loss, backward, gradient clipping and the optimizer update are emitted with default-domain operators only,
so onnxruntime, onnxruntime-gpu or a training build, on any Python they ship for, can train. The layers and the loss
emit their forward; `onnxtrain.autodiff` differentiates it op by op; each optimizer contributes an update rule
(`register_update_rule` for your own). See docs/portable.md.
"""

from __future__ import annotations

from onnxtrain.engine import EngineRequest
from onnxtrain.portable._engine import PortableEngine
from onnxtrain.portable._graphs import ParameterInputBuilder, TrainStepGraph, eval_model, train_step_model
from onnxtrain.portable._optimizers import Slot, UpdateRule, register_update_rule

__all__ = [
    "ParameterInputBuilder",
    "PortableEngine",
    "Slot",
    "TrainStepGraph",
    "UpdateRule",
    "create_engine",
    "eval_model",
    "register_update_rule",
    "train_step_model",
]


def create_engine(request: EngineRequest) -> PortableEngine:
    """The portable engine for a compiled model (`onnxtrain.engines.ENGINES["portable"]`), starting from
    `request.resume` when given. With `request.artifacts_dir` its train-step and eval graphs are written there
    (`PortableEngine.save_graphs`).

    Raises:
        UnsupportedError: a layer, activation, loss or optimizer has no rule in this engine.
        RuntimeSetupError: onnxruntime is missing, or CUDA was asked for without its provider.
        ModelFileError / InvalidArgumentError: `resume` is not a portable checkpoint of this model and optimizer.
        OSError: the artifacts could not be written (the engine is closed again, and the folders it created are
            removed while empty).
    """
    engine = PortableEngine(
        request.layers,
        request.loss,
        request.optimizer,
        request.device,
        request.threads,
        request.resume,
        request.opset,
        request.ir_version,
        communicator=request.communicator,
    )
    if request.artifacts_dir is not None:
        try:
            engine.save_graphs(request.artifacts_dir)
        except BaseException:
            engine.close()
            raise
    return engine
