"""A compiled model compiled again with its own settings, its optimizer state resumed from a checkpoint's bytes: how a
run continues from state written elsewhere (a JS bundle's, `bundle.load_state`; a Ray Train checkpoint's,
`distributed.ray_train`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from onnxtrain._metric_base import WeightedMetric

if TYPE_CHECKING:
    from onnxtrain.training import Trainer


class ResumableModel(Protocol):
    """What resuming a run uses of a compiled `onnxtrain.model.Model` (which these modules may not import: it imports
    `onnxtrain.bundle` to write bundles)."""

    _trainer: Trainer | None

    @property
    def learning_rate(self) -> float: ...

    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...

    def _compile(self, resume: bytes | None = None, **options: Any) -> None: ...

    def _compiled_trainer(self, action: str) -> Trainer: ...


def recompile_resuming(model: ResumableModel, state: bytes) -> None:
    """Compile `model` again as it was compiled (optimizer, loss, metrics and weighted metrics, device, engine,
    threads, opset and IR version), starting its optimizer from `state`, a checkpoint's bytes."""
    trainer = model._trainer
    assert trainer is not None  # the callers check that the model is compiled
    compiled = trainer.compiled
    model._compile(
        resume=state,
        optimizer=compiled.optimizer,
        loss=compiled.loss,
        metric=None,
        metrics=list(compiled.metrics) or None,
        device=compiled.device,
        engine=compiled.engine,
        artifacts_dir=None,
        threads=trainer.threads,
        opset=compiled.opset,
        ir_version=compiled.ir_version,
        loss_weights=None,
        weighted_metrics=[w.metric for w in compiled.weighted_metrics if isinstance(w, WeightedMetric)] or None,
    )
