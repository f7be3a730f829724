"""The portable training engine: the whole train step as one standard ONNX graph, run by any ONNX Runtime.

Forward, loss, backward, gradient clipping and the optimizer update are emitted with default-domain operators only,
so onnxruntime, onnxruntime-gpu or a training build, on any Python they ship for, can train. The layers and the loss
emit their forward; `onnxtrain.autodiff` differentiates it op by op; each optimizer contributes an update rule
(`register_update_rule` for your own). See docs/portable.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnxtrain._runtime import Device
from onnxtrain.layers import Layer
from onnxtrain.portable._engine import PortableEngine
from onnxtrain.portable._graphs import TrainStepGraph, eval_model, train_step_model
from onnxtrain.portable._optimizers import Slot, UpdateRule, register_update_rule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from onnxtrain.training import Compiled

__all__ = [
    "PortableEngine",
    "Slot",
    "TrainStepGraph",
    "UpdateRule",
    "create_engine",
    "eval_model",
    "register_update_rule",
    "train_step_model",
]


def create_engine(
    layers: Sequence[Layer],
    compiled: Compiled,
    device: Device,
    threads: int | None = None,
    resume: bytes | None = None,
) -> PortableEngine:
    """The portable engine for a compiled model (what `Trainer.create` calls for engine="portable").

    Raises:
        UnsupportedError: a layer, activation, loss or optimizer has no rule in this engine.
        RuntimeSetupError: onnxruntime is missing, or CUDA was asked for without its provider.
        ModelFileError / InvalidArgumentError: `resume` is not a portable checkpoint of this model and optimizer.
    """
    return PortableEngine(
        layers,
        compiled.loss,
        compiled.optimizer,
        device,
        threads,
        resume,
        compiled.opset,
        compiled.ir_version,
    )
