"""Which graphs the portable engine's step sessions run: the whole train step, or its gradients only (the fused
update or a data-parallel step), unclipped and on shares of the batch where the gradients are combined; and the
weighted version of each (a `sample_weight` input, `_graphs.py`), built alike."""

from __future__ import annotations

from dataclasses import dataclass, replace

import onnx

from onnxtrain.functional import Functional
from onnxtrain.losses import Loss
from onnxtrain.optimizers import Optimizer
from onnxtrain.portable._graphs import TrainStepGraph, eval_model, gradient_model, train_step_model


@dataclass(frozen=True)
class StepModels:
    """How the engine's step and eval models are built.

    Attributes:
        graph / loss / optimizer / opset / ir_version: as the engine's.
        gradients_only: the step session computes gradients only (fused or data-parallel); the engine's
            TrainStepGraph keeps the whole step, for save_graphs.
        combined: the gradients of shares of the batch are combined (split step or data-parallel), and clipped
            once combined (SplitStep, GradientReduction): the gradient model runs on shares, unclipped.
        unclipped: the optimizer of the gradient model (without clipping where `combined`).
    """

    graph: Functional
    loss: Loss
    optimizer: Optimizer
    opset: int
    ir_version: int
    gradients_only: bool
    combined: bool
    unclipped: Optimizer

    @classmethod
    def of(
        cls,
        graph: Functional,
        loss: Loss,
        optimizer: Optimizer,
        opset: int,
        ir_version: int,
        gradients_only: bool,
        combined: bool,
    ) -> StepModels:
        unclipped = replace(optimizer, clip_norm=None, clip_value=None) if combined else optimizer
        return cls(graph, loss, optimizer, opset, ir_version, gradients_only, combined, unclipped)

    def gradients(self, weighted: bool = False) -> onnx.ModelProto:
        """The gradient model (`gradient_model`) the step session runs where `gradients_only`."""
        return gradient_model(
            self.graph, self.loss, self.unclipped, self.opset, self.ir_version, shares=self.combined, weighted=weighted
        )

    def weighted(self) -> tuple[onnx.ModelProto, TrainStepGraph | None, onnx.ModelProto]:
        """The weighted step model (and its TrainStepGraph where it updates in the graph) and eval model."""
        evaluation = eval_model(self.graph, self.loss, self.opset, self.ir_version, weighted=True)
        if self.gradients_only:
            return self.gradients(weighted=True), None, evaluation
        step = train_step_model(self.graph, self.loss, self.optimizer, self.opset, self.ir_version, weighted=True)
        return step.model, step, evaluation
