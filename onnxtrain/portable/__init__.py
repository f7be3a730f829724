"""The portable training engine: the whole train step as one standard ONNX graph, run by any ONNX Runtime.

Forward, loss, backward, gradient clipping and the optimizer update are emitted from the layer list with default-domain
operators only, so onnxruntime, onnxruntime-gpu or a training build, on any Python they ship for, can train. Each layer,
activation, loss and optimizer class contributes a rule; register rules for your own classes with the `register_*`
functions. See docs/portable.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnxtrain._runtime import Device
from onnxtrain.layers import Layer
from onnxtrain.portable._activation_gradients import ActivationGradient, register_activation_gradient
from onnxtrain.portable._engine import PortableEngine
from onnxtrain.portable._graphs import TrainStepGraph, eval_model, train_step_model
from onnxtrain.portable._layer_gradients import LayerGradient, Saved, register_layer_gradient
from onnxtrain.portable._loss_gradients import LossGradient, register_loss_gradient
from onnxtrain.portable._optimizers import Slot, UpdateRule, register_update_rule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from onnxtrain.training import Compiled

__all__ = [
    "ActivationGradient",
    "LayerGradient",
    "LossGradient",
    "PortableEngine",
    "Saved",
    "Slot",
    "TrainStepGraph",
    "UpdateRule",
    "create_engine",
    "eval_model",
    "register_activation_gradient",
    "register_layer_gradient",
    "register_loss_gradient",
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
