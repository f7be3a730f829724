"""The settings `compile` fixed (`Compiled`): what a trainer is opened with and a save writes as the model's
compile config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onnxtrain.losses import Loss
from onnxtrain.metrics import Metric
from onnxtrain.optimizers import Optimizer


@dataclass(frozen=True)
class Compiled:
    """The settings `compile` fixed."""

    optimizer: Optimizer
    loss: Loss
    metrics: tuple[Metric, ...]
    device: str = "cpu"
    opset: int = 17
    ir_version: int = 8
    engine: str = "auto"
    weighted_metrics: tuple[Metric, ...] = ()  # `WeightedMetric`s: compile's weighted_metrics, keyed as Keras

    def get_config(self) -> dict[str, Any]:
        config = {
            "optimizer": self.optimizer.get_config(),
            "loss": self.loss.get_config(),
            # a name, or Keras' {"class_name", "config"} for a metric with arguments (Precision(top_k=2))
            "metrics": [m.get_config() for m in self.metrics],
            "device": self.device,
            "opset": self.opset,
            "ir_version": self.ir_version,
            "engine": self.engine,
        }
        if self.weighted_metrics:
            config["weighted_metrics"] = [m.get_config() for m in self.weighted_metrics]
        return config
